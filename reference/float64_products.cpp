#include "reference/float64_products.hpp"

#include <cblas.h>

#include <algorithm>
#include <atomic>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "reference/error.hpp"

namespace qoracle {

namespace {
std::atomic<int> threads_setting{0};  // 0: hardware_concurrency
}  // namespace

void set_reference_threads(int threads) {
  threads_setting = std::max(threads, 1);
  openblas_set_num_threads(std::max(threads, 1));
}

int reference_threads() {
  const int t = threads_setting.load();
  return t > 0 ? t : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

void parallel_for(std::ptrdiff_t n, std::ptrdiff_t grain,
                  const std::function<void(std::ptrdiff_t, std::ptrdiff_t)>& f) {
  if (n <= 0) return;
  const std::ptrdiff_t chunks = std::min<std::ptrdiff_t>(reference_threads(), std::max<std::ptrdiff_t>(1, n / std::max<std::ptrdiff_t>(grain, 1)));
  if (chunks <= 1) {
    f(0, n);
    return;
  }
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto run = [&](std::ptrdiff_t c) {
    try {
      f(n * c / chunks, n * (c + 1) / chunks);
    } catch (...) {
      std::lock_guard lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> workers;
  workers.reserve(static_cast<std::size_t>(chunks - 1));
  for (std::ptrdiff_t c = 1; c < chunks; ++c) workers.emplace_back(run, c);
  run(0);
  for (auto& w : workers) w.join();
  if (failure) std::rethrow_exception(failure);
}

namespace {
// C (m x n, leading dimension ldc) = alpha op(A) op(B) + beta C, column-major; k may be 0 (then
// C is beta C).
void dgemm(bool trans_a, bool trans_b, Eigen::Index m, Eigen::Index n, Eigen::Index k, double alpha, const double* a,
           Eigen::Index lda, const double* b, Eigen::Index ldb, double beta, double* c, Eigen::Index ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    for (Eigen::Index j = 0; j < n; ++j)
      for (Eigen::Index i = 0; i < m; ++i) c[j * ldc + i] = beta == 0.0 ? 0.0 : beta * c[j * ldc + i];
    return;
  }
  cblas_dgemm(CblasColMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
              static_cast<blasint>(m), static_cast<blasint>(n), static_cast<blasint>(k), alpha, a, static_cast<blasint>(lda),
              b, static_cast<blasint>(ldb), beta, c, static_cast<blasint>(ldc));
}
// C (m x n) = op(A) op(B).
void dgemm(bool trans_a, bool trans_b, Eigen::Index m, Eigen::Index n, Eigen::Index k, const double* a, Eigen::Index lda,
           const double* b, Eigen::Index ldb, double* c) {
  dgemm(trans_a, trans_b, m, n, k, 1.0, a, lda, b, ldb, 0.0, c, std::max<Eigen::Index>(m, 1));
}
}  // namespace

Matrix times_transposed(const Matrix& a, const Matrix& b) {
  Matrix c(a.rows(), b.rows());
  dgemm(false, true, a.rows(), b.rows(), a.cols(), a.data(), std::max<Eigen::Index>(a.rows(), 1), b.data(),
        std::max<Eigen::Index>(b.rows(), 1), c.data());
  return c;
}

Matrix times(const Matrix& a, const Matrix& b) {
  Matrix c(a.rows(), b.cols());
  dgemm(false, false, a.rows(), b.cols(), a.cols(), a.data(), std::max<Eigen::Index>(a.rows(), 1), b.data(),
        std::max<Eigen::Index>(b.rows(), 1), c.data());
  return c;
}

void add_scaled_product(Matrix& w, double s, const Matrix& b, const Matrix& a) {
  if (b.rows() != w.rows() || a.cols() != w.cols() || b.cols() != a.rows())
    throw Error("add_scaled_product: shapes " + shape_string(w) + " += " + shape_string(b) + " * " + shape_string(a));
  dgemm(false, false, w.rows(), w.cols(), b.cols(), s, b.data(), std::max<Eigen::Index>(b.rows(), 1), a.data(),
        std::max<Eigen::Index>(a.rows(), 1), 1.0, w.data(), std::max<Eigen::Index>(w.rows(), 1));
}

Vector row_norms_of_sum(const Matrix& w, double s, const Matrix& b, const Matrix& a) {
  if (b.rows() != w.rows() || a.cols() != w.cols() || b.cols() != a.rows())
    throw Error("row_norms_of_sum: shapes " + shape_string(w) + " + " + shape_string(b) + " * " + shape_string(a));
  Vector norms(w.rows());
  // Each thread forms ~1 MiB panels of rows of w + s b a (in its cache) and takes their norms.
  const std::ptrdiff_t panel = std::max<std::ptrdiff_t>(1, (1 << 17) / std::max<Eigen::Index>(w.cols(), 1));
  parallel_for(w.rows(), panel, [&](std::ptrdiff_t begin, std::ptrdiff_t end) {
    Matrix rows;
    for (std::ptrdiff_t o0 = begin; o0 < end; o0 += panel) {
      const std::ptrdiff_t n = std::min(panel, end - o0);
      rows = w.middleRows(o0, n);
      rows.noalias() += s * (b.middleRows(o0, n) * a);
      norms.segment(o0, n) = rows.rowwise().norm();
    }
  });
  return norms;
}

namespace {
// Rows per decoding task: enough work per thread to pay for starting it.
std::ptrdiff_t row_grain(int in) { return std::max<std::ptrdiff_t>(1, (1 << 16) / std::max(in, 1)); }
// Up to this many tokens, decoding panel by panel beats decoding W whole for one dgemm.
constexpr Eigen::Index kFewTokens = 8;
}  // namespace

Matrix times_decoded_transposed(const Matrix& x, int out, int in, const RowDecoder& decode) {
  if (x.rows() <= kFewTokens) {
    // A few tokens: each thread decodes a panel of rows into a buffer that stays in its cache and
    // multiplies it there; W never exists whole (the forward reads only the codes).
    Matrix y(x.rows(), out);
    const std::ptrdiff_t panel = std::max<std::ptrdiff_t>(1, (1 << 17) / std::max(in, 1));  // ~1 MiB of doubles
    parallel_for(out, row_grain(in), [&](std::ptrdiff_t b, std::ptrdiff_t e) {
      std::vector<double> rows(static_cast<std::size_t>(std::min(panel, e - b)) * in);
      for (std::ptrdiff_t o0 = b; o0 < e; o0 += panel) {
        const std::ptrdiff_t n = std::min(panel, e - o0);
        decode(static_cast<int>(o0), static_cast<int>(o0 + n), rows.data());
        const Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> w(rows.data(), n, in);
        y.middleCols(o0, n).noalias() = x * w.transpose();
      }
    });
    return y;
  }
  // More tokens: panels of rows decoded on every core, then one dgemm per panel (every core too).
  // A panel of row-major W rows (n x in) is column-major W^T columns: y's panel is a plain product.
  // One panel-sized buffer, not W whole: a fresh (out, in) buffer costs its page faults every call.
  Matrix y(x.rows(), out);
  const std::ptrdiff_t panel = std::max<std::ptrdiff_t>(1, (1 << 21) / std::max(in, 1));  // 16 MiB of doubles
  std::vector<double> w(static_cast<std::size_t>(std::min<std::ptrdiff_t>(panel, out)) * static_cast<std::size_t>(in));
  for (std::ptrdiff_t o0 = 0; o0 < out; o0 += panel) {
    const std::ptrdiff_t n = std::min<std::ptrdiff_t>(panel, out - o0);
    parallel_for(n, row_grain(in), [&](std::ptrdiff_t b, std::ptrdiff_t e) {
      decode(static_cast<int>(o0 + b), static_cast<int>(o0 + e), w.data() + static_cast<std::size_t>(b) * in);
    });
    dgemm(false, false, x.rows(), n, in, x.data(), std::max<Eigen::Index>(x.rows(), 1), w.data(), std::max(in, 1),
          y.data() + o0 * x.rows());
  }
  return y;
}

Matrix decode_all(int out, int in, const RowDecoder& decode) {
  Matrix w(out, in);
  parallel_for(out, row_grain(in), [&](std::ptrdiff_t b, std::ptrdiff_t e) {
    std::vector<double> rows(static_cast<std::size_t>(e - b) * in);
    decode(static_cast<int>(b), static_cast<int>(e), rows.data());
    for (std::ptrdiff_t o = b; o < e; ++o)
      w.row(o) = Eigen::Map<const Eigen::RowVectorXd>(rows.data() + static_cast<std::size_t>(o - b) * in, in);
  });
  return w;
}

}  // namespace qoracle

// The optimized batched Cayley (optimized/): its per-block arithmetic runs here on the host, the
// same code the kernel runs, serially and with several std::threads meeting at a barrier where
// the kernel calls __syncthreads (which exposes a missing sync between phases). The GPU launch is
// checked against the float64 reference where a device is present, and skips otherwise.
#include <gtest/gtest.h>

#include <barrier>
#include <thread>

#include "conformance/tolerances.hpp"
#include "optimized/rotation/batched_cayley.hpp"
#include "optimized/rotation/cayley_block.hpp"
#include "optimized/device/device_probe.hpp"
#include "reference/cayley.hpp"
#include "reference/coft.hpp"
#include "reference/dtype.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "reference/skew.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using optimized::NoSync;

struct CayleyCase {
  int b;
  bool neumann;
  int terms;
  friend void PrintTo(const CayleyCase& c, std::ostream* os) {
    *os << "b" << c.b << (c.neumann ? " neumann" + std::to_string(c.terms) : std::string(" exact"));
  }
};

std::vector<CayleyCase> cayley_cases() {
  std::vector<CayleyCase> cases;
  for (int b : {2, 3, 8, 17, 32, 64, 128}) {
    cases.push_back({b, false, 0});
    for (int terms : {1, 2, 3, 4, 5, 7}) cases.push_back({b, true, terms});
  }
  return cases;
}

std::uint64_t seed_of(const CayleyCase& c) { return 1300 + static_cast<std::uint64_t>(c.b * 16 + c.terms); }

// Parameters of the size PEFT trains with (rho(S) < 1 so every Neumann series converges).
std::vector<float> params_for(const CayleyCase& c, int rows) {
  SeededRandom rng(seed_of(c));
  const Matrix v = round_to(Dtype::Float32, rng.normal(rows, skew_param_count(c.b), 0.3 / c.b));
  std::vector<float> out;
  for (Eigen::Index r = 0; r < v.rows(); ++r)
    for (Eigen::Index k = 0; k < v.cols(); ++k) out.push_back(static_cast<float>(v(r, k)));
  return out;
}

Matrix oracle(const CayleyCase& c, const float* v) {
  Vector p(skew_param_count(c.b));
  for (Eigen::Index k = 0; k < p.size(); ++k) p(k) = v[k];
  const Matrix s = skew_from_params(p, c.b);
  return c.neumann ? cayley_neumann(s, c.terms, Convention::Peft) : cayley_exact(s);
}

Matrix as_matrix(const float* r, int b) {
  Matrix m(b, b);
  for (int i = 0; i < b; ++i)
    for (int j = 0; j < b; ++j) m(i, j) = r[i * b + j];
  return m;
}

// worker(tid, sync) run by `threads` cooperating std::threads that meet at a std::barrier wherever
// the kernel calls __syncthreads (1: serially, without barriers), as a thread block runs it.
template <class Worker>
void run_cooperating(int threads, Worker worker) {
  if (threads == 1) {
    worker(0, NoSync{});
    return;
  }
  std::barrier barrier(threads);
  std::vector<std::jthread> pool;
  for (int t = 0; t < threads; ++t) pool.emplace_back([&, t] { worker(t, [&] { barrier.arrive_and_wait(); }); });
}

// One block's R through the kernel's rotation_block (PEFT's series, no COFT), as the kernel runs it.
Matrix block_on_host(const CayleyCase& c, const float* v, int threads) {
  const int b = c.b;
  std::vector<float> ws(static_cast<std::size_t>(optimized::rotation_scratch_floats(b, c.neumann))),
      partial(static_cast<std::size_t>(threads)), r(static_cast<std::size_t>(b * b));
  run_cooperating(threads, [&](int tid, auto sync) {
    optimized::rotation_block(v, b, c.neumann, optimized::neumann_series(c.terms, false), 0.0f, ws.data(), partial.data(),
                              r.data(), tid, threads, sync);
  });
  return as_matrix(r.data(), b);
}

::testing::AssertionResult agrees(const Matrix& expected, const Matrix& actual) {
  return testing::close_float32_to_oracle(expected, actual);
}

class OptimizedCayley : public ::testing::TestWithParam<CayleyCase> {};

TEST_P(OptimizedCayley, BlockArithmeticSerialOnHost) {
  const CayleyCase c = GetParam();
  QORACLE_SEED_TRACE(seed_of(c));
  const std::vector<float> v = params_for(c, 1);
  EXPECT_TRUE(agrees(oracle(c, v.data()), block_on_host(c, v.data(), 1)));
}

TEST_P(OptimizedCayley, BlockArithmeticCooperativeOnHost) {
  const CayleyCase c = GetParam();
  QORACLE_SEED_TRACE(seed_of(c));
  const std::vector<float> v = params_for(c, 1);
  // 5 workers: not a divisor of any b, so the strided loops end unevenly.
  EXPECT_TRUE(agrees(oracle(c, v.data()), block_on_host(c, v.data(), 5)));
}

TEST_P(OptimizedCayley, BatchedOnGpu) {
  const CayleyCase c = GetParam();
  const auto device = optimized::probe_device();
  if (!device.available) GTEST_SKIP() << "no GPU: " << device.reason;
  QORACLE_SEED_TRACE(seed_of(c));
  const int rows = 7;
  const std::vector<float> v = params_for(c, rows);
  const std::vector<float> r = optimized::batched_cayley({rows, c.b, c.neumann, c.terms}, v);
  const std::size_t n_el = static_cast<std::size_t>(skew_param_count(c.b));
  for (int k = 0; k < rows; ++k)
    EXPECT_TRUE(agrees(oracle(c, v.data() + k * n_el), as_matrix(r.data() + static_cast<std::size_t>(k) * c.b * c.b, c.b)))
        << "block " << k << " on " << device.reason;
}

INSTANTIATE_TEST_SUITE_P(Blocks, OptimizedCayley, ::testing::ValuesIn(cayley_cases()), [](const auto& info) {
  const CayleyCase& c = info.param;
  return "b" + std::to_string(c.b) + (c.neumann ? "_neumann" + std::to_string(c.terms) : std::string("_exact"));
});

// COFT's factor, computed by cooperating threads that meet at barriers (a missing one lets a
// thread read partials before they are written), against the reference projection in PEFT's
// convention: inside the ball the row is kept, outside it lands on the boundary.
TEST(OptimizedCayleyCoft, FactorMatchesTheReferenceProjection) {
  const CayleyCase c{16, false, 0};
  const std::vector<float> v = params_for(c, 3);  // rows of 120 values ~ N(0, (0.3/16)^2): ||S||_F ~ 0.29
  const int n = skew_param_count(c.b);
  Matrix rows(3, n);
  for (int r = 0; r < 3; ++r)
    for (int k = 0; k < n; ++k) rows(r, k) = v[static_cast<std::size_t>(r * n + k)];
  for (double eps : {0.05, 0.3, 10.0}) {  // projects all, some, none
    const Matrix projected = coft_project(rows, eps, Convention::Peft);
    const auto radius = static_cast<float>(coft_radius(eps, 3, Convention::Peft));
    for (int threads : {1, 5}) {
      for (int r = 0; r < 3; ++r) {
        std::vector<float> partial(static_cast<std::size_t>(threads)), factor(static_cast<std::size_t>(threads));
        const float* row = v.data() + static_cast<std::size_t>(r * n);
        run_cooperating(threads, [&](int t, auto sync) {
          factor[static_cast<std::size_t>(t)] = optimized::coft_factor(row, n, radius, partial.data(), t, threads, sync);
        });
        for (int t = 0; t < threads; ++t) {
          const double want = projected(r, 0) / rows(r, 0);
          EXPECT_NEAR(factor[static_cast<std::size_t>(t)], want, 1e-6 * want)
              << "eps " << eps << " row " << r << " thread " << t << " of " << threads;
        }
      }
    }
  }
  float partial = 0;
  EXPECT_EQ(optimized::coft_factor(v.data(), n, 0.0f, &partial, 0, 1, NoSync{}), 1.0f);  // radius 0: no COFT
}

// Bad input is refused before any device is touched, naming the field (with or without CUDA).
TEST(OptimizedCayleyBadInput, BlockSizeOutOfRange) {
  for (int b : {1, 129}) {
    try {
      optimized::batched_cayley({1, b, true, 5}, std::vector<float>(static_cast<std::size_t>(b * (b - 1) / 2)));
      ADD_FAILURE() << "b=" << b << " accepted";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("block_size"), std::string::npos) << e.what();
    }
  }
}

TEST(OptimizedCayleyBadInput, ParameterCountMismatch) {
  try {
    optimized::batched_cayley({2, 8, true, 5}, std::vector<float>(27));
    ADD_FAILURE() << "accepted 27 parameters for 2 x 28";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("params: expected 2 x 28 values, got 27"), std::string::npos) << e.what();
  }
}

TEST(OptimizedCayleyBadInput, NoGpuIsAClearError) {
  const auto device = optimized::probe_device();
  if (device.available) GTEST_SKIP() << "a GPU is present: " << device.reason;
  try {
    optimized::batched_cayley({1, 8, true, 5}, std::vector<float>(28));
    ADD_FAILURE() << "ran without a GPU";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no GPU"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace qoracle

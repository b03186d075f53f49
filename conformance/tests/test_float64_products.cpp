// The float64 reference's rank-r helpers (reference/float64_products) against Eigen's plain
// expressions: shapes from 1 x 1 to several panels and threads, and a rank of 0.
#include <gtest/gtest.h>

#include <thread>

#include "reference/error.hpp"
#include "reference/float64_products.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;

namespace {

struct Shape {
  int out, in, r;
};
// 300 x 5000: ~26 rows a panel (1 MiB), so row_norms_of_sum splits over panels and threads.
const Shape kShapes[] = {{1, 1, 1}, {7, 5, 3}, {64, 33, 0}, {300, 5000, 16}, {513, 257, 8}};

// Threads as the tests found them (a test may change them; each runs in its own process anyway).
struct ThreadsRestored {
  ~ThreadsRestored() { set_reference_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))); }
};

}  // namespace

TEST(Float64Products, AddScaledProductAddsSTimesBAInPlace) {
  ThreadsRestored restore;
  for (int threads : {1, 3}) {
    set_reference_threads(threads);
    for (const Shape& sh : kShapes) {
      const std::uint64_t seed = 41 + static_cast<std::uint64_t>(sh.out * 7 + sh.r);
      SeededRandom rng(seed);
      QORACLE_SEED_TRACE(seed);
      SCOPED_TRACE(std::to_string(sh.out) + "x" + std::to_string(sh.in) + " r=" + std::to_string(sh.r) +
                   " threads=" + std::to_string(threads));
      const Matrix w0 = rng.normal(sh.out, sh.in, 1.0), b = rng.normal(sh.out, sh.r, 0.3), a = rng.normal(sh.r, sh.in, 0.3);
      const double s = -1.75;
      const Matrix want = w0 + s * (b * a);
      Matrix w = w0;
      const double* storage = w.data();
      add_scaled_product(w, s, b, a);
      EXPECT_EQ(w.data(), storage);  // in place: the same buffer, no temporary swapped in
      EXPECT_TRUE(close(want, w, 1e-14, 1e-14));
      if (sh.r == 0) EXPECT_EQ(w, w0);
    }
  }
}

TEST(Float64Products, RowNormsOfSumAreTheRowNormsOfWPlusSBA) {
  ThreadsRestored restore;
  for (int threads : {1, 3}) {
    set_reference_threads(threads);
    for (const Shape& sh : kShapes) {
      const std::uint64_t seed = 43 + static_cast<std::uint64_t>(sh.out * 7 + sh.r);
      SeededRandom rng(seed);
      QORACLE_SEED_TRACE(seed);
      SCOPED_TRACE(std::to_string(sh.out) + "x" + std::to_string(sh.in) + " r=" + std::to_string(sh.r) +
                   " threads=" + std::to_string(threads));
      const Matrix w = rng.normal(sh.out, sh.in, 1.0), b = rng.normal(sh.out, sh.r, 0.3), a = rng.normal(sh.r, sh.in, 0.3);
      const Vector want = (w + 0.5 * (b * a)).rowwise().norm();
      EXPECT_TRUE(close(want, row_norms_of_sum(w, 0.5, b, a), 1e-14));
    }
  }
}

TEST(Float64Products, MismatchedShapesAreRefused) {
  Matrix w = Matrix::Zero(4, 3);
  EXPECT_THROW(add_scaled_product(w, 1.0, Matrix::Zero(4, 2), Matrix::Zero(3, 3)), Error);  // inner 2 vs 3
  EXPECT_THROW(add_scaled_product(w, 1.0, Matrix::Zero(5, 2), Matrix::Zero(2, 3)), Error);  // out 5 vs 4
  EXPECT_THROW(row_norms_of_sum(w, 1.0, Matrix::Zero(4, 2), Matrix::Zero(2, 4)), Error);    // in 4 vs 3
  EXPECT_EQ(w, Matrix::Zero(4, 3));
}

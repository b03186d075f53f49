#pragma once
// Test-side glue: gtest assertions over the one comparison helper (conformance/compare.hpp),
// so every numeric failure prints the same mismatch summary as `qoracle check`.
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "conformance/compare.hpp"
#include "conformance/tolerances.hpp"
#include "reference/error.hpp"
#include "reference/matrix.hpp"

namespace qoracle::testing {

inline ::testing::AssertionResult close(const Matrix& expected, const Matrix& actual, double rtol, double atol = 0.0) {
  const Comparison c = compare(Tensor::from_matrix(expected, Dtype::Float64), Tensor::from_matrix(actual, Dtype::Float64),
                               Tolerance{atol, rtol});
  if (c.passed) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << c.message();
}

// A float32 computation (LibTorch baseline, optimized kernels) against the float64 oracle.
inline ::testing::AssertionResult close_float32_to_oracle(const Matrix& oracle, const Matrix& float32_result) {
  const Tolerance t = float32_against_oracle();
  return close(oracle, float32_result, t.rtol, t.atol);
}

inline Matrix row(std::initializer_list<double> values) {
  Matrix m(1, static_cast<Eigen::Index>(values.size()));
  Eigen::Index j = 0;
  for (double v : values) m(0, j++) = v;
  return m;
}

inline Matrix rows(std::initializer_list<std::initializer_list<double>> values) {
  Matrix m(static_cast<Eigen::Index>(values.size()), static_cast<Eigen::Index>(values.begin()->size()));
  Eigen::Index i = 0;
  for (const auto& r : values) m.row(i++) = row(r);
  return m;
}

// What `f()` throws as qoracle::Error, or "accepted" when it returns (bad-input tests).
template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "accepted";
}

// Every random test prints its seed so a failure replays.
#define QORACLE_SEED_TRACE(seed) SCOPED_TRACE("seed=" + std::to_string(seed))

// A file of the source tree: the one the tests were built from, or QORACLE_SOURCE_DIR from the
// environment when the binaries run elsewhere (scripts/gpu-verify.sh runs them on a device machine
// from a copy of the tree).
inline std::string source_path(const std::string& relative) {
  const char* moved = std::getenv("QORACLE_SOURCE_DIR");
  return std::string(moved && *moved ? moved : QORACLE_SOURCE_DIR) + "/" + relative;
}

}  // namespace qoracle::testing

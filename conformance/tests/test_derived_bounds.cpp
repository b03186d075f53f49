// The derived bounds (conformance/derived_bounds.hpp) from both sides: PEFT's float32 computation,
// stood in for by the same algorithm in float32 (Eigen's LU inverse, float products), stays
// inside its bound, and a planted fault of relative size 1e-4 does not (TOLERANCES.md).
#include <gtest/gtest.h>

#include <cstdio>

#include "conformance/derived_bounds.hpp"
#include "reference/cayley.hpp"
#include "reference/seeded_random.hpp"
#include "reference/skew.hpp"

namespace qoracle {
namespace {

Matrix skew_block(SeededRandom& rng, int b, double stddev) {
  const Matrix v = rng.normal(b * (b - 1) / 2, 1, stddev);
  return skew_from_params(v.col(0), b);
}

double max_abs_diff(const Matrix& a, const Matrix& b) { return (a - b).cwiseAbs().maxCoeff(); }

struct InverseCase {
  int block;
  double stddev;
  std::uint64_t seed;
  bool fault_visible;  // false: kappa(R) makes the allowance larger than a 1e-4 fault (TOLERANCES.md)
};

class Float32Inverse : public ::testing::TestWithParam<InverseCase> {};

// W' (R^-1)^T with each block inverted in float32 (LU with partial pivoting, as LAPACK's getrf/getri),
// against the inverse in double rounded to float32 (the reference's emulation).
TEST_P(Float32Inverse, ProducerIsWithinTheBoundAndAFaultOfOneInTenThousandIsNot) {
  const auto [b, stddev, seed, fault_visible] = GetParam();
  SeededRandom rng(seed);
  const int blocks = 4, out = 24;
  std::vector<Matrix> rotations;
  Matrix lu_inverse = Matrix::Zero(blocks * b, blocks * b), exact_inverse = lu_inverse;
  for (int j = 0; j < blocks; ++j) {
    const Matrix r = round_to(Dtype::Float32, cayley_neumann(skew_block(rng, b, stddev), 5, Convention::Peft));
    rotations.push_back(r);
    const Eigen::MatrixXf r32 = r.cast<float>();
    lu_inverse.block(j * b, j * b, b, b) = Eigen::MatrixXf(r32.partialPivLu().inverse()).cast<double>();
    exact_inverse.block(j * b, j * b, b, b) = round_to(Dtype::Float32, Matrix(r.inverse()));
  }
  const Matrix merged = rng.uniform(out, blocks * b, -1.0 / 16, 1.0 / 16);
  const DerivedBound bound = float32_inverse_unmerge_bound(rotations, merged, Dtype::Float64);
  const Matrix reference = merged * exact_inverse.transpose();
  const double producer_error = max_abs_diff(merged * lu_inverse.transpose(), reference);
  const double fault_error = max_abs_diff(merged * (lu_inverse * (1 + 1e-4)).transpose(), reference);
  std::printf("seed=%llu b=%d std=%g: producer %.3g, fault %.3g, bound %.3g (%s)\n", static_cast<unsigned long long>(seed), b,
              stddev, producer_error, fault_error, bound.value, bound.why.c_str());
  EXPECT_LE(producer_error, bound.value);
  // Where the allowance has grown past a 1e-4 fault, this row cannot see it; the rotation's own
  // rows (delta_weight, merged_weight, forward), whose allowances do not grow with kappa, do.
  if (fault_visible)
    EXPECT_GT(fault_error, bound.value);
  else
    EXPECT_LE(fault_error, bound.value);
}

INSTANTIATE_TEST_SUITE_P(DerivedBounds, Float32Inverse,
                         ::testing::Values(InverseCase{8, 0.1, 11, true}, InverseCase{16, 0.1, 12, true},
                                           InverseCase{32, 0.05, 13, true}, InverseCase{32, 0.1, 14, false},
                                           InverseCase{64, 0.03, 15, true}),
                         [](const auto& info) {
                           return "b" + std::to_string(info.param.block) + "_std" +
                                  std::to_string(static_cast<int>(info.param.stddev * 100)) + "e_2_seed" +
                                  std::to_string(info.param.seed);
                         });

TEST(DerivedBounds, InverseBoundGrowsWithTheBlockAndTheConditionNumber) {
  SeededRandom rng(21);
  auto bound_for = [&](int b, double stddev) {
    const Matrix r = round_to(Dtype::Float32, cayley_neumann(skew_block(rng, b, stddev), 5, Convention::Peft));
    return float32_inverse_unmerge_bound({r}, Matrix::Ones(4, b), Dtype::Float64).value;
  };
  EXPECT_GT(bound_for(64, 0.05), 2 * bound_for(8, 0.05));
  EXPECT_GT(bound_for(32, 0.3), 10 * bound_for(32, 0.01));  // kappa(R) grows with the parameters
}

// s B A in float32 (r products, then the scaling) against the exact delta.
TEST(DerivedBounds, LoraDeltaInFloat32IsWithinTheBoundAndAFaultIsNot) {
  for (std::uint64_t seed : {31, 32, 33}) {
    SeededRandom rng(seed);
    const int r = 16, in = 256, out = 128;
    LoraConfig config;
    config.r = r;
    config.lora_alpha = 32;
    const Matrix a = round_to(Dtype::Float32, rng.normal(r, in, 0.1));
    const Matrix b = round_to(Dtype::Float32, rng.normal(out, r, 0.1));
    const LoraAdapter adapter(in, out, config, a, b);
    const float s = static_cast<float>(adapter.scaling());
    const Matrix float32_delta = (Eigen::MatrixXf(b.cast<float>() * a.cast<float>()) * s).cast<double>();
    const DerivedBound bound = lora_delta_bound(adapter, Dtype::Float32);
    const double producer_error = max_abs_diff(float32_delta, adapter.delta_weight());
    const double fault_error = max_abs_diff(float32_delta * (1 + 1e-4), adapter.delta_weight());
    std::printf("seed=%llu: producer %.3g, fault %.3g, bound %.3g\n", static_cast<unsigned long long>(seed), producer_error,
                fault_error, bound.value);
    EXPECT_LE(producer_error, bound.value) << "seed=" << seed;
    EXPECT_GT(fault_error, bound.value) << "seed=" << seed;
  }
}

TEST(DerivedBounds, DoraNormAllowanceGrowsOnlyLogarithmically) {
  EXPECT_DOUBLE_EQ(cascade_sum_error(16384, 1.0), 16.0);
  EXPECT_LT(dora_factor_bound(4096, Dtype::Float32, 1.0).value, 1e-6);  // a 1e-4 fault stays visible
}

}  // namespace
}  // namespace qoracle

// Every committed fixture's forward through the optimized path: the case's layer (its base in its
// stored layout, its active adapters, its dtype's activations) as the fused kernels take it, run
// through the GEMV on the fixture's tokens and through the GEMM on those tokens repeated past
// kGemvMaxTokens. Judged against the float64 oracle (the reference on the same inputs) by the rule
// of conformance/TOLERANCES.md for the fixture's dtype:
//   float16/bfloat16: the fp64 referee, at most k times as far from the oracle as PEFT's own
//     result in that dtype (the fixture's expected forward);
//   float32/float64: the float32-against-oracle rule (the kernels compute in float32).
// On the host the kernels' shared code runs serially; with a GPU the kernels run too.
#include <gtest/gtest.h>

#include "committed_cases.hpp"
#include "conformance/case_runner.hpp"
#include "conformance/tolerances.hpp"
#include "optimized/device_probe.hpp"
#include "reference/dtype.hpp"
#include "optimized/fused_gemm.hpp"
#include "optimized/fused_layer.hpp"
#include "reference/error.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using optimized::HostLayer;
using testing::CaseRef;

const ExpectedOutput* forward_of(const FixtureCase& c) {
  for (const ExpectedOutput& e : c.expected)
    if (e.name == "forward") return &e;
  return nullptr;
}

Matrix forward_of(const FixtureLayer& layer, const Matrix& x) {
  return std::visit([&](const auto& l) { return l.forward(x); }, layer);
}

// The rows of m repeated until there are more than kGemvMaxTokens of them.
Matrix past_the_gemv(const Matrix& m) {
  const auto reps = static_cast<Eigen::Index>(optimized::kGemvMaxTokens / m.rows() + 1);
  return m.replicate(reps, 1);
}

::testing::AssertionResult judged(Dtype dtype, const Matrix& oracle, const Matrix& peft, const Matrix& ours) {
  if (dtype == Dtype::Float64 || dtype == Dtype::Float32) return testing::close_float32_to_oracle(oracle, ours);
  const OracleJudgement j = judge_against_oracle(Tensor::from_matrix(oracle, Dtype::Float64), Tensor::from_matrix(peft, Dtype::Float64),
                                                 Tensor::from_matrix(ours, Dtype::Float64), oracle_factor(dtype), dtype);
  if (j.passed) return ::testing::AssertionSuccess() << j.message();
  return ::testing::AssertionFailure() << j.message();
}

// The host emulation of whichever kernel `tokens` selects, and the kernel itself on a GPU.
void expect_optimized_agrees(const HostLayer& layer, Dtype dtype, const Matrix& x, const Matrix& oracle, const Matrix& peft) {
  const auto tokens = static_cast<int>(x.rows());
  const std::vector<float> xs = optimized::to_floats(x);
  const Matrix host =
      optimized::from_floats(optimized::fused_forward_on_host(layer, xs, tokens), tokens, layer.out_features);
  EXPECT_TRUE(judged(dtype, oracle, peft, host)) << "host emulation, " << tokens << " tokens";
  EXPECT_EQ(host, round_to(dtype == Dtype::Float64 ? Dtype::Float32 : dtype, host)) << "y is stored in the activation dtype";
  const auto device = optimized::probe_device();
  if (!device.available) return;
  const Matrix gpu = optimized::from_floats(optimized::fused_forward(layer, xs, tokens), tokens, layer.out_features);
  EXPECT_TRUE(judged(dtype, oracle, peft, gpu)) << "kernel on " << device.reason << ", " << tokens << " tokens";
  // The kernel repeats its emulation's operations; only float32 summation order and FMA
  // contraction differ, which can move a 16-bit output by one ulp.
  const double rtol = dtype == Dtype::Float16 || dtype == Dtype::BFloat16 ? 2 * unit_roundoff(dtype) : float32_against_oracle().rtol;
  EXPECT_TRUE(testing::close(host, gpu, rtol)) << "kernel vs its emulation on " << device.reason;
}

class OptimizedFixture : public ::testing::TestWithParam<CaseRef> {};

TEST_P(OptimizedFixture, ForwardAgreesWithTheOracle) {
  const FixtureCase c = read_case(GetParam().file, GetParam().name);
  const ExpectedOutput* expected = forward_of(c);
  if (!expected) GTEST_SKIP() << "no forward output";
  const Matrix x = c.x.as_matrix("inputs/x");
  const Matrix peft = expected->value.as_matrix("expected/forward");
  const Matrix oracle = forward_of(fixture_layer(c, Dtype::Float64), x);
  // Every committed layer runs: an adapter kind the kernels lack fails here, naming it.
  const HostLayer layer = std::visit([](const auto& l) { return optimized::host_layer(l); }, fixture_layer(c, c.dtype));
  SCOPED_TRACE(std::string(dtype_name(c.dtype)) + " " + c.layer_kind + " (" + optimized::activations_name(layer.activations) +
               " activations)");
  expect_optimized_agrees(layer, c.dtype, x, oracle, peft);
  expect_optimized_agrees(layer, c.dtype, past_the_gemv(x), past_the_gemv(oracle), past_the_gemv(peft));
}

INSTANTIATE_TEST_SUITE_P(Committed, OptimizedFixture, ::testing::ValuesIn(testing::committed_cases()),
                         [](const ::testing::TestParamInfo<CaseRef>& info) { return testing::sanitized(info.param); });

}  // namespace
}  // namespace qoracle

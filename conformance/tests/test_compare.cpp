// The comparison helper itself: what passes, what fails, and what the messages say.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "conformance/compare.hpp"

using namespace qoracle;

namespace {
Tensor t(std::vector<double> v) {
  Tensor x;
  x.shape = {static_cast<std::int64_t>(v.size())};
  x.values = std::move(v);
  return x;
}
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();
}  // namespace

TEST(Compare, BoundIsRelativeToTheLargestExpectedMagnitude) {
  // The small entry is off by 49x its own size, but only 4.9e-13 of the largest entry.
  EXPECT_TRUE(compare(t({100, 1e-12}), t({100, 5e-11}), {0, 1e-12}).passed);
  EXPECT_FALSE(compare(t({100, 1e-12}), t({100, 5e-11}), {0, 1e-13}).passed);
  EXPECT_TRUE(compare(t({0, 0}), t({0, 1e-3}), {1e-3, 0}).passed);  // atol for all-zero expectations
}

TEST(Compare, CountsMismatchesAndLocatesTheWorst) {
  const Comparison c = compare(t({1, 2, 3, 4}), t({1, 2.1, 3, 3.5}), {0, 0.01});
  EXPECT_FALSE(c.passed);
  EXPECT_EQ(c.mismatched, 2);
  EXPECT_EQ(c.max_abs_index, 3);
  EXPECT_DOUBLE_EQ(c.max_abs_error, 0.5);
  EXPECT_NE(c.message().find("mismatched elements 2 / 4"), std::string::npos) << c.message();
}

TEST(Compare, ShapesMustAgree) {
  Tensor a = t({1, 2, 3, 4}), b = a;
  b.shape = {2, 2};
  const Comparison c = compare(a, b, {1, 1});
  EXPECT_FALSE(c.passed);
  EXPECT_NE(c.message().find("shape mismatch"), std::string::npos);
}

TEST(Compare, NonFiniteValuesMustAgreeExactly) {
  EXPECT_TRUE(compare(t({kInf, kNaN, 1}), t({kInf, kNaN, 1}), {0, 0}).passed);
  EXPECT_FALSE(compare(t({kInf}), t({-kInf}), {1e300, 1}).passed);
  EXPECT_FALSE(compare(t({1}), t({kNaN}), {1e300, 1}).passed);
  EXPECT_FALSE(compare(t({kNaN}), t({1}), {1e300, 1}).passed);
}

TEST(Compare, OracleRuleAllowsKTimesTheBaselineError) {
  const Tensor oracle = t({1.0, -2.0}), baseline = t({1.01, -2.0});  // baseline error 0.01
  EXPECT_TRUE(judge_against_oracle(oracle, baseline, t({1.0, -2.015}), 2.0, Dtype::BFloat16).passed);
  EXPECT_FALSE(judge_against_oracle(oracle, baseline, t({1.0, -2.05}), 2.0, Dtype::BFloat16).passed);
  // An exact baseline still leaves one unit roundoff of max|oracle|.
  EXPECT_TRUE(judge_against_oracle(oracle, oracle, t({1.0, -2.0 + 2e-3}), 2.0, Dtype::BFloat16).passed);
  EXPECT_FALSE(judge_against_oracle(oracle, oracle, t({1.0, kNaN}), 2.0, Dtype::BFloat16).passed);
}

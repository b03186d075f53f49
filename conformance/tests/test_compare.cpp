// The comparison helper itself: what passes, what fails, and what the messages say.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include "conformance/compare.hpp"
#include "conformance/judge_result.hpp"
#include "conformance/tolerances.hpp"
#include "fixtures/format/fixture_case.hpp"
#include "test_support.hpp"

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

// A float16 value past 65504 is inf in the producer and the emulation alike (PEFT 0.17's OFT
// unmerge by R, seed 800014 of the live sweep): the same overflow as the baseline passes, and the
// message says so; an inf the baseline does not have fails and is named.
TEST(Compare, OracleRuleAcceptsTheBaselinesOwnOverflow) {
  const Tensor oracle = t({1.0, 7.0e4}), baseline = t({1.0, kInf});
  const OracleJudgement same = judge_against_oracle(oracle, baseline, t({1.0, kInf}), 2.0, Dtype::Float16);
  EXPECT_TRUE(same.passed) << same.message();
  EXPECT_NE(same.message().find("1 element(s) non-finite where the oracle is finite, as the baseline's"),
            std::string::npos) << same.message();
  for (const double r : {-kInf, kNaN}) {
    const OracleJudgement other = judge_against_oracle(oracle, baseline, t({1.0, r}), 2.0, Dtype::Float16);
    EXPECT_FALSE(other.passed) << other.message();
    EXPECT_NE(other.message().find("1 element(s) non-finite on one side of the oracle, and the baseline is not"),
              std::string::npos) << other.message();
  }
  EXPECT_FALSE(judge_against_oracle(oracle, t({1.0, 6.5e4}), t({1.0, kInf}), 2.0, Dtype::Float16).passed);
}

// judge_result: the rule for a result computed its own way (fused kernels, a user's kernel).
TEST(JudgeResult, HalfPrecisionResultsMeetTheRefereeAndAreValuesOfTheirDtype) {
  // The producer is one bfloat16 step (2^-7 at 1) off: the bound is 2 * 2^-7 + 2^-8 * 2 = 0.0234.
  const Tensor oracle = t({1.0, -2.0}), producer = t({1.0 + 1.0 / 128, -2.0});
  CheckRow row;
  row.output = "forward";
  EXPECT_EQ(judge_result(row, Dtype::BFloat16, oracle, producer, t({1.0, -2.0 - 1.0 / 64})).status, CheckStatus::Pass);
  EXPECT_EQ(judge_result(row, Dtype::BFloat16, oracle, producer, t({1.0, -2.0 - 2.0 / 64})).status, CheckStatus::Fail);
  // Within the bound, but 1 + 2^-12 is no bfloat16 value.
  const CheckRow odd = judge_result(row, Dtype::BFloat16, oracle, producer, t({1.0 + 1.0 / 4096, -2.0}));
  EXPECT_EQ(odd.status, CheckStatus::Fail);
  EXPECT_NE(row_detail(odd).find("not bfloat16"), std::string::npos) << row_detail(odd);
}

TEST(JudgeResult, Float32AndFloat64ResultsMeetTheirToleranceAgainstTheOracle) {
  const Tensor oracle = t({1.0, -2.0});
  CheckRow row;
  row.output = "forward@mine";
  EXPECT_EQ(judge_result(row, Dtype::Float32, oracle, oracle, t({1.0, -2.0 + 1.9e-5})).status, CheckStatus::Pass);
  EXPECT_EQ(judge_result(row, Dtype::Float32, oracle, oracle, t({1.0, -2.0 + 2.1e-5})).status, CheckStatus::Fail);
  EXPECT_EQ(judge_result(row, Dtype::Float64, oracle, oracle, t({1.0, -2.0 + 1e-12})).status, CheckStatus::Pass);
  EXPECT_EQ(judge_result(row, Dtype::Float64, oracle, oracle, t({1.0, -2.0 + 1e-11})).status, CheckStatus::Fail);
}

// The exporter (fixtures/export/export_peft.py) wrote each PEFT fixture's tolerances with its own
// copy of the table: tolerance_for_output must give the same for every expected output.
TEST(Tolerances, ForOutputIsWhatTheExporterWrote) {
  int checked = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(qoracle::testing::source_path("fixtures/peft"))) {
    if (entry.path().extension() != ".h5") continue;
    for (const FixtureCase& c : read_all_cases(entry.path().string()))
      for (const ExpectedOutput& e : c.expected) {
        // Gradients follow export_gradients.py's own rules (TOLERANCES.md, "Gradients (real-PEFT
        // fixtures)"), not the forward's table.
        if (e.name == "grad_x" || e.name.starts_with("grad/")) continue;
        const Dtype d = e.value.stored_type.empty() ? e.value.logical_dtype : c.dtype;
        const Tolerance want = tolerance_for_output(c.layer_kind, d, e.name, c.convention,
                                                    static_cast<int>(c.base.config.get_int("group_size", 0)));
        EXPECT_EQ(want.atol, e.tolerance.atol) << c.where() << " " << e.name;
        EXPECT_EQ(want.rtol, e.tolerance.rtol) << c.where() << " " << e.name;
        EXPECT_EQ(want.max_mismatch_fraction, e.tolerance.max_mismatch_fraction) << c.where() << " " << e.name;
        ++checked;
      }
  }
  EXPECT_GT(checked, 1000);
}

TEST(Compare, NamesNaNAndSaysWhenNoFinitePairIsLeft) {
  const Comparison some = compare(t({1, kNaN, 3}), t({1, 2, kNaN}), {0, 0.01});
  EXPECT_FALSE(some.passed);
  EXPECT_NE(some.message().find("NaN: 1 in expected, 1 in actual (first at flat index 1)"), std::string::npos) << some.message();
  const Comparison all = compare(t({kNaN, kNaN}), t({kNaN, 1}), {0, 0.01});
  EXPECT_NE(all.message().find("no pair of finite values to compare"), std::string::npos) << all.message();
  EXPECT_EQ(all.message().find("flat index -1"), std::string::npos) << all.message();
}

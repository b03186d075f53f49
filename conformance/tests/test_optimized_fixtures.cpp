// Every committed fixture's forward through the optimized path (conformance/optimized_check): the
// case's layer as the fused kernels take it (its base in its stored layout, its active adapters in
// order, its dtype's activations), through the GEMV on the fixture's tokens and through the GEMM
// on them repeated past 8; on the host the kernels' shared code, with a GPU the kernels too.
// Judged against the float64 oracle by the rule of conformance/TOLERANCES.md for the case's dtype.
// Also the GPU merges: into nn.Linear where the producer merged (the forward is kept), and into
// EETQ on every EETQ layer (against the reference's export).
#include <gtest/gtest.h>

#include <filesystem>

#include "committed_cases.hpp"
#include "conformance/optimized_check.hpp"
#include "optimized/device/device_probe.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using testing::CaseRef;

class OptimizedFixture : public ::testing::TestWithParam<CaseRef> {};

TEST_P(OptimizedFixture, ForwardAgreesWithTheOracle) {
  const FixtureCase c = read_case(GetParam().file, GetParam().name);
  const std::vector<CheckRow> rows = check_case_optimized(c);
  if (rows.empty()) GTEST_SKIP() << "no forward output";
  SCOPED_TRACE(std::string(dtype_name(c.dtype)) + " " + c.layer_kind);
  // Every committed layer runs: an adapter kind the kernels lack is an Error row naming it.
  const std::size_t paths = optimized::probe_device().available ? 4 : 2;
  EXPECT_EQ(rows.size(), paths) << (rows.empty() ? "" : rows.front().error);
  for (const CheckRow& row : rows)
    EXPECT_EQ(row.status, CheckStatus::Pass) << row.output << ": " << row_detail(row);
}

// The GPU merge into nn.Linear where the producer merged: the merged layer's forward.
TEST_P(OptimizedFixture, DenseMergeKeepsTheForward) {
  const FixtureCase c = read_case(GetParam().file, GetParam().name);
  const std::vector<CheckRow> rows = check_case_optimized_merge(c);
  if (rows.empty()) GTEST_SKIP() << "no merge into a plain linear layer";
  SCOPED_TRACE(std::string(dtype_name(c.dtype)) + " " + c.layer_kind);
  EXPECT_EQ(rows.size(), optimized::probe_device().available ? 2u : 1u) << rows.front().error;
  for (const CheckRow& row : rows)
    EXPECT_EQ(row.status, CheckStatus::Pass) << row.output << ": " << row_detail(row);
}

INSTANTIATE_TEST_SUITE_P(Committed, OptimizedFixture, ::testing::ValuesIn(testing::committed_cases_one_test_each()),
                         [](const ::testing::TestParamInfo<CaseRef>& info) { return testing::sanitized(info.param); });

// The GPU EETQ merge (the export PEFT refuses) on every EETQ layer fixture: against the
// reference's eetq_merge_to_dequantized of the same layer.
class OptimizedEetqFixture : public ::testing::TestWithParam<CaseRef> {};

TEST_P(OptimizedEetqFixture, MergeAgreesWithTheReferenceExport) {
  const FixtureCase c = read_case(GetParam().file, GetParam().name);
  const std::vector<CheckRow> rows = check_case_optimized_eetq_merge(c);
  SCOPED_TRACE(std::string(dtype_name(c.dtype)) + " " + c.layer_kind);
  // Codes and scales, and the bias where there is one; twice with a GPU.
  EXPECT_GE(rows.size(), optimized::probe_device().available ? 4u : 2u) << (rows.empty() ? "" : rows.front().error);
  for (const CheckRow& row : rows)
    EXPECT_EQ(row.status, CheckStatus::Pass) << row.output << ": " << row_detail(row);
}

std::vector<CaseRef> eetq_layer_cases() {
  std::vector<CaseRef> refs = testing::committed_cases();
  std::erase_if(refs, [](const CaseRef& r) {
    const std::string stem = std::filesystem::path(r.file).stem().string();
    return stem.rfind("lora_eetq_", 0) != 0 && stem.rfind("oft_eetq_", 0) != 0;
  });
  return refs;
}

INSTANTIATE_TEST_SUITE_P(Committed, OptimizedEetqFixture, ::testing::ValuesIn(eetq_layer_cases()),
                         [](const ::testing::TestParamInfo<CaseRef>& info) { return testing::sanitized(info.param); });

}  // namespace
}  // namespace qoracle

// The PEFT-order GPU baseline (bench/peft_order_gpu) computes what PEFT computes: every committed
// fixture's forward through it (PEFT's ops on cuBLAS, in the fixture's dtype), judged like the
// optimized path (conformance/TOLERANCES.md): float16/bfloat16 by the fp64 referee against PEFT's
// own result, float32/float64 by the float32 rule. A timing baseline whose result is wrong would
// make every ratio in reports/gpu meaningless. Without a GPU (or cuBLAS) the cases skip; the
// refusal and the layer checks are tested everywhere.
#include <gtest/gtest.h>

#include "bench/layer_cases.hpp"
#include "bench/peft_order_gpu/peft_order_layer.hpp"
#include "committed_cases.hpp"
#include "conformance/optimized_check.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "reference/error.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using testing::CaseRef;

std::vector<float> baseline_forward(const optimized::HostLayer& layer, const std::vector<float>& x, int tokens) {
  return bench::PeftOrderGpuLayer(layer).forward(x, tokens);
}

std::string refusal(const optimized::HostLayer& layer) {
  return testing::error_of([&] { bench::PeftOrderGpuLayer l(layer); });
}

class PeftOrderGpu : public ::testing::TestWithParam<CaseRef> {};

TEST_P(PeftOrderGpu, ForwardAgreesWithTheOracle) {
  const auto device = optimized::probe_device();
  if (!device.available) GTEST_SKIP() << "no GPU: " << device.reason;
  const FixtureCase c = read_case(GetParam().file, GetParam().name);
  const std::vector<CheckRow> rows = check_case_forward(c, {{"peft-order-gpu", baseline_forward, true, true}});
  if (rows.empty()) GTEST_SKIP() << "no forward output";
  SCOPED_TRACE(std::string(dtype_name(c.dtype)) + " " + c.layer_kind + " on " + device.reason);
  EXPECT_EQ(rows.size(), 2u) << (rows.empty() ? "" : rows.front().error);
  for (const CheckRow& row : rows)
    EXPECT_EQ(row.status, CheckStatus::Pass) << row.output << ": " << row_detail(row);
}

INSTANTIATE_TEST_SUITE_P(Committed, PeftOrderGpu, ::testing::ValuesIn(testing::committed_cases_one_test_each()),
                         [](const ::testing::TestParamInfo<CaseRef>& info) { return testing::sanitized(info.param); });

// Without a GPU it refuses with the reason; with one it builds. A bad layer is refused first,
// naming the field, either way.
TEST(PeftOrderGpuLayer, RefusesBadLayersAndMissingDevices) {
  const optimized::HostLayer good = optimized::host_layer(bench::lora_layer<HqqLinear>(256), "default");
  const auto device = optimized::probe_device();
  if (device.available)
    EXPECT_EQ(refusal(good), "accepted");
  else
    EXPECT_NE(refusal(good).find("no GPU: "), std::string::npos) << refusal(good);
  optimized::HostLayer short_b = good;
  short_b.lora_b.pop_back();
  EXPECT_NE(refusal(short_b).find("lora_b: expected"), std::string::npos) << refusal(short_b);
}

}  // namespace
}  // namespace qoracle

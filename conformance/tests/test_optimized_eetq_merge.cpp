// The GPU EETQ merge (optimized/eetq_merge), PEFT's missing export path, against the reference's
// eetq_merge_to_dequantized: its host emulation requantizes its own float32 merged weight exactly
// as the reference's quantizer does (codes, bytes in the layout, scales: identical), and lands
// within one code of the exact float64 merge's requantization (conformance/TOLERANCES.md, "EETQ
// merge"); the merged layer's fused forward is its stored weights' forward. On a GPU, the kernels
// against the same.
#include <gtest/gtest.h>

#include "conformance/optimized_check.hpp"
#include "merge_adapters.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/merge/eetq_merge.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "optimized/merge/merged_weight.hpp"
#include "reference/eetq_merge.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using bench::AdapterKind;

// One row per case: the adapters merged, the base's byte layout and the case's seed. (PEFT's EETQ
// layers have no DoRA.)
struct MergeCase {
  const char* name;
  std::uint64_t seed;
  testing::MergeAdapters adapters;
  EetqLayout layout;
  friend void PrintTo(const MergeCase& c, std::ostream* os) {
    *os << c.name << " " << eetq_layout_name(c.layout) << " seed " << c.seed;
  }
};

const MergeCase kCases[] = {
    {"lora", 2301, {AdapterKind::Lora, 1}, EetqLayout::Interleaved},
    {"lora_volta", 2302, {AdapterKind::Lora, 1}, EetqLayout::Volta},
    {"lora_plain", 2303, {AdapterKind::Lora, 1}, EetqLayout::Plain},
    {"lora_bias", 2304, {AdapterKind::Lora, 1, false, true}, EetqLayout::Interleaved},
    {"lora2", 2305, {AdapterKind::Lora, 2}, EetqLayout::Volta},
    {"oft", 2306, {AdapterKind::Oft, 1}, EetqLayout::Interleaved},
    {"oft_shared", 2307, {AdapterKind::Oft, 1, false, false, true}, EetqLayout::Plain},
    {"oft2", 2308, {AdapterKind::Oft, 2}, EetqLayout::Interleaved},
};

struct Expected {
  optimized::HostLayer layer;  // before the merge, as the kernels take it (the case's layout)
  EetqMergeExport exact;       // the reference's export: the float64 merge requantized
};

template <class Layer>
Expected merged_by_reference(const Layer& layer, const std::vector<std::string>& names, EetqLayout layout) {
  optimized::HostLayer host = optimized::host_layer(layer, names);
  host.weights = optimized::host_base(layer.base(), layout).weights;
  return {std::move(host), eetq_merge_to_dequantized(layer, names)};
}

// Every adapter merged at once on the exact weight (the GPU's single pass). `b_scale` scales
// lora_B's spread (a huge one makes the merged weight overflow float16).
Expected build(const MergeCase& c, std::uint64_t seed, double b_scale = 1.0) {
  SeededRandom rng(seed);
  const EetqLinear base(eetq_quantize(rng.normal(64, 128, 0.02)),
                        round_to(Dtype::Float16, Vector(rng.normal(64, 1, 0.1).col(0))), EetqKernel::Exact);
  testing::MergeAdapters adapters = c.adapters;
  adapters.b_sd = 0.02 * b_scale;
  const std::vector<std::string> names = testing::merge_adapter_names(adapters);
  if (adapters.kind == AdapterKind::Lora)
    return merged_by_reference(testing::lora_to_merge(base, adapters, rng), names, c.layout);
  return merged_by_reference(testing::oft_to_merge(base, adapters, rng), names, c.layout);
}

// Against the exact merge's export, by the fixtures' rule (conformance/optimized_check).
void expect_near_exact_merge(const Expected& e, const optimized::HostLayer& merged, const std::string& who) {
  EXPECT_TRUE(merged.oft.empty() && merged.rank == 0 && merged.dot_scale.empty()) << who << ": adapters left";
  const std::vector<CheckRow> rows = judge_eetq_merge(CheckRow{}, who, e.exact, merged);
  EXPECT_EQ(rows.size(), 3u);  // codes, scales, bias
  for (const CheckRow& row : rows) EXPECT_EQ(row.status, CheckStatus::Pass) << row.output << ": " << row_detail(row);
}

// The merged layer as the kernels read it: its fused forward against the forward of its own
// stored weights in float64, by the float32-against-oracle rule.
void expect_forward_reads_the_layout(const optimized::HostLayer& merged, bool on_gpu, std::uint64_t seed,
                                     const std::string& who) {
  SeededRandom rng(seed);
  const Matrix x = round_to(Dtype::Float32, rng.normal(3, merged.in_features, 1.0));
  const std::vector<float> xf = optimized::to_floats(x);
  const std::vector<float> y =
      on_gpu ? optimized::fused_forward(merged, xf, 3) : optimized::fused_forward_on_host(merged, xf, 3);
  EXPECT_TRUE(testing::close_float32_to_oracle(optimized::eetq_base_of(merged).forward(x),
                                               optimized::from_floats(y, 3, merged.out_features)))
      << who << " merged forward";
}

class OptimizedEetqMerge : public ::testing::TestWithParam<MergeCase> {};

TEST_P(OptimizedEetqMerge, AgreesWithTheReferenceExport) {
  const MergeCase c = GetParam();
  QORACLE_SEED_TRACE(c.seed);
  const Expected e = build(c, c.seed);
  const optimized::HostLayer host = optimized::eetq_merge_on_host(e.layer);
  // Bit for bit: the reference's quantizer on the same float32 merged weight.
  const EetqQuantized same = eetq_quantize(
      optimized::from_floats(optimized::merged_weight_on_host(e.layer), e.layer.out_features, e.layer.in_features));
  const EetqLinear stored = optimized::eetq_base_of(host);
  EXPECT_EQ(stored.quantized().q, same.q) << "host emulation codes";
  EXPECT_EQ(stored.quantized().scales, same.scales) << "host emulation scales";
  expect_near_exact_merge(e, host, "host emulation");
  expect_forward_reads_the_layout(host, false, c.seed + 1, "host emulation");
  const auto device = optimized::probe_device();
  if (!device.available) return;
  const std::string gpu = "GPU (" + device.reason + ")";
  const optimized::HostLayer merged = optimized::eetq_merge(e.layer);
  expect_near_exact_merge(e, merged, gpu);
  expect_forward_reads_the_layout(merged, true, c.seed + 1, gpu);
}

INSTANTIATE_TEST_SUITE_P(Cases, OptimizedEetqMerge, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(OptimizedEetqMergeBadInput, NamesWhatDoesNotFit) {
  auto message = [](const optimized::HostLayer& l) { return testing::error_of([&] { optimized::eetq_merge(l); }); };
  optimized::HostLayer dense = build(kCases[0], 2401).layer;
  dense.weights = optimized::DenseWeights{std::vector<float>(64 * 128, 0.5f)};
  EXPECT_NE(message(dense).find("base: eetq_merge needs an EETQ layer"), std::string::npos) << message(dense);
  optimized::HostLayer unbiased = build(kCases[3], 2402).layer;
  unbiased.bias.clear();
  EXPECT_NE(message(unbiased).find("bias: lora_bias needs a base bias to merge into"), std::string::npos);
  optimized::HostLayer none = build(kCases[5], 2403).layer;
  none.oft.clear();
  EXPECT_NE(message(none).find("adapter: eetq_merge needs LoRA or OFT adapters"), std::string::npos);
}

// A merged weight past float16's range: the library would store inf scales and NaN codes; the
// reference's export and both merges refuse it by name.
TEST(OptimizedEetqMergeBadInput, RefusesAMergedWeightBeyondFloat16) {
  // lora_B scaled by 1e7: merged weights of order 1e5, past float16's 65504.
  const std::string reference = testing::error_of([] { build(kCases[0], 2404, 1e7); });
  EXPECT_NE(reference.find("weight: element ["), std::string::npos) << reference;
  EXPECT_NE(reference.find("does not fit float16"), std::string::npos) << reference;
  optimized::HostLayer l = build(kCases[0], 2404).layer;
  for (float& b : l.lora_b) b *= 1e7f;
  const std::string host = testing::error_of([&] { optimized::eetq_merge_on_host(l); });
  EXPECT_NE(host.find("merged weight: element ["), std::string::npos) << host;
  EXPECT_NE(host.find("does not fit float16"), std::string::npos) << host;
  if (!optimized::probe_device().available) return;
  EXPECT_EQ(testing::error_of([&] { optimized::eetq_merge(l); }), host);
}

}  // namespace
}  // namespace qoracle

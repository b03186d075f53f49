// The GPU merge into a plain linear layer (optimized/dense_merge): its host emulation (the
// kernels' element code) against the reference's float64 merge, by the float32-against-oracle
// rule (conformance/TOLERANCES.md): the merged weight, the merged bias and the merged layer's fused
// forward; on a GPU, the kernels against the same.
#include <gtest/gtest.h>

#include "merge_adapters.hpp"
#include "optimized/merge/dense_merge.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using bench::AdapterKind;

// One row per case: the adapters merged and the case's seed.
struct MergeCase {
  const char* name;
  std::uint64_t seed;
  testing::MergeAdapters adapters;
  friend void PrintTo(const MergeCase& c, std::ostream* os) { *os << c.name << " seed " << c.seed; }
};

const MergeCase kCases[] = {
    {"lora", 2101, {AdapterKind::Lora, 1}},
    {"lora_bias", 2102, {AdapterKind::Lora, 1, false, true}},
    {"dora", 2103, {AdapterKind::Lora, 1, true}},
    {"lora2", 2104, {AdapterKind::Lora, 2}},
    {"dora2", 2105, {AdapterKind::Lora, 2, true}},
    {"oft", 2106, {AdapterKind::Oft, 1}},
    {"oft_shared", 2107, {AdapterKind::Oft, 1, false, false, true}},
    {"oft2", 2108, {AdapterKind::Oft, 2}},
};

struct Expected {
  optimized::HostLayer layer;  // before the merge, as the kernels take it
  Matrix w;                    // the reference's merged weight and bias
  Vector bias;
  Matrix x, y;  // the reference's merged forward on 3 tokens
};

template <class Layer>
Expected merged_by_reference(Layer layer, const std::vector<std::string>& names, SeededRandom& rng) {
  optimized::HostLayer host = optimized::host_layer(layer, names);
  layer.merge(names);
  const Matrix x = round_to(Dtype::Float32, rng.normal(3, layer.base().in_features(), 1.0));
  return {std::move(host), layer.base().weight(), *layer.base().bias(), x, layer.forward(x)};
}

// Every adapter merged at once on the exact weight (the GPU's single pass).
Expected build(const MergeCase& c, std::uint64_t seed) {  // seed: c.seed, or another draw
  SeededRandom rng(seed);
  const int out = 48, in = 128;
  const DenseLinear base(round_to(Dtype::Float32, rng.normal(out, in, 0.05)),
                         round_to(Dtype::Float32, Vector(rng.normal(out, 1, 0.1).col(0))));
  const std::vector<std::string> names = testing::merge_adapter_names(c.adapters);
  if (c.adapters.kind == AdapterKind::Lora)
    return merged_by_reference(testing::lora_to_merge(base, c.adapters, rng), names, rng);
  return merged_by_reference(testing::oft_to_merge(base, c.adapters, rng), names, rng);
}

Matrix weight_of(const optimized::HostLayer& l) {
  return optimized::from_floats(std::get<optimized::DenseWeights>(l.weights).w, l.out_features, l.in_features);
}

void expect_merge_agrees(const Expected& e, const optimized::HostLayer& merged, bool on_gpu, const std::string& who) {
  EXPECT_TRUE(merged.oft.empty() && merged.rank == 0 && merged.dot_scale.empty()) << who << ": adapters left";
  const int out = merged.out_features, tokens = static_cast<int>(e.x.rows());
  EXPECT_TRUE(testing::close_float32_to_oracle(e.w, weight_of(merged))) << who << " merged weight";
  EXPECT_TRUE(testing::close_float32_to_oracle(e.bias, optimized::from_floats(merged.bias, out, 1)))
      << who << " merged bias";
  const std::vector<float> x = optimized::to_floats(e.x);
  const std::vector<float> y =
      on_gpu ? optimized::fused_forward(merged, x, tokens) : optimized::fused_forward_on_host(merged, x, tokens);
  EXPECT_TRUE(testing::close_float32_to_oracle(e.y, optimized::from_floats(y, tokens, out)))
      << who << " merged forward";
}

class OptimizedDenseMerge : public ::testing::TestWithParam<MergeCase> {};

TEST_P(OptimizedDenseMerge, AgreesWithTheReferenceMerge) {
  const MergeCase c = GetParam();
  QORACLE_SEED_TRACE(c.seed);
  const Expected e = build(c, c.seed);
  expect_merge_agrees(e, optimized::dense_merge_on_host(e.layer), false, "host emulation");
  const auto device = optimized::probe_device();
  if (!device.available) return;
  expect_merge_agrees(e, optimized::dense_merge(e.layer), true, "GPU (" + device.reason + ")");
}

INSTANTIATE_TEST_SUITE_P(Cases, OptimizedDenseMerge, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(OptimizedDenseMergeBadInput, NamesWhatDoesNotFit) {
  auto message = [](const optimized::HostLayer& l) { return testing::error_of([&] { optimized::dense_merge(l); }); };
  SeededRandom rng(2200);
  LoraLayer<HqqLinear> hqq(HqqLinear::quantize(round_to(Dtype::Float32, rng.normal(8, 64, 0.1)), std::nullopt,
                                               hqq_base_quantize_config(4, 64, 1), Dtype::Float64,
                                               HqqArithmetic::Float32Cpu));
  hqq.add_adapter("default", LoraConfig{.r = 2, .lora_alpha = 2}, rng.normal(2, 64, 0.1), rng.normal(8, 2, 0.1));
  EXPECT_NE(message(optimized::host_layer(hqq, "default")).find("base: dense_merge needs a plain linear layer"),
            std::string::npos);
  optimized::HostLayer none = build(kCases[0], 2201).layer;
  none.rank = 0;
  none.lora_a.clear();
  none.lora_b.clear();
  EXPECT_NE(message(none).find("adapter: dense_merge needs LoRA or OFT adapters, not both and not neither (oft: 0 "
                               "adapters, lora rank: 0)"),
            std::string::npos);
  optimized::HostLayer unbiased = build(kCases[1], 2202).layer;
  unbiased.bias.clear();
  EXPECT_NE(message(unbiased).find("bias: lora_bias needs a base bias to merge into"), std::string::npos);
}

}  // namespace
}  // namespace qoracle

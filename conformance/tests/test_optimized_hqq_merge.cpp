// The GPU HQQ merge (optimized/hqq_merge): its host emulation (the kernels' per-group code) against
// the reference's merge with hqq's float32 quantizer, under the HQQ code, scale and zero tolerances
// (conformance/TOLERANCES.md); on a GPU, the kernels against both.
#include <gtest/gtest.h>

#include "conformance/compare.hpp"
#include "conformance/tolerances.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "optimized/merge/hqq_merge.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

// adapter: "lora", "dora" (PEFT's HqqLoraLinear, one adapter), "lora2" and "dora2" (two LoRA or
// two DoRA adapters, the math convention: one requantization), "oft" (exact Cayley: the same rotation in both
// conventions), "oft_shared" (the same with block_share: one rotation for every block), "oft2" (two OFT adapters of different block sizes, exact and Neumann, the math convention).
// weight_sd: the base weight's scale. LLM-like weights (0.02) stop hqq's optimizer early; large
// ones (1.0, where its Lp shrink is active) keep improving to the iteration cap, the only place a
// loop that ran one step too few or too many would show.
struct MergeCase {
  const char* adapter;
  int nbits, group_size, axis;
  double weight_sd = 0.02;
  friend void PrintTo(const MergeCase& c, std::ostream* os) {
    *os << c.adapter << " " << c.nbits << "-bit g" << c.group_size << " axis " << c.axis << " weight sd "
        << c.weight_sd;
  }
};

struct Expected {
  HqqQuantized merged;
  optimized::HostLayer layer;
  Matrix x, y;  // the reference's merged layer: y = x W'^T
};

// The layer before its merge as the kernels take it, the reference's merged quantized weight and
// the merged layer's forward on 3 tokens.
template <class Layer>
Expected merged_by_reference(Layer& layer, const std::vector<std::string>& names, SeededRandom& rng) {
  optimized::HostLayer host = optimized::host_layer(layer, names);
  layer.merge(names);
  const Matrix x = round_to(Dtype::Float32, rng.normal(3, layer.base().in_features(), 1.0));
  return {layer.base().quantized(), std::move(host), x, layer.forward(x)};
}

Expected build(const MergeCase& c, std::uint64_t seed) {
  SeededRandom rng(seed);
  const int out = 64, in = 128;
  const HqqLinear base = HqqLinear::quantize(round_to(Dtype::Float32, rng.normal(out, in, c.weight_sd)), std::nullopt,
                                             hqq_base_quantize_config(c.nbits, c.group_size, c.axis), Dtype::Float64,
                                             HqqArithmetic::Float32Cpu);
  const std::string adapter = c.adapter;
  if (adapter == "lora" || adapter == "dora" || adapter == "lora2" || adapter == "dora2") {
    const bool two = adapter == "lora2" || adapter == "dora2", dora = adapter == "dora" || adapter == "dora2";
    LoraLayer<HqqLinear> layer(base, two ? Convention::Math : Convention::Peft);
    std::vector<std::string> names = {"first", "second"};
    names.resize(two ? 2 : 1);
    for (const std::string& name : names) {
      const std::optional<Vector> magnitude =
          dora ? std::optional<Vector>(round_to(Dtype::Float32, Vector(rng.uniform(out, 1, 0.5, 1.5).col(0))))
               : std::nullopt;
      layer.add_adapter(name, LoraConfig{.r = 4, .lora_alpha = 8, .use_dora = dora},
                        round_to(Dtype::Float32, rng.normal(4, in, 0.1)),
                        round_to(Dtype::Float32, rng.normal(out, 4, 2.5 * c.weight_sd)), std::nullopt, magnitude);
    }
    return merged_by_reference(layer, names, rng);
  }
  OftLayer<HqqLinear> layer(base, adapter == "oft2" ? Convention::Math : Convention::Peft);
  OftConfig config;
  config.oft_block_size = 16;
  config.use_cayley_neumann = false;
  config.block_share = adapter == "oft_shared";
  const auto add = [&](const char* name, double sd) {
    const OftBlocks blocks = resolve_oft_blocks(in, config);
    layer.add_adapter(name, config, round_to(Dtype::Float32, rng.normal(blocks.param_rows, blocks.n_elements, sd)));
  };
  add("first", 0.05);
  if (adapter != "oft2") return merged_by_reference(layer, {"first"}, rng);
  config.oft_block_size = 32;
  config.use_cayley_neumann = true;
  add("second", 0.02);
  return merged_by_reference(layer, {"first", "second"}, rng);
}

// The merge's packed words read back by the reference's unpacker (independent of the kernels').
Tensor unpacked_codes(const optimized::HqqWeights& w, const HqqQuantized& q) {
  HqqPacked packed;
  packed.rows = w.packed_rows;
  packed.cols = w.cols;
  packed.word_bits = w.nbits == 3 ? 32 : 8;
  if (w.nbits == 3)
    for (std::int32_t word : w.w_q32) packed.words.push_back(static_cast<std::uint32_t>(word));
  else
    packed.words.assign(w.w_q8.begin(), w.w_q8.end());
  const CodeMatrix codes = hqq_unpack(packed, w.nbits, static_cast<int>(q.codes.rows()));
  return Tensor::from_matrix(codes.cast<double>(), Dtype::Float64);
}

Tensor vec(const std::vector<float>& v) {
  Vector out(static_cast<Eigen::Index>(v.size()));
  for (std::size_t i = 0; i < v.size(); ++i) out(static_cast<Eigen::Index>(i)) = v[i];
  return Tensor::from_vector(out, Dtype::Float64);
}

// The HQQ tolerances: codes may flip at 1e-4 of the elements (float32 sums in another order);
// scale to a float32 ulp; zero likewise, in up to 1e-4 x group size of the groups.
void expect_merge_agrees(const HqqQuantized& expected, const optimized::HqqMergeResult& actual, int group_size,
                         const std::string& who) {
  const Comparison codes = compare(Tensor::from_matrix(expected.codes.cast<double>(), Dtype::Float64),
                                   unpacked_codes(actual.weights, expected), Tolerance{0, 0, 1e-4});
  EXPECT_TRUE(codes.passed) << who << " codes: " << codes.message();
  const Comparison scale =
      compare(Tensor::from_vector(expected.scale, Dtype::Float64), vec(actual.weights.scale), Tolerance{0, 1e-6});
  EXPECT_TRUE(scale.passed) << who << " scale: " << scale.message();
  const Comparison zero = compare(Tensor::from_vector(expected.zero, Dtype::Float64), vec(actual.weights.zero),
                                  Tolerance{0, 1e-6, 1e-4 * group_size});
  EXPECT_TRUE(zero.passed) << who << " zero: " << zero.message();
  EXPECT_EQ(expected.steps, actual.steps) << who << " optimizer steps";
}

// The merged weights as the kernels read them: the merged layer's fused forward against the
// reference's merged forward, by the float32-against-oracle rule.
void expect_merged_forward_agrees(const Expected& e, const optimized::HqqMergeResult& merged, bool on_gpu,
                                  const std::string& who) {
  const optimized::HostLayer layer = optimized::hqq_merged_layer(e.layer, merged);
  const std::vector<float> x = optimized::to_floats(e.x);
  const int tokens = static_cast<int>(e.x.rows());
  const std::vector<float> y =
      on_gpu ? optimized::fused_forward(layer, x, tokens) : optimized::fused_forward_on_host(layer, x, tokens);
  const Comparison c =
      compare(Tensor::from_matrix(e.y, Dtype::Float64),
              Tensor::from_matrix(optimized::from_floats(y, tokens, layer.out_features), Dtype::Float64),
              float32_against_oracle());
  EXPECT_TRUE(c.passed) << who << " merged forward: " << c.message();
}

class OptimizedHqqMerge : public ::testing::TestWithParam<MergeCase> {};

TEST_P(OptimizedHqqMerge, AgreesWithTheReferenceMerge) {
  const MergeCase c = GetParam();
  const std::string adapter = c.adapter;
  const std::uint64_t kind = adapter == "dora"    ? 1
                             : adapter == "lora2" ? 2
                             : adapter == "oft2"  ? 3
                             : adapter == "dora2" ? 4
                                                  : 0;
  const std::uint64_t seed = 1800 + static_cast<std::uint64_t>(c.nbits * 10 + c.axis) + 100 * kind + (c.weight_sd >= 1.0 ? 1000 : 0);
  QORACLE_SEED_TRACE(seed);
  const Expected e = build(c, seed);
  if (c.weight_sd >= 1.0)  // the case's reason to exist: hqq's float32 quantizer (fixtures/hqq) runs to its cap
    ASSERT_EQ(e.merged.steps, e.merged.config.iters) << "this large-weight case no longer reaches the iteration cap";
  const optimized::HqqMergeResult host = optimized::hqq_merge_on_host(e.layer);
  expect_merge_agrees(e.merged, host, c.group_size, "host emulation");
  expect_merged_forward_agrees(e, host, false, "host emulation");
  const auto device = optimized::probe_device();
  if (!device.available) return;
  const std::string gpu = "GPU (" + device.reason + ")";
  const optimized::HqqMergeResult merged = optimized::hqq_merge(e.layer);
  expect_merge_agrees(e.merged, merged, c.group_size, gpu);
  expect_merged_forward_agrees(e, merged, true, gpu);
}

INSTANTIATE_TEST_SUITE_P(Configs, OptimizedHqqMerge,
                         ::testing::Values(MergeCase{"lora", 4, 64, 1}, MergeCase{"lora", 3, 64, 0},
                                           MergeCase{"lora", 2, 32, 1}, MergeCase{"lora", 8, 64, 1},
                                           MergeCase{"dora", 4, 64, 1}, MergeCase{"dora", 3, 64, 0},
                                           MergeCase{"lora2", 4, 64, 1}, MergeCase{"dora2", 4, 64, 1},
                                           MergeCase{"oft", 4, 64, 1}, MergeCase{"oft", 1, 32, 0},
                                           MergeCase{"oft_shared", 4, 64, 1},
                                           MergeCase{"oft2", 4, 64, 1}, MergeCase{"oft2", 2, 32, 0},
                                           MergeCase{"lora", 2, 64, 1, 1.0}, MergeCase{"oft", 3, 32, 0, 1.0},
                                           MergeCase{"lora2", 3, 64, 0, 1.0}),
                         [](const auto& info) {
                           const MergeCase& c = info.param;
                           return std::string(c.adapter) + "_" + std::to_string(c.nbits) + "bit_g" +
                                  std::to_string(c.group_size) + "_axis" + std::to_string(c.axis) +
                                  (c.weight_sd >= 1.0 ? "_largeweights" : "");
                         });

// PEFT merges several adapters one at a time, requantizing after each. hqq_merge requantizes once,
// but two calls chained give PEFT's order: the second adapter is merged into the first merge's
// requantized weights.
TEST(OptimizedHqqMerge, ChainedMergesGivePeftsOrder) {
  const std::uint64_t seed = 1950;
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const int out = 64, in = 128;
  LoraLayer<HqqLinear> layer(
      HqqLinear::quantize(round_to(Dtype::Float32, rng.normal(out, in, 0.02)), std::nullopt,
                          hqq_base_quantize_config(4, 64, 1), Dtype::Float64, HqqArithmetic::Float32Cpu),
      Convention::Peft);
  for (const char* name : {"first", "second"})
    layer.add_adapter(name, LoraConfig{.r = 4, .lora_alpha = 8}, round_to(Dtype::Float32, rng.normal(4, in, 0.1)),
                      round_to(Dtype::Float32, rng.normal(out, 4, 0.05)));
  const optimized::HqqMergeResult first = optimized::hqq_merge_on_host(optimized::host_layer(layer, "first"));
  optimized::HostLayer second = optimized::host_layer(layer, "second");
  second.weights = first.weights;
  const optimized::HqqMergeResult chained = optimized::hqq_merge_on_host(second);
  const optimized::HqqMergeResult at_once =
      optimized::hqq_merge_on_host(optimized::host_layer(layer, std::vector<std::string>{"first", "second"}));
  layer.merge({"first", "second"});
  expect_merge_agrees(layer.base().quantized(), chained, 64, "chained host merges");
  // Requantizing once is not PEFT's order: the test above would notice a chain that was not one.
  const Comparison once = compare(Tensor::from_matrix(layer.base().quantized().codes.cast<double>(), Dtype::Float64),
                                  unpacked_codes(at_once.weights, layer.base().quantized()), Tolerance{0, 0, 1e-4});
  EXPECT_FALSE(once.passed) << "one requantization agreed with PEFT's two";
}

TEST(OptimizedHqqMergeBadInput, NamesWhatDoesNotFit) {
  auto message = [](const optimized::HostLayer& l) { return testing::error_of([&] { optimized::hqq_merge(l); }); };
  SeededRandom rng(1900);
  LoraLayer<DenseLinear> dense(DenseLinear(rng.normal(8, 16, 0.1), std::nullopt));
  dense.add_adapter("default", LoraConfig{.r = 2, .lora_alpha = 2}, rng.normal(2, 16, 0.1), rng.normal(8, 2, 0.1));
  EXPECT_NE(message(optimized::host_layer(dense, "default")).find("base: hqq_merge needs an HQQ layer"),
            std::string::npos);
  optimized::HostLayer none = build(MergeCase{"lora", 4, 64, 1}, 1901).layer;
  none.rank = 0;
  none.lora_a.clear();
  none.lora_b.clear();
  EXPECT_NE(
      message(none).find(
          "adapter: hqq_merge needs LoRA or OFT adapters, not both and not neither (oft: 0 adapters, lora rank: 0)"),
      std::string::npos);
  optimized::HostLayer both = build(MergeCase{"lora", 4, 64, 1}, 1902).layer;
  both.oft = build(MergeCase{"oft", 4, 64, 1}, 1903).layer.oft;
  EXPECT_NE(message(both).find("(oft: 1 adapters, lora rank: 4)"), std::string::npos);
  optimized::HostLayer biased = build(MergeCase{"lora", 4, 64, 1}, 1904).layer;
  biased.lora_bias.assign(static_cast<std::size_t>(biased.out_features), 0.5f);
  EXPECT_NE(message(biased).find("lora_bias: PEFT's HqqLoraLinear refuses lora_bias"), std::string::npos);
}

}  // namespace
}  // namespace qoracle

// The GPU HQQ merge (optimized/hqq_merge): its host emulation (the kernels' per-group code) against
// the reference's merge with hqq's float32 quantizer, under the HQQ code, scale and zero tolerances
// (conformance/TOLERANCES.md); on a GPU, the kernels against both.
#include <gtest/gtest.h>

#include "conformance/compare.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_layer.hpp"
#include "optimized/hqq_merge.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

// adapter: "lora", "dora" (PEFT's HqqLoraLinear, one adapter), "lora2" (two LoRA adapters, the
// math convention: one requantization), "oft" (exact Cayley: the same rotation in both conventions),
// "oft2" (two OFT adapters of different block sizes, exact and Neumann, the math convention).
struct MergeCase {
  const char* adapter;
  int nbits, group_size, axis;
  friend void PrintTo(const MergeCase& c, std::ostream* os) {
    *os << c.adapter << " " << c.nbits << "-bit g" << c.group_size << " axis " << c.axis;
  }
};

struct Expected {
  HqqQuantized merged;
  optimized::HostLayer layer;
};

// The layer before its merge as the kernels take it, and the reference's merged quantized weight.
template <class Layer>
Expected merged_by_reference(Layer& layer, const std::vector<std::string>& names) {
  optimized::HostLayer host = optimized::host_layer(layer, names);
  layer.merge(names);
  return {layer.base().quantized(), std::move(host)};
}

Expected build(const MergeCase& c, std::uint64_t seed) {
  SeededRandom rng(seed);
  const int out = 64, in = 128;
  const HqqLinear base = HqqLinear::quantize(round_to(Dtype::Float32, rng.normal(out, in, 0.02)), std::nullopt,
                                             hqq_base_quantize_config(c.nbits, c.group_size, c.axis), Dtype::Float64,
                                             HqqArithmetic::Float32Cpu);
  const std::string adapter = c.adapter;
  if (adapter == "lora" || adapter == "dora" || adapter == "lora2") {
    LoraLayer<HqqLinear> layer(base, adapter == "lora2" ? Convention::Math : Convention::Peft);
    std::vector<std::string> names = {"first", "second"};
    names.resize(adapter == "lora2" ? 2 : 1);
    for (const std::string& name : names) {
      const std::optional<Vector> magnitude =
          adapter == "dora" ? std::optional<Vector>(round_to(Dtype::Float32, Vector(rng.uniform(out, 1, 0.5, 1.5).col(0))))
                            : std::nullopt;
      layer.add_adapter(name, LoraConfig{.r = 4, .lora_alpha = 8, .use_dora = adapter == "dora"},
                        round_to(Dtype::Float32, rng.normal(4, in, 0.1)), round_to(Dtype::Float32, rng.normal(out, 4, 0.05)),
                        std::nullopt, magnitude);
    }
    return merged_by_reference(layer, names);
  }
  OftLayer<HqqLinear> layer(base, adapter == "oft2" ? Convention::Math : Convention::Peft);
  OftConfig config;
  config.oft_block_size = 16;
  config.use_cayley_neumann = false;
  layer.add_adapter("first", config, round_to(Dtype::Float32, rng.normal(8, 120, 0.05)));
  if (adapter == "oft") return merged_by_reference(layer, {"first"});
  config.oft_block_size = 32;
  config.use_cayley_neumann = true;
  layer.add_adapter("second", config, round_to(Dtype::Float32, rng.normal(4, 496, 0.02)));
  return merged_by_reference(layer, {"first", "second"});
}

Tensor grouped(const std::vector<int>& codes, const HqqQuantized& q) {
  Matrix m(q.codes.rows(), q.codes.cols());
  for (Eigen::Index r = 0; r < m.rows(); ++r)
    for (Eigen::Index c = 0; c < m.cols(); ++c) m(r, c) = codes[static_cast<std::size_t>(r * m.cols() + c)];
  return Tensor::from_matrix(m, Dtype::Float64);
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
                                   grouped(actual.codes, expected), Tolerance{0, 0, 1e-4});
  EXPECT_TRUE(codes.passed) << who << " codes: " << codes.message();
  const Comparison scale = compare(Tensor::from_vector(expected.scale, Dtype::Float64), vec(actual.scale), Tolerance{0, 1e-6});
  EXPECT_TRUE(scale.passed) << who << " scale: " << scale.message();
  const Comparison zero = compare(Tensor::from_vector(expected.zero, Dtype::Float64), vec(actual.zero),
                                  Tolerance{0, 1e-6, 1e-4 * group_size});
  EXPECT_TRUE(zero.passed) << who << " zero: " << zero.message();
  EXPECT_EQ(expected.steps, actual.steps) << who << " optimizer steps";
}

class OptimizedHqqMerge : public ::testing::TestWithParam<MergeCase> {};

TEST_P(OptimizedHqqMerge, AgreesWithTheReferenceMerge) {
  const MergeCase c = GetParam();
  const std::string adapter = c.adapter;
  const std::uint64_t kind = adapter == "dora" ? 1 : adapter == "lora2" ? 2 : adapter == "oft2" ? 3 : 0;
  const std::uint64_t seed = 1800 + static_cast<std::uint64_t>(c.nbits * 10 + c.axis) + 100 * kind;
  QORACLE_SEED_TRACE(seed);
  const Expected e = build(c, seed);
  const optimized::HqqMergeResult host = optimized::hqq_merge_on_host(e.layer);
  expect_merge_agrees(e.merged, host, c.group_size, "host emulation");
  const auto device = optimized::probe_device();
  if (!device.available) return;
  expect_merge_agrees(e.merged, optimized::hqq_merge(e.layer), c.group_size, "GPU (" + device.reason + ")");
}

INSTANTIATE_TEST_SUITE_P(Configs, OptimizedHqqMerge,
                         ::testing::Values(MergeCase{"lora", 4, 64, 1}, MergeCase{"lora", 3, 64, 0},
                                           MergeCase{"lora", 2, 32, 1}, MergeCase{"lora", 8, 64, 1},
                                           MergeCase{"dora", 4, 64, 1}, MergeCase{"dora", 3, 64, 0},
                                           MergeCase{"lora2", 4, 64, 1}, MergeCase{"oft", 4, 64, 1},
                                           MergeCase{"oft", 1, 32, 0}, MergeCase{"oft2", 4, 64, 1},
                                           MergeCase{"oft2", 2, 32, 0}),
                         [](const auto& info) {
                           const MergeCase& c = info.param;
                           return std::string(c.adapter) + "_" + std::to_string(c.nbits) + "bit_g" +
                                  std::to_string(c.group_size) + "_axis" + std::to_string(c.axis);
                         });

TEST(OptimizedHqqMergeBadInput, NamesWhatDoesNotFit) {
  auto message = [](const optimized::HostLayer& l) {
    try {
      optimized::hqq_merge(l);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  SeededRandom rng(1900);
  LoraLayer<DenseLinear> dense(DenseLinear(rng.normal(8, 16, 0.1), std::nullopt));
  dense.add_adapter("default", LoraConfig{.r = 2, .lora_alpha = 2}, rng.normal(2, 16, 0.1), rng.normal(8, 2, 0.1));
  EXPECT_NE(message(optimized::host_layer(dense, "default")).find("base: hqq_merge needs an HQQ layer"), std::string::npos);
  optimized::HostLayer none = build(MergeCase{"lora", 4, 64, 1}, 1901).layer;
  none.rank = 0;
  none.lora_a.clear();
  none.lora_b.clear();
  EXPECT_NE(message(none).find("adapter: hqq_merge needs LoRA or OFT adapters, not both and not neither (oft: 0 adapters, lora rank: 0)"),
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

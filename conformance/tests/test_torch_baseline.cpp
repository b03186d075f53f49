// The third opinion: the LibTorch baseline (ATen ops in PEFT's order, float32) against the float64
// reference in PEFT's convention, within the float32-against-oracle tolerance
// (conformance/TOLERANCES.md). Built only where LibTorch is found.
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include "bench/layer_cases.hpp"
#include "bench/torch_baseline/peft_like.hpp"
#include "conformance/tolerances.hpp"
#include "reference/hqq_quantizer.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using namespace qoracle::bench;
using namespace qoracle::torch_baseline;

::testing::AssertionResult agrees(const Matrix& oracle, const at::Tensor& float32_result) {
  return testing::close_float32_to_oracle(oracle, to_matrix(float32_result));
}

// ---- Every benchmarked layer (bench/layer_cases), at the sizes a test can afford ----

class TorchBaselineForward : public ::testing::TestWithParam<LayerCase> {};

TEST_P(TorchBaselineForward, AgreesWithReference) {
  const LayerCase c = GetParam();
  at::set_num_threads(1);
  QORACLE_SEED_TRACE(kSeed);
  const Matrix x = activations(c.tokens, c.shape.in);
  with_base(c.base, [&]<class Base>() {
    if (c.adapter == AdapterKind::Oft) {
      const OftLayer<Base> layer = oft_layer<Base>(c.shape);
      EXPECT_TRUE(agrees(layer.forward(x), TorchOftLinear(layer, "default").forward(to_tensor(x))));
    } else {
      const LoraLayer<Base> layer = lora_layer<Base>(c.shape);
      EXPECT_TRUE(agrees(layer.forward(x), TorchLoraLinear(layer, "default").forward(to_tensor(x))));
    }
  });
}

std::vector<LayerCase> affordable_cases() {
  std::vector<LayerCase> out;
  for (const LayerCase& c : forward_cases())
    if (c.shape.in <= 1024 && c.tokens <= 8) out.push_back(c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(BenchCases, TorchBaselineForward, ::testing::ValuesIn(affordable_cases()),
                         [](const auto& info) { return info.param.test_name(); });

// ---- OFT rotation paths: exact Cayley, Neumann term counts, block sharing ----

struct OftVariant {
  const char* name;  // also what gtest prints for it
  friend void PrintTo(const OftVariant& v, std::ostream* os) { *os << v.name; }
  bool neumann;
  int terms;
  bool block_share;
  int block_size;
};

class TorchBaselineOft : public ::testing::TestWithParam<OftVariant> {};

TEST_P(TorchBaselineOft, AgreesWithReference) {
  const OftVariant v = GetParam();
  OftConfig config;
  config.oft_block_size = v.block_size;
  config.use_cayley_neumann = v.neumann;
  config.num_cayley_neumann_terms = v.terms;
  config.block_share = v.block_share;
  const OftLayer<DenseLinear> layer = oft_layer<DenseLinear>(256, Convention::Peft, config);
  const Matrix x = activations(8, 256);
  EXPECT_TRUE(agrees(layer.forward(x), TorchOftLinear(layer, "default").forward(to_tensor(x))));
}

INSTANTIATE_TEST_SUITE_P(Rotations, TorchBaselineOft,
                         ::testing::Values(OftVariant{"exact_b32", false, 5, false, 32},
                                           OftVariant{"exact_b128", false, 5, false, 128},
                                           OftVariant{"neumann3_b32", true, 3, false, 32},
                                           OftVariant{"neumann6_b16", true, 6, false, 16},
                                           OftVariant{"neumann5_b64_shared", true, 5, true, 64},
                                           OftVariant{"exact_b8_shared", false, 5, true, 8}),
                         [](const auto& info) { return std::string(info.param.name); });

// ---- HQQ packing: every bit width and both axes through hqq's unpack-and-dequantize ----

struct HqqVariant {
  int nbits, axis;
  friend void PrintTo(const HqqVariant& v, std::ostream* os) { *os << v.nbits << "-bit axis " << v.axis; }
};

class TorchBaselineHqq : public ::testing::TestWithParam<HqqVariant> {};

TEST_P(TorchBaselineHqq, DequantizedForwardAgrees) {
  const HqqVariant v = GetParam();
  const std::uint64_t seed = 900 + static_cast<std::uint64_t>(v.nbits * 2 + v.axis);
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const Matrix w = round_to(Dtype::Float32, rng.normal(128, 256, 0.02));
  const HqqLinear base = HqqLinear::quantize(w, round_to(Dtype::Float32, Vector(rng.normal(128, 1, 0.1).col(0))),
                                             hqq_base_quantize_config(v.nbits, 64, v.axis), Dtype::Float64,
                                             HqqArithmetic::Float64);
  const Matrix x = round_to(Dtype::Float32, rng.normal(8, 256, 1.0));
  const TorchBase torch_base = TorchBase::from(base);
  EXPECT_TRUE(agrees(base.weight(), torch_base.weight()));
  EXPECT_TRUE(agrees(base.forward(x), torch_base.forward(to_tensor(x))));
}

// hqq's quantizer in ATen against the reference's float32 emulation of it: the codes agree up to
// the HQQ code tolerance (a value within an ulp of a rounding boundary may flip), scales exactly.
TEST_P(TorchBaselineHqq, QuantizerAgreesWithTheFloat32Emulation) {
  const HqqVariant v = GetParam();
  const std::uint64_t seed = 950 + static_cast<std::uint64_t>(v.nbits * 2 + v.axis);
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const Matrix w = round_to(Dtype::Float32, rng.normal(128, 256, 0.02));
  const HqqConfig config = hqq_base_quantize_config(v.nbits, 64, v.axis);
  const HqqQuantized expected = hqq_quantize(w, config, HqqArithmetic::Float32Cpu);
  const TorchHqqQuantized actual = torch_hqq_quantize(to_tensor(w), config);
  const Comparison codes = compare(Tensor::from_matrix(expected.codes.cast<double>(), Dtype::Float64),
                                   Tensor::from_matrix(to_matrix(actual.codes), Dtype::Float64), Tolerance{0, 0, 1e-4});
  EXPECT_TRUE(codes.passed) << codes.message();
  EXPECT_TRUE(testing::close(Matrix(expected.scale), to_matrix(actual.scale.reshape({-1, 1})), 0.0));
}

INSTANTIATE_TEST_SUITE_P(Packings, TorchBaselineHqq,
                         ::testing::Values(HqqVariant{1, 1}, HqqVariant{2, 1}, HqqVariant{3, 1}, HqqVariant{4, 1},
                                           HqqVariant{8, 1}, HqqVariant{4, 0}, HqqVariant{3, 0}, HqqVariant{2, 0}),
                         [](const auto& info) {
                           return std::to_string(info.param.nbits) + "bit_axis" + std::to_string(info.param.axis);
                         });

// ---- Merges into nn.Linear: the merged weight, and the weight after unmerge ----

// Merge, forward while merged (the base alone on both sides), unmerge: each state agrees.
template <class Layer, class TorchLayer>
void expect_merge_round_trip_agrees(Layer layer, TorchLayer torch_layer) {
  const Matrix x = activations(8, layer.base().in_features());
  layer.merge({"default"});
  torch_layer.merge();
  EXPECT_TRUE(agrees(layer.base().weight(), torch_layer.base().weight()));
  EXPECT_TRUE(agrees(layer.forward(x), torch_layer.forward(to_tensor(x))));
  layer.unmerge();
  torch_layer.unmerge();
  EXPECT_TRUE(agrees(layer.base().weight(), torch_layer.base().weight()));
}

TEST(TorchBaselineMerge, OftMergeAndUnmergeAgree) {
  const OftLayer<DenseLinear> layer = oft_layer<DenseLinear>(256);
  expect_merge_round_trip_agrees(layer, TorchOftLinear(layer, "default"));
}

TEST(TorchBaselineMerge, LoraMergeAndUnmergeAgree) {
  const LoraLayer<DenseLinear> layer = lora_layer<DenseLinear>(256);
  expect_merge_round_trip_agrees(layer, TorchLoraLinear(layer, "default"));
}

// PEFT's HqqLoraLinear merge: dequantize + s B A, requantize with hqq's quantizer, no bias. The
// reference requantizes with its float32 emulation of hqq; codes may differ only where the float32
// sum W + s B A (rounded in another order) sits on a rounding boundary (HQQ code tolerance).
TEST(TorchBaselineMerge, HqqLoraMergeRequantizesLikeTheReference) {
  SeededRandom rng(960);
  QORACLE_SEED_TRACE(960);
  const Matrix w = round_to(Dtype::Float32, rng.normal(256, 256, 0.02));
  const HqqLinear base = HqqLinear::quantize(w, round_to(Dtype::Float32, Vector(rng.normal(256, 1, 0.1).col(0))),
                                             hqq_base_quantize_config(4, 64, 1), Dtype::Float64,
                                             HqqArithmetic::Float32Cpu);
  LoraLayer<HqqLinear> layer(base, Convention::Peft);
  layer.add_adapter("default", LoraConfig{.r = 8, .lora_alpha = 16},
                    round_to(Dtype::Float32, rng.normal(8, 256, 0.06)), round_to(Dtype::Float32, rng.normal(256, 8, 0.05)));
  TorchLoraLinear torch_layer(layer, "default");
  layer.merge({"default"});
  torch_layer.merge();
  const Tolerance codes{0.0, 0.0, 1e-4};
  const Comparison c = compare(Tensor::from_matrix(layer.base().quantized().codes.cast<double>(), Dtype::Float64),
                               Tensor::from_matrix(to_matrix(torch_layer.base().hqq_codes()), Dtype::Float64), codes);
  EXPECT_TRUE(c.passed) << c.message();
  EXPECT_FALSE(torch_layer.base().bias().has_value());  // PEFT drops it
  EXPECT_FALSE(layer.base().bias().has_value());
  // With the same codes, the merged layers compute the same thing (a flipped code would move a
  // whole output column by a quantization step, so the forward is compared only then).
  const Matrix x = activations(8, 256);
  if (c.mismatched == 0) EXPECT_TRUE(agrees(layer.forward(x), torch_layer.forward(to_tensor(x))));
}

// The tolerance can fail: the math convention's Neumann rotation (the opposite direction to
// PEFT's) is far outside it.
TEST(TorchBaselineMerge, OppositeNeumannDirectionIsOutsideTheTolerance) {
  const OftLayer<DenseLinear> peft = oft_layer<DenseLinear>(256, Convention::Peft);
  const OftLayer<DenseLinear> math = oft_layer<DenseLinear>(256, Convention::Math);
  const Matrix x = activations(8, 256);
  const at::Tensor y = TorchOftLinear(peft, "default").forward(to_tensor(x));
  EXPECT_TRUE(agrees(peft.forward(x), y));
  EXPECT_FALSE(agrees(math.forward(x), y));
}

}  // namespace
}  // namespace qoracle

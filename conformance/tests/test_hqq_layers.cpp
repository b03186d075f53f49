// HQQ under the adapters: PEFT's merge semantics on a quantized base, pinned in both conventions,
// and the costs of requantization (conformance/merge_quality.hpp).
#include <gtest/gtest.h>

#include <cmath>

#include "conformance/merge_quality.hpp"
#include "reference/seeded_random.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;

namespace {

struct Layer {
  HqqLinear base;
  Matrix x, a, b;
};

Layer make(std::uint64_t seed, int nbits = 4) {
  SeededRandom rng(seed);
  const Matrix w = rng.normal(32, 64, 0.05);
  const Vector bias = rng.normal(32, 1, 0.5).col(0);
  return {HqqLinear::quantize(w, bias, hqq_base_quantize_config(nbits, 32, 1), Dtype::Float32, HqqArithmetic::Float32Cpu),
          rng.normal(3, 64, 1.0), rng.normal(4, 64, 0.1), rng.normal(32, 4, 0.1)};
}

}  // namespace

TEST(HqqLayers, PeftMergeDropsTheBiasTheMathKeepsIt) {
  QORACLE_SEED_TRACE(11);
  const Layer l = make(11);
  for (Convention conv : {Convention::Math, Convention::Peft}) {
    HqqLoraLinear layer(l.base, conv);
    layer.add_adapter("a", LoraConfig{4, 8, false, false, false}, l.a, l.b);
    layer.merge({"a"});
    EXPECT_EQ(layer.base().bias().has_value(), conv == Convention::Math) << convention_name(conv);
    const Matrix merged = layer.forward(l.x);
    const Matrix no_bias = l.x * layer.base().weight().transpose();
    if (conv == Convention::Peft) EXPECT_TRUE(close(no_bias, merged, 1e-15));  // spec hqq.md §5.3 / Q26
    layer.unmerge();
    EXPECT_EQ(layer.base().bias().has_value(), conv == Convention::Math);  // gone for good in PEFT
  }
}

TEST(HqqLayers, MergedForwardApproximatesTheUnmergedOneToTheQuantizationStep) {
  QORACLE_SEED_TRACE(12);
  const Layer l = make(12, 8);
  HqqLoraLinear layer(l.base, Convention::Math);
  layer.add_adapter("a", LoraConfig{4, 8, false, false, false}, l.a, l.b);
  const Matrix y = layer.forward(l.x);
  layer.merge({"a"});
  const Matrix y_merged = layer.forward(l.x);
  // 8-bit: a step is range/255 per group; the merged layer must be close but not identical.
  EXPECT_TRUE(close(y, y_merged, 2e-2));
  EXPECT_FALSE(close(y, y_merged, 1e-9));
}

TEST(HqqLayers, RequantizingADequantizedWeightIsNotIdempotent) {
  // hqq recomputes min/max and re-optimizes the zero: the spec measured 212/8192 codes changed
  // (64x128, 4-bit, group 64). The reference must show the same kind of loss, not hide it.
  SeededRandom rng(13);
  QORACLE_SEED_TRACE(13);
  const Matrix w = rng.normal(64, 128, 0.02);
  const HqqConfig cfg = hqq_base_quantize_config(4, 64, 1);
  const HqqQuantized q1 = hqq_quantize(w, cfg, HqqArithmetic::Float32Cpu);
  const HqqQuantized q2 = hqq_quantize(hqq_dequantize(q1, Dtype::Float32), cfg, HqqArithmetic::Float32Cpu);
  const auto changed = (q1.codes.array() != q2.codes.array()).count();
  EXPECT_GT(changed, 0);
  EXPECT_LT(changed, q1.codes.size() / 10);
}

TEST(HqqLayers, ASmallLoraMergedIntoFourBitsIsLostButSurvivesEightBits) {
  // Weights N(0, 0.02) in groups of 32 span about +-2.1 sigma, so a 4-bit step is ~4.2*0.02/15 =
  // 5.6e-3 and an 8-bit step ~3.3e-4. A LoRA that moves each weight by ~6e-4 (3 % of ||W||) is a
  // tenth of a 4-bit step, which rounding snaps back, but about two 8-bit steps, which survive.
  SeededRandom rng(14);
  QORACLE_SEED_TRACE(14);
  const Matrix w = rng.normal(64, 128, 0.02), x = rng.normal(4, 128, 1.0);
  MergeAdapter lora;
  lora.kind = "lora";
  lora.lora = LoraConfig{8, 16, false, false, false};
  lora.lora_a = rng.uniform(8, 128, -1.0 / std::sqrt(128.0), 1.0 / std::sqrt(128.0));
  lora.lora_b = rng.normal(64, 8, 0.002);
  auto lost = [&](int nbits) {
    const HqqLinear base = HqqLinear::quantize(w, std::nullopt, hqq_base_quantize_config(nbits, 32, 1), Dtype::Float32,
                                               HqqArithmetic::Float32Cpu);
    const MergeQuality q = measure_merge_quality(base, lora, x, 2);
    EXPECT_NEAR(q.adapter_size, 0.03, 0.015) << nbits << "-bit";
    EXPECT_EQ(q.drift.size(), 2u);
    // Each requantization moves a weight by at most half a step (8-bit: ~1.7e-4, 0.8 % of sigma);
    // two cycles are four requantizations with unrelated signs: about 2 * 0.8 % / sqrt(3).
    if (nbits == 8) EXPECT_LT(q.drift.back(), 1e-2);
    return q.adapter_lost;
  };
  EXPECT_GT(lost(4), 0.7);
  EXPECT_LT(lost(8), 0.5);
}

TEST(HqqLayers, OftMergeOnHqqRequantizesTheRotatedWeight) {
  QORACLE_SEED_TRACE(15);
  const Layer l = make(15, 8);
  HqqOftLinear layer(l.base, Convention::Math);
  OftConfig cfg;
  cfg.oft_block_size = 8;
  cfg.use_cayley_neumann = false;
  SeededRandom rng(16);
  layer.add_adapter("a", cfg, rng.normal(8, 28, 0.05));
  const Matrix ideal = l.base.weight() * layer.delta_weight("a").transpose();
  layer.merge({"a"});
  // The merged layer holds a requantization of W R^T (not of W^T, PEFT 0.19's bug Q17).
  EXPECT_TRUE(close(ideal, layer.base().weight(), 2e-2));
  EXPECT_EQ(layer.base().weight().rows(), 32);
}

TEST(HqqLayers, PeftDoraMergeCastsToTheComputeDtypeBeforeRequantizing) {
  // PEFT's DoRA merge and unmerge return g (W + s B A) .to(orig_dtype): in bfloat16 the merged weight
  // is rounded before hqq quantizes it; a plain LoRA merge requantizes its float32 sum as is.
  for (std::uint64_t seed : {21u, 22u, 23u}) {
    QORACLE_SEED_TRACE(seed);
    SeededRandom rng(seed);
    const Matrix w = rng.normal(32, 64, 0.05);
    const HqqConfig cfg = hqq_base_quantize_config(8, 32, 1);
    const HqqLinear base = HqqLinear::quantize(w, std::nullopt, cfg, Dtype::BFloat16, HqqArithmetic::Float32Cpu);
    const Matrix a = rng.normal(4, 64, 0.1), b = rng.normal(32, 4, 0.1);
    HqqLoraLinear layer(base, Convention::Peft);
    layer.set_compute_dtype(Dtype::BFloat16);
    layer.add_adapter("d", LoraConfig{4, 8, false, false, true}, a, b);
    const Vector g = layer.dora_scale(layer.adapter("d"), base.weight());
    const Matrix merged = g.asDiagonal() * (base.weight() + layer.delta_weight("d"));
    const CodeMatrix cast = hqq_quantize(round_to(Dtype::BFloat16, merged), cfg, HqqArithmetic::Float32Cpu).codes;
    const CodeMatrix uncast = hqq_quantize(merged, cfg, HqqArithmetic::Float32Cpu).codes;
    ASSERT_NE((cast.array() != uncast.array()).count(), 0) << "the seed must tell the two rules apart";
    layer.merge({"d"});
    EXPECT_EQ((layer.base().quantized().codes.array() != cast.array()).count(), 0);
    // Unmerge: W' / g - s B A, cast, requantized.
    const Matrix after = layer.base().weight();
    const CodeMatrix unmerged =
        hqq_quantize(round_to(Dtype::BFloat16, Matrix(g.cwiseInverse().asDiagonal() * after - layer.delta_weight("d"))), cfg,
                     HqqArithmetic::Float32Cpu)
            .codes;
    layer.unmerge();
    EXPECT_EQ((layer.base().quantized().codes.array() != unmerged.array()).count(), 0);
  }
}

// EETQ against hand-computed vectors from ../shared/spec/eetq.md: the quantizer's divisor (128),
// rounding (half away from zero), saturation and fp16 scale; the checkpoint byte layouts; the
// library-rounded forward; PEFT's refusals; and the merge_to_dequantized export.
#include <gtest/gtest.h>

#include <array>

#include "reference/eetq_format.hpp"
#include "reference/eetq_linear.hpp"
#include "reference/eetq_merge.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;
using qoracle::testing::row;

namespace {

// One output channel per row, amax 1 unless the row says otherwise.
EetqQuantized quantize_rows(std::initializer_list<std::initializer_list<double>> values, Dtype dtype = Dtype::Float16) {
  return eetq_quantize(qoracle::testing::rows(values), dtype);
}

CodeMatrix random_codes(int out, int in, std::uint64_t seed) {
  SeededRandom rng(seed);
  const Matrix u = rng.uniform(out, in, -128.0, 128.0);
  CodeMatrix q(out, in);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) q(o, i) = std::clamp(static_cast<int>(std::floor(u(o, i))), -128, 127);
  q(0, 0) = -128;  // both extremes always present
  q(out - 1, in - 1) = 127;
  return q;
}

}  // namespace

TEST(EetqQuantizer, DividesBy128AndSaturatesThePositiveMaximum) {
  // amax = 1: scale 2^-7. +amax -> 128 -> 127; -amax -> -128; 0.75 -> 96 (a divisor of 127 gives 95).
  const EetqQuantized q = quantize_rows({{1.0, -0.5, 0.75, 0.0}, {-1.0, 0.5, 0.25, 1.0 / 128}});
  EXPECT_EQ(q.scales(0), 1.0 / 128);
  EXPECT_EQ(q.scales(1), 1.0 / 128);
  EXPECT_EQ(q.q(0, 0), 127);
  EXPECT_EQ(q.q(0, 1), -64);
  EXPECT_EQ(q.q(0, 2), 96);
  EXPECT_EQ(q.q(1, 0), -128);  // the negative maximum keeps its full range
  EXPECT_EQ(q.q(1, 3), 1);
}

TEST(EetqQuantizer, RoundsHalfAwayFromZero) {
  // 2.5/128 and -2.5/128 sit exactly halfway: half away gives 3 and -3 (half-even would give 2, -2);
  // 127.5/128 rounds to 128 and saturates; -127.5/128 rounds to -128.
  const EetqQuantized q = quantize_rows({{1.0, 2.5 / 128, -2.5 / 128, 127.5 / 128, -127.5 / 128, 3.5 / 128}});
  EXPECT_EQ(q.q(0, 1), 3);
  EXPECT_EQ(q.q(0, 2), -3);
  EXPECT_EQ(q.q(0, 3), 127);
  EXPECT_EQ(q.q(0, 4), -128);
  EXPECT_EQ(q.q(0, 5), 4);
}

TEST(EetqQuantizer, ScaleIsFp16AndTinyChannelsFlushToZero) {
  // amax 0.3 (fp16: 0.300048828125 = 1229 * 2^-12): scale amax/128, exact in fp16.
  const EetqQuantized a = quantize_rows({{0.3, -0.1}});
  EXPECT_EQ(a.scales(0), 1229.0 / 4096 / 128);
  // amax 2^-20 (an fp16 subnormal): amax/128 = 2^-27 rounds to 0 in fp16, the channel dequantizes
  // to 0, and the element at amax still saturates to 127.
  const EetqQuantized b = quantize_rows({{std::ldexp(1.0, -20), 0.0}});
  EXPECT_EQ(b.scales(0), 0.0);
  EXPECT_EQ(b.q(0, 0), 127);
  // float32 weights keep a float32 scale.
  const EetqQuantized c = quantize_rows({{std::ldexp(1.0, -20), 0.0}}, Dtype::Float32);
  EXPECT_EQ(c.scales(0), std::ldexp(1.0, -27));
}

TEST(EetqQuantizer, AllZeroChannelGives127TimesZero) {
  const EetqQuantized q = quantize_rows({{0.0, 0.0}, {1.0, 0.0}});
  EXPECT_EQ(q.scales(0), 0.0);
  EXPECT_EQ(q.q(0, 0), 127);  // the library's 0/0 = NaN, clamped and cast
  EXPECT_EQ(q.q(0, 1), 127);
  EXPECT_EQ(eetq_dequantize(q, false)(0, 0), 0.0);
}

TEST(EetqLayout, SixteenByteGroupsHoldKOffsetsInterleaved) {
  // Channel o=0, in=64: the first 16 bytes hold k = 0,8,1,9,...,7,15 as q+128.
  CodeMatrix q = CodeMatrix::Zero(64, 64);
  for (int i = 0; i < 64; ++i) q(0, i) = i - 64;  // distinct values
  const std::vector<std::int8_t> bytes = eetq_encode(q, EetqLayout::Interleaved);
  const std::array<int, 16> k_of_byte{0, 8, 1, 9, 2, 10, 3, 11, 4, 12, 5, 13, 6, 14, 7, 15};
  for (int b = 0; b < 16; ++b)
    EXPECT_EQ(static_cast<int>(static_cast<std::uint8_t>(bytes[b])), k_of_byte[b] - 64 + 128) << "byte " << b;
  // Channel 1 follows channel 0's 64 bytes (a column pair shares 128-byte k tiles).
  q(1, 0) = 100;
  EXPECT_EQ(eetq_encode(q, EetqLayout::Interleaved)[64], static_cast<std::int8_t>(static_cast<std::uint8_t>(228)));
}

TEST(EetqLayout, VoltaIsRowMajorWithOffsetAndSwappedMiddleBytes) {
  CodeMatrix q = CodeMatrix::Zero(64, 64);
  q(2, 0) = 5;  // flat [in, out] offset 2 moves to byte 1
  q(1, 0) = -128;
  const std::vector<std::int8_t> bytes = eetq_encode(q, EetqLayout::Volta);
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[1]), 133);
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[2]), 0);
  EXPECT_EQ(static_cast<std::uint8_t>(bytes[0]), 128);
}

TEST(EetqLayout, PlainIsTheUnprocessedInOutMatrix) {
  CodeMatrix q = CodeMatrix::Zero(3, 2);
  q(2, 1) = -7;
  EXPECT_EQ(eetq_encode(q, EetqLayout::Plain)[1 * 3 + 2], -7);
}

TEST(EetqLayout, PipelineMatchesTheClosedFormAndEveryLayoutRoundTrips) {
  const std::uint64_t seed = 7100;
  QORACLE_SEED_TRACE(seed);
  for (auto [k, n] : {std::pair{64, 64}, {128, 64}, {256, 192}, {192, 320}}) {
    const CodeMatrix q = random_codes(n, k, seed + k + n);
    const std::vector<std::int8_t> bytes = eetq_encode(q, EetqLayout::Interleaved);
    for (int o = 0; o < n; ++o)
      for (int i = 0; i < k; ++i) {
        const std::int64_t at = eetq_interleaved_offset(o, i, k);
        ASSERT_EQ(static_cast<int>(static_cast<std::int8_t>(bytes[at] ^ 0x80)), q(o, i)) << "k=" << k << " o=" << o << " i=" << i;
      }
    for (EetqLayout layout : {EetqLayout::Interleaved, EetqLayout::Volta, EetqLayout::Plain})
      EXPECT_EQ(eetq_decode(eetq_encode(q, layout), k, n, layout), q) << eetq_layout_name(layout) << " k=" << k << " n=" << n;
  }
}

TEST(EetqLayout, QuantizeThenLayoutThenDecodeIsExact) {
  const std::uint64_t seed = 7200;
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const Matrix w = round_to(Dtype::Float16, rng.normal(128, 256, 0.02));
  const EetqQuantized q = eetq_quantize(w);
  const EetqLinear layer = EetqLinear::from_checkpoint(eetq_encode(q.q, EetqLayout::Interleaved), 256, 128,
                                                       EetqLayout::Interleaved, q.scales, std::nullopt, EetqKernel::Exact);
  EXPECT_EQ(layer.quantized().q, q.q);
  EXPECT_EQ(layer.quantized().scales, q.scales);
  // Per-channel error of a symmetric int8 quantizer: at most half a step, one step at +amax.
  const Matrix err = (layer.weight() - w).cwiseAbs();
  for (int o = 0; o < 128; ++o) EXPECT_LE(err.row(o).maxCoeff(), q.scales(o) * (1 + 1e-12)) << "channel " << o;
}

TEST(EetqLinear, LibraryForwardRoundsWeightsOutputAndBiasSeparately) {
  // q = 3 everywhere, scale fp16(0.1) = 0.0999755859375, bias fp16(0.3331) = 0.3330078125, x = 1 on
  // the first 7 inputs: the library gives fp16(fp16(7 * fp16(3 s)) + b) = 2.4296875. Without the
  // weight rounding it would be 2.43359375; with the bias added before the output rounding,
  // 2.431640625 (values computed with numpy's float16).
  const double s = round_to(Dtype::Float16, 0.1), b = round_to(Dtype::Float16, 0.3331);
  EXPECT_EQ(s, 0.0999755859375);
  EXPECT_EQ(b, 0.3330078125);
  Matrix x = Matrix::Zero(2, 64);
  x.leftCols(7).setOnes();
  EetqLinear layer({CodeMatrix::Constant(64, 64, 3), Vector::Constant(64, s)}, Vector::Constant(64, b),
                   EetqKernel::Fp32Accumulate);
  const Matrix y = layer.forward(x, Dtype::Float16);
  EXPECT_EQ(y(0, 0), 2.4296875);
  EXPECT_EQ(y(1, 63), 2.4296875);
  EetqLinear exact({CodeMatrix::Constant(64, 64, 3), Vector::Constant(64, s)}, Vector::Constant(64, b), EetqKernel::Exact);
  EXPECT_EQ(exact.forward(x)(0, 0), 7 * 3 * s + b);
}

TEST(EetqLinear, MergesAreRefusedBeforeAnythingChanges) {
  EetqLinear base({CodeMatrix::Constant(64, 64, 1), Vector::Constant(64, 1.0 / 128)}, std::nullopt, EetqKernel::Exact);
  const Matrix x = Matrix::Ones(1, 64);
  EetqLoraLinear lora(base, Convention::Peft);
  lora.add_adapter("a", LoraConfig{2, 4, false, false, false}, Matrix::Constant(2, 64, 0.01), Matrix::Constant(64, 2, 0.5));
  const Matrix before = lora.forward(x);
  try {
    lora.merge({"a"});
    FAIL() << "merge accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("AttributeError"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("eetq_merge_to_dequantized"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(lora.merged_adapters().empty());
  EXPECT_EQ(lora.forward(x), before);
  EetqOftLinear oft(base, Convention::Peft);
  oft.add_adapter("o", OftConfig{0, 8, false, 6e-5, false, false, 5}, Matrix::Constant(8, 28, 0.05));
  const Matrix oft_before = oft.forward(x);
  EXPECT_THROW(oft.merge({"o"}), Error);
  EXPECT_TRUE(oft.merged_adapters().empty());
  EXPECT_EQ(oft.forward(x), oft_before);
}

TEST(EetqMerge, ToDequantizedRequantizesTheExactMergeAndReportsItsError) {
  const std::uint64_t seed = 7300;
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const EetqQuantized q = eetq_quantize(rng.normal(64, 128, 0.02));
  const EetqLinear base(q, round_to(Dtype::Float16, Vector(rng.normal(64, 1, 0.1).col(0))), EetqKernel::Exact);
  EetqLoraLinear lora(base, Convention::Math);
  lora.add_adapter("a", LoraConfig{4, 8, false, true, false}, rng.normal(4, 128, 0.1), rng.normal(64, 4, 0.1),
                   Vector(rng.normal(64, 1, 0.1).col(0)));
  const EetqMergeExport e = eetq_merge_to_dequantized(lora, {"a"});
  // The exact merge, then EETQ's own quantizer on it.
  LoraLinear dense = lora.dequantized();
  dense.merge({"a"});
  EXPECT_TRUE(close(dense.base().weight(), e.merged_weight, 0.0));
  EXPECT_EQ(e.layer.quantized().q, eetq_quantize(e.merged_weight).q);
  EXPECT_TRUE(close(round_to(Dtype::Float16, *dense.base().bias()), *e.layer.bias(), 0.0));  // lora_bias merged, fp16
  // Reported error: what the stored layer differs from the exact merge, at most one step per channel.
  EXPECT_DOUBLE_EQ(e.max_abs_error, (e.layer.weight() - e.merged_weight).cwiseAbs().maxCoeff());
  EXPECT_LE(e.max_abs_error, e.layer.quantized().scales.maxCoeff());
  EXPECT_GT(e.relative_error, 0.0);
  EXPECT_LT(e.relative_error, 0.01);
  EXPECT_GT(e.adapter_kept, 0.9);  // a large adapter survives int8 requantization
  EXPECT_LE(e.adapter_kept, 1.0);

  EetqOftLinear oft(base, Convention::Math);
  oft.add_adapter("o", OftConfig{0, 16, false, 6e-5, false, false, 5}, rng.normal(8, 120, 0.1));
  const EetqMergeExport r = eetq_merge_to_dequantized(oft, {"o"});
  EXPECT_TRUE(close(oft.forward(Matrix::Identity(128, 128)).transpose().leftCols(128) -
                        base.bias()->replicate(1, 128),
                    r.merged_weight, 1e-12));  // the merge is the rotated layer itself
  EXPECT_LE(r.max_abs_error, r.layer.quantized().scales.maxCoeff());
}

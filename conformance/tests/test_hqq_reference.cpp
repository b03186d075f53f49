// HQQ format and quantizer against hqq 0.2.8.post1's own outputs on CPU, as recorded in
// ../shared/spec/hqq.md §8 (W = float32(0.1 sin k), k = 0..63, shape (4, 16)).
#include <gtest/gtest.h>

#include <cmath>

#include "reference/seeded_random.hpp"
#include "reference/error.hpp"
#include "reference/hqq_quantizer.hpp"
#include "reference/torch_cpu_sum.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;

namespace {

Matrix sine_weight() {
  Matrix w(4, 16);
  for (int k = 0; k < 64; ++k) w(k / 16, k % 16) = static_cast<double>(static_cast<float>(0.1 * std::sin(k)));
  return w;
}

HqqQuantized quantize(int nbits, int group_size, int axis, HqqArithmetic a = HqqArithmetic::Float32Cpu) {
  return hqq_quantize(sine_weight(), hqq_base_quantize_config(nbits, group_size, axis), a);
}

CodeMatrix codes(int rows, int cols, std::initializer_list<int> values) {
  CodeMatrix m(rows, cols);
  int i = 0;
  for (int v : values) m(i / cols, i % cols) = v, ++i;
  return m;
}

std::vector<std::uint32_t> words(std::initializer_list<std::uint32_t> v) { return v; }

Matrix row_of(std::initializer_list<double> v) { return qoracle::testing::row(v); }

}  // namespace

struct SpecVector {
  const char* name;
  int nbits, group_size, axis, steps;
  std::vector<std::uint32_t> packed;
  std::vector<double> scale, zero;  // the first entries the spec lists
};

class HqqSpecVector : public ::testing::TestWithParam<SpecVector> {};

TEST_P(HqqSpecVector, MatchesTheLibrary) {
  const SpecVector& v = GetParam();
  for (HqqArithmetic a : {HqqArithmetic::Float32Cpu, HqqArithmetic::Float64}) {
    SCOPED_TRACE(hqq_arithmetic_name(a));
    const HqqQuantized q = quantize(v.nbits, v.group_size, v.axis, a);
    EXPECT_EQ(q.steps, v.steps);
    const HqqPacked p = hqq_pack(q.codes, v.nbits);
    if (!v.packed.empty()) {
      std::vector<std::uint32_t> head(p.words.begin(), p.words.begin() + static_cast<long>(v.packed.size()));
      EXPECT_EQ(head, v.packed);
    }
    for (std::size_t i = 0; i < v.scale.size(); ++i) EXPECT_NEAR(q.scale(static_cast<Eigen::Index>(i)), v.scale[i], 2e-7 * v.scale[i]) << i;
    // The spec prints zeros to 8 significant digits.
    for (std::size_t i = 0; i < v.zero.size(); ++i) EXPECT_NEAR(q.zero(static_cast<Eigen::Index>(i)), v.zero[i], 1e-6 * std::abs(v.zero[i]) + 1e-7) << i;
  }
}

INSTANTIATE_TEST_SUITE_P(
    Spec, HqqSpecVector,
    ::testing::Values(
        SpecVector{"A_4bit_axis1_gs8", 4, 8, 1, 3,
                   words({139, 255, 251, 148, 32, 2, 105, 222, 254, 183, 64, 1, 72, 191, 255, 217, 98, 1, 38, 157, 255, 251,
                          132, 16, 19, 122, 239, 252, 165, 48, 1, 88}),
                   {0.012454812, 0.013270651, 0.012495619, 0.012962717, 0.013277939, 0.012122065, 0.013242552, 0.013059936},
                   {7.9442582, 7.8232975, 7.9562168, 7.9393926, 7.0477376, 7.8700118, 7.9065866, 7.0357299}},
        SpecVector{"B_4bit_axis0_gs8", 4, 8, 0, 4,
                   words({123, 223, 235, 149, 32, 3, 89, 223, 253, 166, 48, 2, 72, 191, 254, 217, 81, 0, 21, 157, 255, 251,
                          115, 16, 3, 106, 223, 253, 166, 48, 2, 89}),
                   {0.01263291, 0.013075395, 0.012729296, 0.013042441, 0.013189375, 0.012113476, 0.013190927, 0.013090337},
                   {7.0703125, 7.0377374, 7.0430613, 7.9678507, 7.880784, 8.0018101, 7.2403116, 7.8270845}},
        SpecVector{"C_3bit_axis1_gs8", 3, 8, 1, 4,
                   words({0x2762e280, 0x3d0fb140, 0x3a3a87c0, 0x209d0d80, 0x0af04e80, 0x05e4fa00, 0x1f827440, 0x362bc100}),
                   {0.026688883, 0.028437106, 0.026776329, 0.027777251, 0.028452724, 0.025975853, 0.028376896, 0.027985578},
                   {3.7406542, 3.6425388, 3.8212345, 3.3717165, 3.3139439, 3.5226722, 3.6564076, 3.5083404}},
        SpecVector{"D_2bit_axis1_gs8", 2, 8, 1, 2,
                   words({152, 204, 201, 167, 51, 54, 105, 204, 205, 150, 115, 50, 105, 156, 204, 154}), {0.062274061}, {1.6388515}},
        SpecVector{"E_1bit_axis1_gs8", 1, 8, 1, 2, words({204, 201, 153, 179, 54, 102, 108, 205}), {0.18682218}, {0.58795053}},
        SpecVector{"F_8bit_axis1_gs16", 8, 16, 1, 4,
                   words({128, 236, 244, 146, 31, 5, 92, 212, 255, 181, 58, 0, 59, 182, 255, 211}), {0.00078062643}, {127.93963}}),
    [](const ::testing::TestParamInfo<SpecVector>& info) { return std::string(info.param.name); });

TEST(HqqFormat, SpecVectorACodesAndDequantError) {
  const HqqQuantized q = quantize(4, 8, 1);
  EXPECT_EQ(q.codes.row(0), codes(1, 8, {8, 15, 15, 9, 2, 0, 6, 13}));
  EXPECT_EQ(q.codes.row(7), codes(1, 8, {3, 10, 15, 12, 5, 0, 1, 8}));
  const double err = (hqq_dequantize(q, Dtype::Float32) - sine_weight()).cwiseAbs().maxCoeff();
  EXPECT_NEAR(err, 0.0056, 0.00005);  // the spec's max|W - W_dq|
}

TEST(HqqFormat, AxisZeroGroupsAreStridedColumns) {
  // (8, 4) with group_size 4: group 0 is flat {0, 8, 16, 24} = rows 0, 2, 4, 6 of column 0.
  Matrix w = Matrix::Zero(8, 4);
  const HqqGrouping g = hqq_grouping(hqq_base_quantize_config(8, 4, 0), 8, 4);
  for (int f = 0; f < 32; ++f) w(f / 4, f % 4) = f;
  const Matrix grouped = hqq_grouped(w, g);
  EXPECT_EQ(grouped.col(0).transpose(), row_of({0, 8, 16, 24}));
  EXPECT_EQ(hqq_ungrouped(grouped, 8, 4), w);
}

TEST(HqqFormat, PackUnpackRoundTripsForEveryWidth) {
  SeededRandom rng(3);
  QORACLE_SEED_TRACE(3);
  for (int nbits : {1, 2, 3, 4, 8}) {
    for (int rows : {8, 16, 24, 40, 13}) {
      if (nbits != 3 && rows % (nbits == 8 ? 1 : 8 / nbits) != 0) continue;
      CodeMatrix c(rows, 5);
      for (int i = 0; i < c.size(); ++i) c.data()[i] = static_cast<int>(rng.next_u64() % (1u << nbits));
      const HqqPacked p = hqq_pack(c, nbits);
      EXPECT_EQ(p.word_bits, nbits == 3 ? 32 : 8);
      for (auto w : p.words) EXPECT_LT(w, nbits == 3 ? (1u << 30) : 256u);  // 3-bit leaves bits 31..30 zero
      EXPECT_EQ(hqq_unpack(p, nbits, rows), c) << nbits << "-bit, " << rows << " rows";
    }
  }
}

TEST(HqqFormat, DequantizeRoundsTwiceInTheComputeDtype) {
  HqqQuantized q;
  q.config = hqq_base_quantize_config(4, 2, 1);
  q.out_features = 1;
  q.in_features = 2;
  q.codes = codes(1, 2, {3, 15});
  q.scale = Vector::Constant(1, 0.1);
  q.zero = Vector::Constant(1, 7.3);
  // float16: z = 7.3 -> 7.30078125; 3 - z = -4.30078125 (exact); * 0.0999755859375 -> rounded.
  const double z = round_to(Dtype::Float16, 7.3), s = round_to(Dtype::Float16, 0.1);
  const Matrix w = hqq_dequantize(q, Dtype::Float16);
  EXPECT_EQ(w(0, 0), round_to(Dtype::Float16, round_to(Dtype::Float16, 3 - z) * s));
  EXPECT_EQ(w(0, 1), round_to(Dtype::Float16, round_to(Dtype::Float16, 15 - z) * s));
  EXPECT_EQ(hqq_dequantize(q, Dtype::Float64)(0, 1), (15 - 7.3) * 0.1);
}

TEST(HqqFormat, Float32ModeTracksFloat64Closely) {
  SeededRandom rng(44);
  QORACLE_SEED_TRACE(44);
  const Matrix w = rng.normal(32, 64, 0.02);
  for (int nbits : {1, 2, 3, 4, 8}) {
    for (int axis : {0, 1}) {
      const HqqConfig cfg = hqq_base_quantize_config(nbits, 64, axis);
      const auto a = hqq_quantize(w, cfg, HqqArithmetic::Float32Cpu), b = hqq_quantize(w, cfg, HqqArithmetic::Float64);
      const double same = static_cast<double>((a.codes.array() == b.codes.array()).count()) / static_cast<double>(a.codes.size());
      EXPECT_GE(same, 0.999) << nbits << "-bit axis " << axis;
      EXPECT_TRUE(close(b.scale, a.scale, 1e-6)) << nbits << "-bit axis " << axis;
    }
  }
}

namespace {
// 1/(i+1) * (-1)^i * 10^(i mod 5) in float32: magnitudes spread so the order of additions shows.
std::vector<float> spread(int n) {
  std::vector<float> v;
  for (int i = 0; i < n; ++i)
    v.push_back(1.0f / static_cast<float>(i + 1) * static_cast<float>((i % 2 ? -1 : 1) * std::pow(10.0, i % 5)));
  return v;
}
}  // namespace

TEST(TorchCpuSum, RepeatsTorchsOrderOfAdditions) {
  // torch 2.15 (one thread, AVX512 machine) on the same arrays: x.sum(dim=1), x.sum(dim=0), x.sum().
  // The exactly rounded sums differ from these in most places (e.g. 0x1.511e6cp+10 for row 0).
  const std::vector<float> a = spread(3 * 37);
  const std::vector<float> inner = torch_cpu_sum_inner(a, 3, 37, kTorchSumLanes);
  EXPECT_EQ(inner, (std::vector<float>{0x1.511e6ep+10f, -0x1.86e35p+7f, 0x1.13c09p+5f}));
  EXPECT_EQ(torch_cpu_sum_all(a, kTorchSumLanes), 0x1.28e00ap+10f);
  const std::vector<float> outer = torch_cpu_sum_outer(spread(37 * 21), 37, 21, kTorchSumLanes);
  const std::vector<float> torch_outer{
      0x1.455394p+6f,  0x1.9b9f92p+6f,  0x1.6d3222p+7f,  0x1.8b22ccp+6f,  0x1.e4b98ep+10f, -0x1.2f0e9cp+6f, -0x1.885e8cp+6f,
      -0x1.283b8ep+7f, -0x1.59fc8p+7f,  -0x1.d6db5ep+9f, 0x1.1dd92p+6f,  0x1.6e07bcp+6f,  0x1.06fb42p+7f,  0x1.4dc90cp+7f,
      0x1.31792cp+9f,  -0x1.0e9296p+6f, -0x1.56195cp+6f, -0x1.dcb6bap+6f, -0x1.2f5a64p+7f, -0x1.bea0e4p+8f, 0x1.00da3cp+6f};
  EXPECT_EQ(outer, torch_outer);
}

// AQLM against the hand-computed vectors of ../shared/spec/aqlm.md §7 (checked there against
// the real aqlm on the CPU), the signed-offset codes at their edges, and PEFT's refusals.
#include <gtest/gtest.h>

#include "reference/aqlm_linear.hpp"
#include "reference/aqlm_quantizer.hpp"
#include "reference/seeded_random.hpp"
#include "reference/error.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;
using qoracle::testing::row;
using qoracle::testing::rows;

namespace {

std::vector<int> decode(std::initializer_list<std::int64_t> stored, int nbits) {
  std::vector<int> u;
  for (auto s : stored) u.push_back(aqlm_code_index(s, nbits));
  return u;
}

// TV1: C=2, nb=2, ig=2, og=1, I=4, O=2.
AqlmLinear tv1(AqlmKernel kernel = AqlmKernel::Exact, Dtype dtype = Dtype::Float64) {
  const std::vector<double> cb = {1, 0, 0, 1, 1, 1, -1, 2,         // codebook 0: 4 entries x 2
                                  .5, .5, -.5, 0, 0, -.25, .25, .25};  // codebook 1
  return AqlmLinear(AqlmConfig{2, 1, 2, 2}, 2, 4, decode({-2, 1, -1, 0, 0, -1, 1, -2}, 2), cb,
                    Vector::Map(std::array{2.0, 0.5}.data(), 2), Vector(Vector::Map(std::array{0.125, -0.25}.data(), 2)),
                    dtype, kernel);
}

}  // namespace

TEST(Aqlm, SignedOffsetCodesAtTheirEdges) {
  EXPECT_EQ(aqlm_code_index(-25536, 16), 40000);
  EXPECT_EQ(aqlm_code_index(-1, 16), 65535);
  EXPECT_EQ(aqlm_code_index(-56, 8), 200);
  EXPECT_EQ(aqlm_code_index(-128, 8), 128);   // 2^(nb-1)
  EXPECT_EQ(aqlm_code_index(127, 8), 127);
  for (int nb : {2, 8, 16})
    for (int u : {0, 1, (1 << (nb - 1)) - 1, 1 << (nb - 1), (1 << nb) - 1})
      EXPECT_EQ(aqlm_code_index(aqlm_stored_code(u, nb), nb), u) << nb << "-bit u=" << u;
  EXPECT_EQ(aqlm_stored_code(255, 8), -1);
  EXPECT_EQ(aqlm_stored_code(128, 8), -128);
}

TEST(Aqlm, Tv1WeightAndForward) {
  const AqlmLinear l = tv1();
  EXPECT_TRUE(close(rows({{1, 2, -1, 5}, {.625, .125, 0, .375}}), l.weight(), 0.0));
  EXPECT_TRUE(close(row({22.125, 2.125}), l.forward(row({1, 2, 3, 4})), 0.0));
  EXPECT_TRUE(close(row({10.125, -.0625}), l.forward(row({-1, .5, 0, 2})), 0.0));
  // The float32 fallback kernel agrees here (all values are exact in float32).
  EXPECT_TRUE(close(row({22.125, 2.125}), tv1(AqlmKernel::DequantizeGemm, Dtype::Float32).forward(row({1, 2, 3, 4}), Dtype::Float32), 0.0));
}

TEST(Aqlm, Tv1Lora) {
  const Matrix a = rows({{1, 0, 0, 0}, {0, 1, 0, 1}}), b = rows({{.5, 0}, {0, -1}});
  const Matrix x1 = row({1, 2, 3, 4}), x2 = row({-1, .5, 0, 2});
  {
    AqlmLoraLinear l(tv1());
    l.add_adapter("a", LoraConfig{2, 4, false, false, false}, a, b);
    EXPECT_TRUE(close(row({23.125, -9.875}), l.forward(x1), 1e-15));
    EXPECT_TRUE(close(row({9.125, -5.0625}), l.forward(x2), 1e-15));
  }
  {
    AqlmLoraLinear l(tv1());
    l.add_adapter("a", LoraConfig{2, 4, true, false, false}, a, b);
    EXPECT_TRUE(close(row({23.539213562373096, -14.845562748477139}), l.forward(x1), 1e-15));
  }
  {
    AqlmLoraLinear l(tv1());
    l.add_adapter("a", LoraConfig{2, 4, false, true, false}, a, b, Vector::Map(std::array{.25, 0.0}.data(), 2));
    EXPECT_TRUE(close(row({23.625, -9.875}), l.forward(x1), 1e-15));
  }
  {
    AqlmLoraLinear l(tv1());
    l.add_adapter("a", LoraConfig{2, 4, false, false, false}, a, b);
    l.add_adapter("b", LoraConfig{1, 1, false, false, false}, rows({{0, 0, 1, 0}}), rows({{1}, {1}}));
    l.set_active_adapters({"a", "b"});
    EXPECT_TRUE(close(row({26.125, -6.875}), l.forward(x1), 1e-15));
  }
}

TEST(Aqlm, Tv1Fp16RoundsBeforeScalingAsPeft) {
  // Base result [22.125, 2.125] in fp16; LoRA output [.5, -6] in fp32; rsLoRA s = 2*sqrt(2):
  // AqlmLoraLinear gives [23.53125, -14.84375] (23.5390625 is a tie, to even), lora.Linear 23.546875.
  const Matrix a = rows({{1, 0, 0, 0}, {0, 1, 0, 1}}), b = rows({{.5, 0}, {0, -1}});
  AqlmLoraLinear l(tv1(AqlmKernel::DequantizeGemm, Dtype::Float16));
  l.add_adapter("a", LoraConfig{2, 4, true, false, false}, a, b);
  l.set_compute_dtype(Dtype::Float16);
  EXPECT_TRUE(close(row({23.53125, -14.84375}), l.forward(row({1, 2, 3, 4})), 0.0));
  LoraLinear dense(DenseLinear(tv1().weight(), Vector(Vector::Map(std::array{0.125, -0.25}.data(), 2))));
  dense.add_adapter("a", LoraConfig{2, 4, true, false, false}, a, b);
  dense.set_compute_dtype(Dtype::Float16);
  EXPECT_TRUE(close(row({23.546875, -14.84375}), dense.forward(row({1, 2, 3, 4})), 0.0));
}

TEST(Aqlm, SixteenBitLoraScalesByTheFloat32Scaling) {
  // r = 3, alpha = 7: PEFT multiplies the 16-bit B(A(x)) by the Python float 7/3, which torch
  // rounds to float32 (2.3333332538604736) first. With B(A(x)) = v on both rows of TV1 (base
  // [22.125, 2.125]), torch 2.15 gives these sums; scaling by the double 7/3 ties the other way.
  struct Row {
    Dtype dtype;
    double v;
    std::array<double, 2> peft;
  };
  for (const Row& r : {Row{Dtype::Float16, 6.15234375, {36.46875, 16.46875}},
                       Row{Dtype::BFloat16, 3.234375, {29.625, 9.625}}}) {
    SCOPED_TRACE(dtype_name(r.dtype));
    AqlmLoraLinear l(tv1(AqlmKernel::DequantizeGemm, r.dtype));
    l.add_adapter("a", LoraConfig{3, 7, false, false, false}, rows({{1, 0, 0, 0}, {0, 0, 0, 0}, {0, 0, 0, 0}}),
                  rows({{r.v, 0, 0}, {r.v, 0, 0}}));
    l.set_compute_dtype(r.dtype);
    EXPECT_TRUE(close(row({r.peft[0], r.peft[1]}), l.forward(row({1, 2, 3, 4})), 0.0));
  }
}

TEST(Aqlm, Tv2OutGroupsOfTwo) {
  std::vector<double> cb(static_cast<std::size_t>(65536) * 4, 0.0);
  auto set = [&](int u, std::array<double, 4> v) { std::copy(v.begin(), v.end(), cb.begin() + static_cast<long>(u) * 4); };
  set(5, {1, 2, 3, 4});
  set(40000, {0, 1, 1, 0});
  set(65535, {-1, 0, .5, .5});
  const AqlmLinear l(AqlmConfig{2, 2, 1, 16}, 4, 4, decode({5, -25536, -1, 5}, 16), cb,
                     Vector::Map(std::array{1.0, 0.5}.data(), 2), std::nullopt, Dtype::Float32, AqlmKernel::DequantizeGemm);
  EXPECT_TRUE(close(rows({{1, 2, 0, 1}, {3, 4, 1, 0}, {-.5, 0, .5, 1}, {.25, .25, 1.5, 2}}), l.weight(), 0.0));
  EXPECT_TRUE(close(row({-.5, 1, 1, 4}), l.forward(row({1, -1, 2, .5}), Dtype::Float32), 0.0));
}

TEST(Aqlm, Tv3NumbaKernel) {
  std::vector<double> cb(static_cast<std::size_t>(2) * 256 * 8, 0.0);
  auto set = [&](int k, int u, std::array<double, 8> v) {
    std::copy(v.begin(), v.end(), cb.begin() + (static_cast<long>(k) * 256 + u) * 8);
  };
  set(0, 200, {1, -1, .5, 0, 2, 0, 0, 1});
  set(0, 3, {0, 0, 0, 0, 0, 0, 0, 1});
  set(1, 128, {.25, .25, .25, .25, .25, .25, .25, .25});
  set(1, 255, {1, 2, 3, 4, 5, 6, 7, 8});
  Matrix x(1, 16);
  for (int t = 0; t < 16; ++t) x(0, t) = t / 4.0;
  for (AqlmKernel k : {AqlmKernel::Exact, AqlmKernel::NumbaLut}) {
    const AqlmLinear l(AqlmConfig{8, 1, 2, 8}, 2, 16, decode({-56, -128, 3, -1, 3, -1, -56, -56}, 8), cb,
                       Vector::Map(std::array{1.0, 2.0}.data(), 2), Vector(Vector::Map(std::array{0.0, 1.0}.data(), 2)),
                       Dtype::Float32, k);
    EXPECT_TRUE(close(row({123.25, 110}), l.forward(x, Dtype::Float32), 0.0)) << aqlm_kernel_name(k);
  }
}

TEST(Aqlm, MergesAreRefusedBeforeAnythingChanges) {
  const Matrix a = rows({{1, 0, 0, 0}, {0, 1, 0, 1}}), b = rows({{.5, 0}, {0, -1}});
  AqlmLoraLinear lora(tv1());
  lora.add_adapter("a", LoraConfig{2, 4, false, false, false}, a, b);
  const Matrix before = lora.forward(row({1, 2, 3, 4}));
  try {
    lora.merge({"a"});
    FAIL() << "merge accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use dequantized()"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(lora.merged_adapters().empty());
  EXPECT_EQ(lora.forward(row({1, 2, 3, 4})), before);  // untouched, still unmerged
  AqlmOftLinear oft(tv1(), Convention::Math);
  oft.add_adapter("o", OftConfig{0, 2, false, 6e-5, false, false, 5}, rows({{0.1}, {-0.2}}));
  EXPECT_THROW(oft.merge({"o"}), Error);
  EXPECT_TRUE(oft.merged_adapters().empty());
}

TEST(Aqlm, DoraIsRefusedAsPeftRefusesIt) {
  AqlmLoraLinear lora(tv1());
  try {
    lora.add_adapter("a", LoraConfig{2, 4, false, false, true}, Matrix::Ones(2, 4), Matrix::Ones(2, 2));
    FAIL() << "DoRA accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("use_dora"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not support DoRA"), std::string::npos) << e.what();
  }
}

TEST(Aqlm, MergeToDequantizedExportsTheSameFunction) {
  const Matrix a = rows({{1, 0, 0, 0}, {0, 1, 0, 1}}), b = rows({{.5, 0}, {0, -1}});
  AqlmLoraLinear lora(tv1());
  lora.add_adapter("a", LoraConfig{2, 4, false, false, false}, a, b);
  LoraLinear dense = lora.dequantized();
  dense.merge({"a"});
  EXPECT_TRUE(close(lora.forward(row({1, 2, 3, 4})), dense.forward(row({1, 2, 3, 4})), 1e-15));  // exact in float64
}

TEST(AqlmQuantizer, ProducesValidDeterministicLayers) {
  SeededRandom rng(61);
  QORACLE_SEED_TRACE(61);
  const Matrix w = rng.normal(16, 64, 0.02);
  for (const AqlmConfig& cfg : {AqlmConfig{8, 1, 2, 8}, AqlmConfig{8, 1, 1, 8}, AqlmConfig{4, 2, 1, 6}}) {
    AqlmQuantizerOptions opt;
    opt.seed = 5;
    const AqlmQuantized a = aqlm_quantize(w, cfg, opt), b = aqlm_quantize(w, cfg, opt);
    EXPECT_EQ(a.codes, b.codes);
    EXPECT_EQ(a.codebooks, b.codebooks);
    for (int u : a.codes) ASSERT_TRUE(u >= 0 && u < (1 << cfg.nbits_per_codebook));
    for (double v : a.codebooks) ASSERT_EQ(v, round_to(Dtype::Float16, v));  // stored as float16
    // The reported error is the error of the layer built from the stored tensors.
    const AqlmLinear layer(cfg, 16, 64, a.codes, a.codebooks, a.scales, std::nullopt, Dtype::Float16, AqlmKernel::Exact);
    EXPECT_NEAR((layer.weight() - w).norm() / w.norm(), a.relative_error, 1e-12);
    EXPECT_LT(a.relative_error, 1.0);
  }
}

TEST(AqlmQuantizer, MoreCodebooksReconstructBetter) {
  SeededRandom rng(62);
  QORACLE_SEED_TRACE(62);
  const Matrix w = rng.normal(16, 64, 0.02);
  AqlmQuantizerOptions opt;
  opt.storage = Dtype::Float64;
  const double one = aqlm_quantize(w, AqlmConfig{8, 1, 1, 6}, opt).relative_error;
  const double two = aqlm_quantize(w, AqlmConfig{8, 1, 2, 6}, opt).relative_error;
  EXPECT_LT(two, one);
  // With at least as many entries as vectors (16 * 8 = 128 <= 256) every vector is a centroid: exact.
  EXPECT_LT(aqlm_quantize(w, AqlmConfig{8, 1, 1, 8}, opt).relative_error, 1e-12);
}

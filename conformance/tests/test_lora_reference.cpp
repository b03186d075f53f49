// LoRA / DoRA reference against values worked by hand (spec peft-oft-lora.md §4, §7.2 case D).
#include <gtest/gtest.h>

#include <cmath>

#include "reference/seeded_random.hpp"
#include "reference/lora_linear.hpp"
#include "test_support.hpp"

using namespace qoracle;
using qoracle::testing::close;
using qoracle::testing::row;
using qoracle::testing::rows;

TEST(Lora, ScalingIsAlphaOverROrOverSqrtR) {
  const Matrix a = Matrix::Ones(4, 3), b = Matrix::Ones(2, 4);
  EXPECT_EQ(LoraAdapter(3, 2, LoraConfig{4, 8, false, false, false}, a, b).scaling(), 2.0);
  EXPECT_EQ(LoraAdapter(3, 2, LoraConfig{4, 8, true, false, false}, a, b).scaling(), 4.0);
}

TEST(Lora, ForwardByHand) {
  // W = I(2), bias [1, -1], A = [[1, 2]], B = [[1], [3]], r = 1, alpha = 2 (s = 2), lora bias [0.5, 0].
  LoraLinear layer(DenseLinear(rows({{1, 0}, {0, 1}}), Vector::Map(std::array{1.0, -1.0}.data(), 2)));
  layer.add_adapter("default", LoraConfig{1, 2, false, true, false}, rows({{1, 2}}), rows({{1}, {3}}),
                    Vector::Map(std::array{0.5, 0.0}.data(), 2));
  const Matrix x = row({1, 1});
  // base = [2, 0]; x A^T = 3; B * 3 = [3, 9]; + b_B = [3.5, 9]; * 2 = [7, 18].
  EXPECT_TRUE(close(row({9, 18}), layer.forward(x), 0.0));
  EXPECT_TRUE(close(row({2, 0}), layer.forward_disabled(x), 0.0));
  layer.merge({"default"});
  EXPECT_TRUE(close(rows({{3, 4}, {6, 13}}), layer.base().weight(), 0.0));   // W + 2 B A
  EXPECT_TRUE(close(row({2, -1}), Matrix(layer.base().bias()->transpose()), 0.0));  // b + 2 b_B
  EXPECT_TRUE(close(row({9, 18}), layer.forward(x), 0.0));
  layer.unmerge();
  EXPECT_TRUE(close(rows({{1, 0}, {0, 1}}), layer.base().weight(), 0.0));
}

TEST(Lora, TwoAdaptersAddUp) {
  SeededRandom rng(21);
  QORACLE_SEED_TRACE(21);
  const Matrix w = rng.normal(6, 5, 1.0), x = rng.normal(4, 5, 1.0);
  LoraLinear layer(DenseLinear(w, std::nullopt));
  const Matrix a1 = rng.normal(2, 5, 0.3), b1 = rng.normal(6, 2, 0.3), a2 = rng.normal(3, 5, 0.3), b2 = rng.normal(6, 3, 0.3);
  layer.add_adapter("one", LoraConfig{2, 4, false, false, false}, a1, b1);
  layer.add_adapter("two", LoraConfig{3, 3, true, false, false}, a2, b2);
  layer.set_active_adapters({"one", "two"});
  const Matrix want = x * (w + 2.0 * b1 * a1 + (3.0 / std::sqrt(3.0)) * b2 * a2).transpose();
  EXPECT_TRUE(close(want, layer.forward(x), 1e-14));
  layer.set_active_adapters({"two"});
  EXPECT_TRUE(close(Matrix(x * (w + std::sqrt(3.0) * b2 * a2).transpose()), layer.forward(x), 1e-14));
}

TEST(Dora, ForwardIsMagnitudeTimesDirectionAndMergeAgrees) {
  SeededRandom rng(31);
  QORACLE_SEED_TRACE(31);
  const Matrix w = rng.normal(4, 6, 1.0), x = rng.normal(3, 6, 1.0), a = rng.normal(2, 6, 0.2), b = rng.normal(4, 2, 0.2);
  const Vector bias = rng.normal(4, 1, 1.0).col(0), m = rng.uniform(4, 1, 0.5, 2.0).col(0);
  LoraLinear layer(DenseLinear(w, bias));
  layer.add_adapter("default", LoraConfig{2, 4, false, false, true}, a, b, std::nullopt, m);
  const Matrix v = w + 2.0 * b * a;                     // direction before normalisation
  const Vector g = m.cwiseQuotient(v.rowwise().norm());
  Matrix want = x * (g.asDiagonal() * v).transpose();  // y = g (x V^T) + b
  want.rowwise() += bias.transpose();
  EXPECT_TRUE(close(want, layer.forward(x), 1e-14));
  layer.merge({"default"});
  EXPECT_TRUE(close(Matrix(g.asDiagonal() * v), layer.base().weight(), 1e-14));
  EXPECT_TRUE(close(want, layer.forward(x), 1e-14));
  layer.unmerge();
  EXPECT_TRUE(close(w, layer.base().weight(), 1e-14));
}

TEST(Dora, InitialMagnitudeMakesItPlainLora) {
  SeededRandom rng(32);
  QORACLE_SEED_TRACE(32);
  const Matrix w = rng.normal(4, 6, 1.0), x = rng.normal(3, 6, 1.0), a = rng.normal(2, 6, 0.2), b = rng.normal(4, 2, 0.2);
  LoraLinear dora(DenseLinear(w, std::nullopt)), plain(DenseLinear(w, std::nullopt));
  dora.add_adapter("default", LoraConfig{2, 4, false, false, true}, a, b);  // m = rownorm(W + sBA): g = 1
  plain.add_adapter("default", LoraConfig{2, 4, false, false, false}, a, b);
  EXPECT_TRUE(close(plain.forward(x), dora.forward(x), 1e-14));
}

// Several DoRA adapters (measured with the real PEFT 0.19.1 and 0.21.2, reports/peft-deviations.md
// D12): each scales the result so far less the base bias, y <- g (y - b) + g s x A^T B^T + b, with
// g on the unmerged W; a plain adapter in between is scaled by the DoRA adapters after it. The
// merge composes W <- g (W + s B A) with the same g, so merged and unmerged forwards agree, also
// when the adapters are merged in separate calls.
TEST(Dora, SeveralAdaptersScaleTheResultSoFar) {
  const std::uint64_t seed = 33;
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const int in = 6, out = 4;
  const Matrix w = rng.normal(out, in, 1.0), x = rng.normal(3, in, 1.0);
  const Vector bias = rng.normal(out, 1, 1.0).col(0);
  const std::vector<std::string> names = {"first", "plain", "second"};
  for (Convention convention : {Convention::Math, Convention::Peft}) {
    LoraLinear layer(DenseLinear(w, bias), convention);
    Matrix want = x * w.transpose();  // y - b
    for (const std::string& name : names) {
      const bool dora = name != "plain";
      const Matrix a = rng.normal(2, in, 0.3), b = rng.normal(out, 2, 0.3);
      const Vector m = dora ? Vector((w + 2.0 * b * a).rowwise().norm().array() * rng.uniform(out, 1, 0.5, 1.5).col(0).array())
                            : Vector();
      layer.add_adapter(name, LoraConfig{2, 4, false, false, dora}, a, b, std::nullopt,
                        dora ? std::optional<Vector>(m) : std::nullopt);
      const Vector g = dora ? Vector(m.cwiseQuotient((w + 2.0 * b * a).rowwise().norm())) : Vector::Ones(out);
      want = (want + 2.0 * x * a.transpose() * b.transpose()) * g.asDiagonal();
    }
    want.rowwise() += bias.transpose();
    layer.set_active_adapters(names);
    EXPECT_TRUE(close(want, layer.forward(x), 1e-12)) << convention_name(convention);
    layer.merge({"first"});
    layer.merge({"plain", "second"});
    EXPECT_TRUE(close(want, layer.forward(x), 1e-12)) << convention_name(convention) << " merged";
    layer.unmerge();
    EXPECT_TRUE(close(w, layer.base().weight(), 1e-12)) << convention_name(convention) << " unmerged";
  }
}

TEST(Lora, SixteenBitAdapterRoundsItsDeltaAndItsOutput) {
  // PEFT 0.18's add_adapter leaves the adapter of a float16 model in float16. W = [[1]], r = 2,
  // s = 1, A = [[1], [2^-12]], B = [[2^-11, 2^-11]]: B A = 2^-11 + 2^-23, whose float16 value is
  // 2^-11. Merged: 1 + 2^-11 is a tie, to even: 1.0. A float32 adapter adds the float32 delta,
  // 1 + 2^-11 + 2^-23 is above the tie: 1 + 2^-10.
  const Matrix a = rows({{1}, {std::ldexp(1.0, -12)}}), b = rows({{std::ldexp(1.0, -11), std::ldexp(1.0, -11)}});
  for (Dtype adapter : {Dtype::Float16, Dtype::Float32}) {
    SCOPED_TRACE(dtype_name(adapter));
    const double want = adapter == Dtype::Float16 ? 1.0 : 1.0 + std::ldexp(1.0, -10);
    LoraLinear layer(DenseLinear(rows({{1}}), std::nullopt), Convention::Peft);
    layer.set_compute_dtype(Dtype::Float16);
    layer.add_adapter("a", LoraConfig{2, 2, false, false, false}, a, b);
    layer.set_adapter_dtype("a", adapter);
    // forward, x = [1]: A x = [1, 2^-12], B (A x) rounds to 2^-11 in float16; 1 + 2^-11 ties to 1.
    EXPECT_EQ(layer.forward(row({1}))(0, 0), want);
    EXPECT_EQ(layer.delta_weight("a")(0, 0),
              adapter == Dtype::Float16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -11) + std::ldexp(1.0, -23));
    layer.merge({"a"});
    EXPECT_EQ(layer.base().weight()(0, 0), want);
  }
  LoraLinear dora(DenseLinear(rows({{1}}), std::nullopt), Convention::Peft);
  dora.add_adapter("d", LoraConfig{2, 2, false, false, true}, a, b);
  EXPECT_NE(qoracle::testing::error_of([&] { dora.set_adapter_dtype("d", Dtype::BFloat16); }).find("DoRA with bfloat16"),
            std::string::npos);
}

TEST(Lora, PeftDoraReturnsARowForAVectorInput) {
  // PEFT multiplies by a [1, out] DoRA factor, so a 1-D input gives [1, out] (same values);
  // the math keeps [out]. After a merge no DoRA factor is applied.
  SeededRandom rng(31);
  QORACLE_SEED_TRACE(31);
  for (Convention conv : {Convention::Math, Convention::Peft}) {
    LoraLinear layer(DenseLinear(rng.normal(3, 4, 0.5), std::nullopt), conv);
    layer.add_adapter("plain", LoraConfig{2, 4, false, false, false}, rng.normal(2, 4, 0.1), rng.normal(3, 2, 0.1));
    EXPECT_FALSE(layer.forward_adds_leading_dimension());
    layer.add_adapter("d", LoraConfig{2, 4, false, false, true}, rng.normal(2, 4, 0.1), rng.normal(3, 2, 0.1));
    layer.set_active_adapters({"plain", "d"});
    EXPECT_EQ(layer.forward_adds_leading_dimension(), conv == Convention::Peft) << convention_name(conv);
    layer.merge({"plain", "d"});
    EXPECT_FALSE(layer.forward_adds_leading_dimension());
  }
}

// A merge that throws (here: s B A overflows to inf, or DoRA's g to 0 and W' to NaN) leaves the
// layer as it was, bit for bit: weight, bias, merged list. Covers the merges that write the base
// once at the end and need no backup (Math; PEFT's single adapter) and those that write before
// the failure and restore a backup (PEFT adapter by adapter; DoRA replaying the merged ones).
TEST(Lora, MergeThatThrowsLeavesTheLayerUnchanged) {
  const std::uint64_t seed = 34;
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const int in = 5, out = 6;
  const Matrix w = rng.normal(out, in, 1.0), x = rng.normal(2, in, 1.0);
  const Vector bias = rng.normal(out, 1, 1.0).col(0);
  const Matrix a = rng.normal(2, in, 0.3), b = rng.normal(out, 2, 0.3);
  const Matrix huge_a = Matrix::Constant(2, in, 1e200), huge_b = Matrix::Constant(out, 2, 1e200);
  for (Convention convention : {Convention::Math, Convention::Peft})
    for (Dtype dtype : {Dtype::Float64, Dtype::Float32})
      for (bool dora : {false, true}) {
        SCOPED_TRACE(std::string(convention_name(convention)) + " " + dtype_name(dtype) + (dora ? " DoRA" : " LoRA"));
        const LoraConfig config{2, 4, false, false, dora};
        const std::optional<Vector> m = dora ? std::optional<Vector>(Vector::Ones(out)) : std::nullopt;
        LoraLinear layer(DenseLinear(w, bias), convention);
        layer.set_compute_dtype(dtype);
        layer.add_adapter("ok", config, a, b, std::nullopt, m);
        layer.add_adapter("huge", config, huge_a, huge_b, std::nullopt, m);
        auto expect_unchanged = [&](const Matrix& weight, const std::vector<std::string>& merged, const char* what) {
          SCOPED_TRACE(what);
          EXPECT_EQ(layer.base().weight(), weight);
          ASSERT_TRUE(layer.base().bias());
          EXPECT_EQ(*layer.base().bias(), bias);
          EXPECT_EQ(layer.merged_adapters(), merged);
        };
        const Matrix before = layer.base().weight();
        EXPECT_THROW(layer.merge({"huge"}), Error);
        expect_unchanged(before, {}, "huge alone");
        EXPECT_THROW(layer.merge({"ok", "huge"}), Error);  // PEFT has written "ok" back by then
        expect_unchanged(before, {}, "ok, then huge");
        layer.merge({"ok"});
        const Matrix merged = layer.base().weight();
        EXPECT_NE(merged, before);
        EXPECT_THROW(layer.merge({"huge"}), Error);  // DoRA in PEFT: unmerges and re-merges "ok" first
        expect_unchanged(merged, {"ok"}, "huge after ok");
        layer.set_active_adapters({"ok"});
        EXPECT_TRUE(layer.forward(x).allFinite());
        layer.unmerge();
        EXPECT_TRUE(close(w, layer.base().weight(), 1e-6));
      }
}

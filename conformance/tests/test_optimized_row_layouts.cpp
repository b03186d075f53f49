// The tensor-core GEMV's row layouts (optimized/forward/row_layouts.hpp), every kind, in float16
// and bfloat16, at token counts 1..16 (one and two mma token tiles) and 20 (the GEMM path), on a
// shape whose rows and inputs need padding. Checks per case:
//   1. the host emulation (32 lanes building mma fragments, the PTX layouts' product, the K split)
//      equals a plain double loop over the layout's own dequantized values, up to float32
//      summation order: the fragment mapping, padding and split are right;
//   2. with a LoRA adapter and with an OFT adapter, the emulation passes the fp64 referee against
//      the float64 reference, with the reference's emulation of PEFT in that dtype as the
//      baseline: the values (hqq's roundings, AQLM's codebook sums, EETQ's scales) are right;
//   3. with a GPU, the resident layer's kernels (tensor-core GEMV, prepass with programmatic
//      launch, GEMM path) equal the emulation up to float32 summation order (2u of max|y|,
//      conformance/TOLERANCES.md), without adapters, with LoRA and with OFT.
#include <gtest/gtest.h>

#include <cmath>

#include "bench/layer_cases.hpp"
#include "conformance/optimized_check.hpp"
#include "optimized/forward/rows_base.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "reference/dtype.hpp"
#include "reference/eetq_format.hpp"
#include "reference/hqq_format.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using optimized::HostLayer;
using optimized::RowsKind;

constexpr int kIn = 320;  // inputs pad to whole K blocks
int kOut = 80;           // rows pad to 128 (EETQ: 128, its layouts need multiples of 64)

struct KindCase {
  RowsKind kind;
  int hqq_bits = 0;     // HQQ
  int codebooks = 0;    // AQLM
  int aqlm_bits = 0;
};

std::string case_name(const KindCase& k) { return optimized::rows_kind_name(k.kind) + std::string(k.hqq_bits == 3 ? "from3" : ""); }

std::optional<Vector> bias_of(SeededRandom& rng) { return round_to(Dtype::Float16, Vector(rng.normal(kOut, 1, 0.1).col(0))); }

HqqLinear hqq_base(int nbits, SeededRandom& rng) {
  HqqQuantized q;
  q.config = hqq_base_quantize_config(nbits, 64, 1);
  q.out_features = kOut;
  q.in_features = kIn;
  const HqqGrouping g = hqq_grouping(q.config, kOut, kIn);
  q.codes = (rng.uniform(g.rows, g.cols, 0.0, std::ldexp(1.0, nbits)).array().floor()).cast<int>().matrix();
  q.scale = round_to(Dtype::Float16, Vector(rng.uniform(g.groups, 1, 0.01, 0.03).col(0)));
  q.zero = round_to(Dtype::Float16, Vector(rng.uniform(g.groups, 1, 0.0, std::ldexp(1.0, nbits) - 1).col(0)));
  return HqqLinear(std::move(q), bias_of(rng), Dtype::Float64);
}

AqlmLinear aqlm_base(int codebooks, int nbits, SeededRandom& rng) {
  const AqlmConfig config{.in_group_size = 8, .out_group_size = 1, .num_codebooks = codebooks, .nbits_per_codebook = nbits};
  const AqlmGeometry geo = aqlm_geometry(config, kOut, kIn);
  std::vector<int> codes(static_cast<std::size_t>(geo.out_groups) * geo.in_groups * codebooks);
  for (int& c : codes) c = static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(geo.entries));
  const Matrix cb = round_to(Dtype::Float16, rng.normal(codebooks * geo.entries, 8, 0.5));
  std::vector<double> flat(cb.data(), cb.data() + cb.size());
  for (Eigen::Index k = 0; k < cb.rows(); ++k)
    for (Eigen::Index c = 0; c < cb.cols(); ++c) flat[static_cast<std::size_t>(k * 8 + c)] = cb(k, c);
  const Vector scales = round_to(Dtype::Float16, Vector(rng.uniform(kOut, 1, 0.02, 0.05).col(0)));
  return AqlmLinear(config, kOut, kIn, std::move(codes), std::move(flat), scales, bias_of(rng), Dtype::Float16,
                    AqlmKernel::Exact);
}

// f.template operator()<Base>(base) with the case's base layer.
template <class F>
void with_kind(const KindCase& k, F f) {
  SeededRandom rng(1800 + static_cast<int>(k.kind) * 7 + k.hqq_bits);
  kOut = k.kind == RowsKind::Int8 ? 128 : 80;
  switch (k.kind) {
    case RowsKind::Dense:
      return f(DenseLinear(round_to(Dtype::Float16, rng.normal(kOut, kIn, 0.05)), bias_of(rng)));
    case RowsKind::Int8:
      return f(EetqLinear(eetq_quantize(rng.normal(kOut, kIn, 0.05), Dtype::Float16), bias_of(rng), EetqKernel::Exact));
    case RowsKind::Hqq8: case RowsKind::Hqq4: case RowsKind::Hqq2: case RowsKind::Hqq1:
      return f(hqq_base(k.hqq_bits, rng));
    default:
      return f(aqlm_base(k.codebooks, k.aqlm_bits, rng));
  }
}

// The emulation's result without adapters, computed plainly: round(row_scale * sum_i v(o,i) x(t,i) + bias).
template <class Tag>
std::vector<float> plain_rows_forward(const HostLayer& l, const std::vector<float>& x, int tokens) {
  const optimized::RowsBase rows = optimized::repack_rows(l);
  std::vector<float> y(static_cast<std::size_t>(tokens) * l.out_features);
  optimized::with_rows_layout<Tag>(rows, [](const auto& v) { return v.data(); }, [&](const auto& w) {
    using Layout = std::decay_t<decltype(w)>;
    for (int o = 0; o < l.out_features; ++o)
      for (int t = 0; t < tokens; ++t) {
        double s = 0;
        for (int i0 = 0; i0 < l.in_features; i0 += Layout::kLaneInputs) {
          const typename Layout::Raw raw = w.load(o, i0);
          for (int c = 0; c < Layout::kLaneInputs && i0 + c < l.in_features; ++c)
            s += static_cast<double>(w.value(raw, o, i0, c)) *
                 optimized::round_to(x[static_cast<std::size_t>(t) * l.in_features + i0 + c], Tag{});
        }
        const float v = static_cast<float>(s) * w.row_scale(o) + (l.bias.empty() ? 0.0f : l.bias[static_cast<std::size_t>(o)]);
        y[static_cast<std::size_t>(t) * l.out_features + o] = optimized::round_to(v, Tag{});
      }
  });
  return y;
}

// Two results that differ only by float32 summation order and where each rounds to the dtype:
// every element within 2u(dtype) of max|want| (conformance/TOLERANCES.md), and not all zero.
::testing::AssertionResult within_summation_order(const std::vector<float>& want, const std::vector<float>& got, Dtype dtype) {
  if (want.size() != got.size()) return ::testing::AssertionFailure() << "sizes " << want.size() << " and " << got.size();
  double max_y = 0;
  for (float v : want) max_y = std::max(max_y, std::abs(static_cast<double>(v)));
  if (max_y == 0) return ::testing::AssertionFailure() << "all-zero output";
  for (std::size_t e = 0; e < want.size(); ++e)
    if (!(std::abs(static_cast<double>(got[e]) - want[e]) <= 2 * unit_roundoff(dtype) * max_y))
      return ::testing::AssertionFailure() << "element " << e << ": " << got[e] << " vs " << want[e] << " (max|y| " << max_y << ")";
  return ::testing::AssertionSuccess();
}

class RowLayouts : public ::testing::TestWithParam<KindCase> {};

TEST_P(RowLayouts, EmulationMatchesThePlainSumAndTheOracle) {
  const KindCase k = GetParam();
  QORACLE_SEED_TRACE(1800);
  with_kind(k, [&](auto base) {
    using Base = decltype(base);
    for (const Dtype dtype : {Dtype::Float16, Dtype::BFloat16})
      for (int tokens : {1, 5, 8, 9, 16, 20}) {
        SCOPED_TRACE(std::string(dtype_name(dtype)) + " " + std::to_string(tokens) + " tokens");
        const Matrix x = round_to(dtype, bench::activations(tokens, kIn));
        const std::vector<float> xs = optimized::to_floats(x);
        // 1. No adapter: the emulation against the plain sum over the same values.
        HostLayer plain = optimized::host_base(base);
        plain.activations = optimized::activations_for(dtype);
        ASSERT_EQ(optimized::repack_rows(plain).kind, k.kind);
        const std::vector<float> ours = optimized::fused_forward_on_host(plain, xs, tokens);
        if (tokens <= optimized::kGemvMaxTokens) {
          const std::vector<float> want = dtype == Dtype::Float16 ? plain_rows_forward<optimized::HalfTag>(plain, xs, tokens)
                                                                  : plain_rows_forward<optimized::BFloat16Tag>(plain, xs, tokens);
          EXPECT_TRUE(within_summation_order(want, ours, dtype)) << "tensor-core GEMV emulation vs the plain sum";
        }
        // 2. With LoRA, and with OFT: the referee against the oracle.
        LoraLayer<Base> lora(base, Convention::Peft);
        SeededRandom rng(1801);
        lora.add_adapter("default", LoraConfig{.r = 4, .lora_alpha = 8}, round_to(Dtype::Float32, rng.normal(4, kIn, 0.05)),
                         round_to(Dtype::Float32, rng.normal(kOut, 4, 0.05)));
        OftLayer<Base> oft(base, Convention::Peft);
        OftConfig oft_config;
        oft_config.oft_block_size = 16;
        const OftBlocks blocks = resolve_oft_blocks(kIn, oft_config);
        oft.add_adapter("default", oft_config, round_to(Dtype::Float32, rng.normal(blocks.param_rows, blocks.n_elements, 0.05)));
        std::vector<HostLayer> layers = {plain};
        auto judge = [&](auto& layer) {
          const Matrix oracle = layer.forward(x);
          layer.set_compute_dtype(dtype);
          const Matrix peft_like = layer.forward(x);
          const HostLayer l = optimized::host_layer(layer);
          const Matrix y = optimized::from_floats(optimized::fused_forward_on_host(l, xs, tokens), tokens, kOut);
          const CheckRow row = judge_optimized_forward(CheckRow{}, dtype, oracle, peft_like, y);
          EXPECT_EQ(row.status, CheckStatus::Pass) << row.error << " " << (row.referee ? row.referee->message() : "");
          layers.push_back(l);
        };
        judge(lora);
        judge(oft);
        // 3. The kernels against the emulation.
        if (!optimized::probe_device().available) continue;
        for (std::size_t n = 0; n < layers.size(); ++n) {
          optimized::ResidentFusedLayer resident(layers[n]);
          EXPECT_TRUE(within_summation_order(optimized::fused_forward_on_host(layers[n], xs, tokens), resident.forward(xs, tokens), dtype))
              << "kernels vs emulation, " << (n == 0 ? "no adapter" : n == 1 ? "LoRA" : "OFT") << ", " << resident.path(tokens);
        }
      }
  });
}

INSTANTIATE_TEST_SUITE_P(
    EveryKind, RowLayouts,
    ::testing::Values(KindCase{RowsKind::Dense}, KindCase{RowsKind::Int8}, KindCase{RowsKind::Hqq8, 8},
                      KindCase{RowsKind::Hqq4, 4}, KindCase{RowsKind::Hqq4, 3}, KindCase{RowsKind::Hqq2, 2},
                      KindCase{RowsKind::Hqq1, 1}, KindCase{RowsKind::Aqlm1x16, 0, 1, 16},
                      KindCase{RowsKind::Aqlm2x16, 0, 2, 10}, KindCase{RowsKind::Aqlm1x8, 0, 1, 8},
                      KindCase{RowsKind::Aqlm2x8, 0, 2, 8}),
    [](const auto& info) { return case_name(info.param); });

// What the layouts do not cover keeps the view path: hqq's axis 0, AQLM with output groups, and
// float32 activations.
TEST(RowLayoutsCoverage, OtherConfigsTakeTheViewPath) {
  SeededRandom rng(1802);
  HostLayer dense = optimized::host_base(DenseLinear(round_to(Dtype::Float32, rng.normal(kOut, kIn, 0.05)), std::nullopt));
  EXPECT_EQ(optimized::repack_rows(dense).kind, RowsKind::None);  // float32 activations
  dense.activations = optimized::Activations::Float16;
  EXPECT_EQ(optimized::repack_rows(dense).kind, RowsKind::Dense);
  HqqQuantized q;
  q.config = hqq_base_quantize_config(4, 64, 0);
  q.out_features = kOut;
  q.in_features = kIn;
  const HqqGrouping g = hqq_grouping(q.config, kOut, kIn);
  q.codes = (rng.uniform(g.rows, g.cols, 0.0, 16.0).array().floor()).cast<int>().matrix();
  q.scale = round_to(Dtype::Float16, Vector(rng.uniform(g.groups, 1, 0.01, 0.03).col(0)));
  q.zero = round_to(Dtype::Float16, Vector(rng.uniform(g.groups, 1, 0.0, 15.0).col(0)));
  HostLayer axis0 = optimized::host_base(HqqLinear(std::move(q), std::nullopt, Dtype::Float64));
  axis0.activations = optimized::Activations::Float16;
  EXPECT_EQ(optimized::repack_rows(axis0).kind, RowsKind::None);
}

}  // namespace
}  // namespace qoracle

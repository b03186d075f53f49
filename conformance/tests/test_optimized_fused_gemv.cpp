// The fused layer (optimized/layer/resident_layer: the GEMV up to 16 tokens, the GEMM path beyond):
// every benchmarked layer kind at 256 features and 1, 8 and 128 tokens, plus odd shapes, every row
// layout of the tensor-core GEMV, and every rotation path. On the host, its emulation (the kernel's code,
// warps or tiles run serially) is judged against the float64 reference in PEFT's convention; on a
// GPU, the kernel is judged against the same oracle and must match the emulation up to float32
// summation order and FMA contraction.
#include <gtest/gtest.h>

#include "bench/layer_cases.hpp"
#include "conformance/optimized_check.hpp"
#include "conformance/tolerances.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
namespace {

using namespace qoracle::bench;
using optimized::HostLayer;

::testing::AssertionResult agrees(const Matrix& expected, const Matrix& actual) {
  return testing::close_float32_to_oracle(expected, actual);
}

struct Prepared {
  HostLayer layer;
  Matrix oracle;  // the reference's forward
};

Prepared prepare(const LayerCase& c, const Matrix& x) {
  return with_base(c.base, [&]<class Base>() {
    if (c.adapter == AdapterKind::Oft) {
      const OftLayer<Base> layer = oft_layer<Base>(c.shape);
      return Prepared{optimized::host_layer(layer, "default"), layer.forward(x)};
    }
    const LoraLayer<Base> layer = lora_layer<Base>(c.shape);
    return Prepared{optimized::host_layer(layer, "default"), layer.forward(x)};
  });
}

// Judges the host emulation, and the kernel where a GPU is present.
void expect_fused_agrees(const HostLayer& layer, const Matrix& x, const Matrix& oracle) {
  const auto tokens = static_cast<int>(x.rows());
  const std::vector<float> xs = optimized::to_floats(x);
  const Matrix host = optimized::from_floats(optimized::fused_forward_on_host(layer, xs, tokens), tokens, layer.out_features);
  EXPECT_TRUE(agrees(oracle, host)) << "host emulation";
  const auto device = optimized::probe_device();
  if (!device.available) return;
  const Matrix gpu = optimized::from_floats(optimized::fused_forward(layer, xs, tokens), tokens, layer.out_features);
  EXPECT_TRUE(agrees(oracle, gpu)) << "kernel on " << device.reason;
  EXPECT_TRUE(agrees(host, gpu)) << "kernel vs its emulation on " << device.reason;
}

class FusedGemv : public ::testing::TestWithParam<LayerCase> {};

TEST_P(FusedGemv, AgreesWithReference) {
  const LayerCase c = GetParam();
  QORACLE_SEED_TRACE(kSeed);
  const Matrix x = activations(c.tokens, c.shape.in);
  const Prepared p = prepare(c, x);
  expect_fused_agrees(p.layer, x, p.oracle);
}

std::vector<LayerCase> cases_at_256() {
  std::vector<LayerCase> out;
  for (const LayerCase& c : forward_cases())
    if (c.shape == LayerShape(256)) out.push_back(c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(BenchCases, FusedGemv, ::testing::ValuesIn(cases_at_256()),
                         [](const auto& info) { return info.param.test_name(); });

// Shapes the tiles do not divide, every rotation path, EETQ's three layouts.
TEST(FusedGemvShapes, OddShapesAndRotationPaths) {
  SeededRandom rng(1700);
  QORACLE_SEED_TRACE(1700);
  struct Rot {
    bool neumann;
    int terms;
    bool share;
  };
  for (const Rot rot : {Rot{false, 0, false}, Rot{true, 3, false}, Rot{true, 6, false}, Rot{false, 0, true}}) {
    const int in = 60, out = 37, b = 12;  // out not a multiple of the 8 outputs per thread block
    OftLayer<DenseLinear> layer(DenseLinear(round_to(Dtype::Float32, rng.normal(out, in, 0.1)),
                                            round_to(Dtype::Float32, Vector(rng.normal(out, 1, 0.1).col(0)))),
                                Convention::Peft);
    OftConfig config;
    config.oft_block_size = b;
    config.use_cayley_neumann = rot.neumann;
    config.num_cayley_neumann_terms = rot.terms;
    config.block_share = rot.share;
    const OftBlocks blocks = resolve_oft_blocks(in, config);
    layer.add_adapter("default", config, round_to(Dtype::Float32, rng.normal(blocks.param_rows, blocks.n_elements, 0.02)));
    // 3 tokens: the GEMV; 19: the GEMM with a partial second token tile; its one input step of
    // 72 (six blocks of 12) is longer than the 60 inputs.
    for (int tokens : {3, 19}) {
      const Matrix x = round_to(Dtype::Float32, rng.normal(tokens, in, 1.0));
      SCOPED_TRACE(std::string(rot.neumann ? "neumann" : "exact") + (rot.share ? " shared " : " ") + std::to_string(tokens) + " tokens");
      expect_fused_agrees(optimized::host_layer(layer, "default"), x, layer.forward(x));
    }
  }
}

// The GEMM over several input steps and output tiles, with LoRA (u gathered step by step) and
// OFT blocks larger than the 64-input minimum step; the GEMV on the same tokens agrees.
TEST(FusedGemvShapes, GemmAcrossTilesMatchesTheGemv) {
  QORACLE_SEED_TRACE(kSeed);
  for (const auto& [adapter, tokens] : {std::pair{AdapterKind::Lora, 9}, std::pair{AdapterKind::Oft, 33}}) {
    const Matrix x = activations(tokens, 256);
    const Prepared p = prepare(LayerCase{adapter, BaseFormat::Hqq, 256, tokens}, x);
    SCOPED_TRACE(std::to_string(tokens) + " tokens");
    expect_fused_agrees(p.layer, x, p.oracle);
    const std::vector<float> xs = optimized::to_floats(x);
    EXPECT_TRUE(agrees(optimized::from_floats(optimized::fused_gemv_on_host(p.layer, xs, tokens), tokens, 256),
                       optimized::from_floats(optimized::fused_gemm_on_host(p.layer, xs, tokens), tokens, 256)));
  }
  // Blocks of 128: each input step is one block.
  SeededRandom rng(1701);
  OftLayer<DenseLinear> layer(DenseLinear(round_to(Dtype::Float32, rng.normal(40, 256, 0.1)), std::nullopt), Convention::Peft);
  OftConfig config;
  config.oft_block_size = 128;
  const OftBlocks blocks = resolve_oft_blocks(256, config);
  layer.add_adapter("default", config, round_to(Dtype::Float32, rng.normal(blocks.param_rows, blocks.n_elements, 0.01)));
  const Matrix x = round_to(Dtype::Float32, rng.normal(20, 256, 1.0));
  expect_fused_agrees(optimized::host_layer(layer, "default"), x, layer.forward(x));
}

// COFT (the projection runs in the batched Cayley, from the stored parameters) and lora_bias (in
// the epilogue, inside the scaling), through the GEMV and the GEMM; without them the same layers
// fall outside the tolerance, so the checks can fail.
TEST(FusedGemvShapes, CoftAndLoraBias) {
  SeededRandom rng(1702);
  QORACLE_SEED_TRACE(1702);
  const int in = 96, out = 40;
  const DenseLinear base(round_to(Dtype::Float32, rng.normal(out, in, 0.1)), round_to(Dtype::Float32, Vector(rng.normal(out, 1, 0.1).col(0))));
  for (int tokens : {3, 20}) {
    const Matrix x = round_to(Dtype::Float32, rng.normal(tokens, in, 1.0));
    for (double eps : {1e-2, 10.0}) {  // the projection active, and not
      OftLayer<DenseLinear> layer(base, Convention::Peft);
      OftConfig config;
      config.oft_block_size = 16;
      config.coft = true;
      config.eps = eps;
      const OftBlocks blocks = resolve_oft_blocks(in, config);
      layer.add_adapter("default", config, round_to(Dtype::Float32, rng.normal(blocks.param_rows, blocks.n_elements, 0.05)));
      SCOPED_TRACE("coft eps " + std::to_string(eps) + ", " + std::to_string(tokens) + " tokens");
      HostLayer l = optimized::host_layer(layer, "default");
      expect_fused_agrees(l, x, layer.forward(x));
      l.oft[0].coft_radius = 0.0f;
      const Matrix unprojected = optimized::from_floats(optimized::fused_forward_on_host(l, optimized::to_floats(x), tokens), tokens, out);
      EXPECT_EQ(agrees(layer.forward(x), unprojected), eps > 1.0) << "without the projection";
    }
    LoraLayer<DenseLinear> lora(base, Convention::Peft);
    lora.add_adapter("default", LoraConfig{.r = 4, .lora_alpha = 8, .lora_bias = true}, round_to(Dtype::Float32, rng.normal(4, in, 0.1)),
                     round_to(Dtype::Float32, rng.normal(out, 4, 0.1)), round_to(Dtype::Float32, Vector(rng.normal(out, 1, 0.5).col(0))));
    SCOPED_TRACE("lora_bias, " + std::to_string(tokens) + " tokens");
    HostLayer l = optimized::host_layer(lora, "default");
    expect_fused_agrees(l, x, lora.forward(x));
    l.lora_bias.clear();
    EXPECT_FALSE(agrees(lora.forward(x), optimized::from_floats(optimized::fused_forward_on_host(l, optimized::to_floats(x), tokens), tokens, out)));
  }
}

// Several LoRA adapters (one rsLoRA, one with lora_bias, different ranks) as one stacked adapter,
// through the GEMV and the GEMM; leaving one out is outside the tolerance.
TEST(FusedGemvShapes, SeveralLoraAdaptersStacked) {
  SeededRandom rng(1703);
  QORACLE_SEED_TRACE(1703);
  const HqqLinear& base = base_layer<HqqLinear>(256);
  LoraLayer<HqqLinear> lora(base, Convention::Peft);
  lora.add_adapter("first", LoraConfig{.r = 4, .lora_alpha = 8, .use_rslora = true}, round_to(Dtype::Float32, rng.normal(4, 256, 0.1)),
                   round_to(Dtype::Float32, rng.normal(256, 4, 0.1)));
  lora.add_adapter("second", LoraConfig{.r = 6, .lora_alpha = 3, .lora_bias = true}, round_to(Dtype::Float32, rng.normal(6, 256, 0.1)),
                   round_to(Dtype::Float32, rng.normal(256, 6, 0.1)), round_to(Dtype::Float32, Vector(rng.normal(256, 1, 0.5).col(0))));
  lora.set_active_adapters({"first", "second"});
  for (int tokens : {5, 18}) {
    const Matrix x = activations(tokens, 256);
    SCOPED_TRACE(std::to_string(tokens) + " tokens");
    expect_fused_agrees(optimized::host_layer(lora, std::vector<std::string>{"first", "second"}), x, lora.forward(x));
    const HostLayer only_first = optimized::host_layer(lora, std::vector<std::string>{"first"});
    EXPECT_FALSE(agrees(lora.forward(x), optimized::from_floats(optimized::fused_forward_on_host(only_first, optimized::to_floats(x), tokens), tokens, 256)));
  }
}

// DoRA adapters scale the result so far (PEFT's recurrence, reports/peft-deviations.md D12): the
// stacked form folds each adapter's product of later factors into its B and lora_bias.
TEST(FusedGemvShapes, SeveralDoraAdaptersStacked) {
  SeededRandom rng(1704);
  QORACLE_SEED_TRACE(1704);
  const HqqLinear& base = base_layer<HqqLinear>(256);
  LoraLayer<HqqLinear> lora(base, Convention::Peft);
  const std::vector<std::string> names = {"first", "plain", "second"};
  for (const std::string& name : names) {
    const bool dora = name != "plain";
    const Vector m = round_to(Dtype::Float32, Vector(rng.uniform(256, 1, 0.5, 1.5).col(0)));
    const std::optional<Vector> b_bias =
        dora ? std::nullopt : std::optional<Vector>(round_to(Dtype::Float32, Vector(rng.normal(256, 1, 0.5).col(0))));
    lora.add_adapter(name, LoraConfig{.r = 4, .lora_alpha = 8, .lora_bias = !dora, .use_dora = dora},
                     round_to(Dtype::Float32, rng.normal(4, 256, 0.1)), round_to(Dtype::Float32, rng.normal(256, 4, 0.1)),
                     b_bias, dora ? std::optional<Vector>(m) : std::nullopt);
  }
  lora.set_active_adapters(names);
  for (int tokens : {5, 18}) {
    const Matrix x = activations(tokens, 256);
    SCOPED_TRACE(std::to_string(tokens) + " tokens");
    expect_fused_agrees(optimized::host_layer(lora, names), x, lora.forward(x));
  }
}

// float16 and bfloat16 activations on every benchmarked layer kind at 256 features, through the
// GEMV and the GEMM: the fp64 referee (TOLERANCES.md), with the reference's emulation of PEFT in
// that dtype standing in for PEFT's own result.
TEST(FusedGemvShapes, HalfPrecisionActivations) {
  QORACLE_SEED_TRACE(kSeed);
  for (const Dtype dtype : {Dtype::Float16, Dtype::BFloat16})
    for (const LayerCase& c : cases_at_256()) {
      if (c.tokens == 128) continue;  // 8 (the GEMV) and 20 (the GEMM) below
      for (int tokens : {8, 20}) {
        const Matrix x = round_to(dtype, activations(tokens, 256));
        SCOPED_TRACE(c.name() + " " + dtype_name(dtype) + " " + std::to_string(tokens) + " tokens");
        with_base(c.base, [&]<class Base>() {
          auto check = [&](auto layer) {
            const Matrix oracle = layer.forward(x);
            layer.set_compute_dtype(dtype);
            const Matrix peft_like = layer.forward(x);
            const HostLayer l = optimized::host_layer(layer);
            ASSERT_EQ(l.activations, optimized::activations_for(dtype));
            const Matrix ours = optimized::from_floats(optimized::fused_forward_on_host(l, optimized::to_floats(x), tokens), tokens, 256);
            const CheckRow row = judge_optimized_forward(CheckRow{}, dtype, oracle, peft_like, ours);
            EXPECT_EQ(row.status, CheckStatus::Pass) << row.error << " " << row.referee->message();
          };
          if (c.adapter == AdapterKind::Oft)
            check(oft_layer<Base>(256));
          else
            check(lora_layer<Base>(256));
        });
      }
    }
}

TEST(FusedGemvShapes, EetqEveryLayout) {
  const EetqLinear& base = base_layer<EetqLinear>(256);
  LoraLayer<EetqLinear> layer = lora_layer<EetqLinear>(256);
  const Matrix x = activations(20, 256);  // the GEMM
  for (EetqLayout layout : {EetqLayout::Interleaved, EetqLayout::Volta, EetqLayout::Plain}) {
    SCOPED_TRACE(eetq_layout_name(layout));
    HostLayer l = optimized::host_layer(layer, "default");
    l.weights = std::get<optimized::EetqWeights>(optimized::host_base(base, layout).weights);
    expect_fused_agrees(l, x, layer.forward(x));
  }
}

// The rotation direction matters: the math convention's Neumann series fails against PEFT's.
TEST(FusedGemvShapes, MathConventionRotationIsOutsideTheTolerance) {
  const OftLayer<DenseLinear> peft = oft_layer<DenseLinear>(256, Convention::Peft);
  const OftLayer<DenseLinear> math = oft_layer<DenseLinear>(256, Convention::Math);
  const Matrix x = activations(8, 256);
  const std::vector<float> y = optimized::fused_gemv_on_host(optimized::host_layer(peft, "default"),
                                                             optimized::to_floats(x), 8);
  EXPECT_TRUE(agrees(peft.forward(x), optimized::from_floats(y, 8, 256)));
  EXPECT_FALSE(agrees(math.forward(x), optimized::from_floats(y, 8, 256)));
}

TEST(FusedGemvBadInput, NamesTheField) {
  const HostLayer l = optimized::host_layer(lora_layer<HqqLinear>(256), "default");
  auto message = [&](HostLayer layer, std::size_t x_size, int tokens) {
    return testing::error_of([&] { optimized::fused_gemv_on_host(layer, std::vector<float>(x_size), tokens); });
  };
  EXPECT_NE(message(l, 255, 1).find("x: expected 256 values"), std::string::npos);
  EXPECT_NE(message(l, 256, 0).find("tokens: expected >= 1"), std::string::npos);
  HostLayer short_b = l;
  short_b.lora_b.pop_back();
  EXPECT_NE(message(short_b, 256, 1).find("lora_b: expected"), std::string::npos);
  HostLayer bad_bits = l;
  std::get<optimized::HqqWeights>(bad_bits.weights).nbits = 5;
  EXPECT_NE(message(bad_bits, 256, 1).find("nbits: expected 1, 2, 3, 4 or 8"), std::string::npos);
  HostLayer short_scale = l;
  std::get<optimized::HqqWeights>(short_scale.weights).scale.pop_back();
  EXPECT_NE(message(short_scale, 256, 1).find("scale: expected"), std::string::npos);
  // An OFT adapter's fields, named with the adapter's place in the layer.
  const HostLayer oft = optimized::host_layer(oft_layer<HqqLinear>(256), "default");
  HostLayer no_terms = oft;
  no_terms.oft[0].terms = 0;
  EXPECT_NE(message(no_terms, 256, 1).find("oft[0]: terms: expected >= 1, got 0"), std::string::npos) << message(no_terms, 256, 1);
  HostLayer short_params = oft;
  short_params.oft[0].params.pop_back();
  EXPECT_NE(message(short_params, 256, 1).find("oft[0]: params: expected"), std::string::npos);
  HostLayer odd_block = oft;
  odd_block.oft[0].block_size = 7;
  EXPECT_NE(message(odd_block, 256, 1).find("oft[0].block_size: expected 2..128 dividing in_features 256, got 7"),
            std::string::npos);
}

}  // namespace
}  // namespace qoracle

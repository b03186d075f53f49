// The fused GEMV (optimized/fused_gemv): every benchmarked layer kind at 1-8 tokens, plus odd
// shapes and every rotation path. On the host, its emulation (the kernel's code, warps emulated)
// is judged against the float64 reference in PEFT's convention; on a GPU, the kernel is judged
// against the same oracle and must match the emulation up to float32 summation order.
#include <gtest/gtest.h>

#include "bench/layer_cases.hpp"
#include "conformance/tolerances.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_layer.hpp"
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
      const OftLayer<Base> layer = oft_layer<Base>(c.features);
      return Prepared{optimized::host_layer(layer, "default"), layer.forward(x)};
    }
    const LoraLayer<Base> layer = lora_layer<Base>(c.features);
    return Prepared{optimized::host_layer(layer, "default"), layer.forward(x)};
  });
}

// Judges the host emulation, and the kernel where a GPU is present.
void expect_fused_agrees(const HostLayer& layer, const Matrix& x, const Matrix& oracle) {
  const auto tokens = static_cast<int>(x.rows());
  const std::vector<float> xs = optimized::to_floats(x);
  const Matrix host = optimized::from_floats(optimized::fused_gemv_on_host(layer, xs, tokens), tokens, layer.out_features);
  EXPECT_TRUE(agrees(oracle, host)) << "host emulation";
  const auto device = optimized::probe_device();
  if (!device.available) return;
  const Matrix gpu = optimized::from_floats(optimized::fused_gemv(layer, xs, tokens), tokens, layer.out_features);
  EXPECT_TRUE(agrees(oracle, gpu)) << "kernel on " << device.reason;
  EXPECT_TRUE(agrees(host, gpu)) << "kernel vs its emulation on " << device.reason;
}

class FusedGemv : public ::testing::TestWithParam<LayerCase> {};

TEST_P(FusedGemv, AgreesWithReference) {
  const LayerCase c = GetParam();
  QORACLE_SEED_TRACE(kSeed);
  const Matrix x = activations(c.tokens, c.features);
  const Prepared p = prepare(c, x);
  expect_fused_agrees(p.layer, x, p.oracle);
}

std::vector<LayerCase> gemv_cases() {
  std::vector<LayerCase> out;
  for (const LayerCase& c : forward_cases())
    if (c.features == 256 && c.tokens <= 8) out.push_back(c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(BenchCases, FusedGemv, ::testing::ValuesIn(gemv_cases()),
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
    const Matrix x = round_to(Dtype::Float32, rng.normal(3, in, 1.0));
    SCOPED_TRACE(std::string(rot.neumann ? "neumann" : "exact") + (rot.share ? " shared" : ""));
    expect_fused_agrees(optimized::host_layer(layer, "default"), x, layer.forward(x));
  }
}

TEST(FusedGemvShapes, EetqEveryLayout) {
  const EetqLinear& base = base_layer<EetqLinear>(256);
  LoraLayer<EetqLinear> layer = lora_layer<EetqLinear>(256);
  const Matrix x = activations(4, 256);
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
    try {
      optimized::fused_gemv_on_host(layer, std::vector<float>(x_size), tokens);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
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
}

}  // namespace
}  // namespace qoracle

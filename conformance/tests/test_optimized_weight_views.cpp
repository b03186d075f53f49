// The optimized kernels' weight readers (optimized/weight_views.hpp) on the host: every element
// each format's view decodes from the stored bytes (as optimized/fused_layer hands them over), against the float64 reference's dequantized
// weight (float32 against the oracle: only the float32 dequantization arithmetic differs).
#include <gtest/gtest.h>

#include "optimized/layer/fused_layer.hpp"
#include "optimized/layer/fused_views.hpp"
#include "reference/aqlm_linear.hpp"
#include "reference/eetq_linear.hpp"
#include "reference/hqq_linear.hpp"
#include "reference/seeded_random.hpp"
#include "test_support.hpp"

namespace qoracle {
inline void PrintTo(EetqLayout l, std::ostream* os) { *os << eetq_layout_name(l); }  // for gtest's names
namespace {

template <class View>
Matrix decode_all(const View& view, int out, int in) {
  Matrix w(out, in);
  for (int o = 0; o < out; ++o)
    for (int i = 0; i < in; ++i) w(o, i) = view(o, i);
  return w;
}

// The base's stored tensors as the kernels get them (host_base), read through the format's view
// (make_view) element by element, against the reference's exact dequantized weight.
template <class Weights>
::testing::AssertionResult view_decodes(const Matrix& reference_weight, const optimized::HostLayer& host) {
  const auto view = optimized::make_view(std::get<Weights>(host.weights), host, [](const auto& v) { return v.data(); });
  return testing::close_float32_to_oracle(reference_weight, decode_all(view, host.out_features, host.in_features));
}

// ---- HQQ: every packing and both axes ----

struct HqqCase {
  int nbits, axis;
  friend void PrintTo(const HqqCase& c, std::ostream* os) { *os << c.nbits << "-bit axis " << c.axis; }
};
class HqqViewTest : public ::testing::TestWithParam<HqqCase> {};

TEST_P(HqqViewTest, DecodesWhatTheReferenceDequantizes) {
  const HqqCase c = GetParam();
  const std::uint64_t seed = 1400 + static_cast<std::uint64_t>(c.nbits * 2 + c.axis);
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const HqqLinear layer = HqqLinear::quantize(rng.normal(96, 128, 0.02), std::nullopt,
                                              hqq_base_quantize_config(c.nbits, 64, c.axis), Dtype::Float64,
                                              HqqArithmetic::Float64);
  EXPECT_TRUE(view_decodes<optimized::HqqWeights>(layer.weight(), optimized::host_base(layer)));
}

INSTANTIATE_TEST_SUITE_P(Packings, HqqViewTest,
                         ::testing::Values(HqqCase{1, 1}, HqqCase{2, 1}, HqqCase{3, 1}, HqqCase{4, 1}, HqqCase{8, 1},
                                           HqqCase{1, 0}, HqqCase{2, 0}, HqqCase{3, 0}, HqqCase{4, 0}, HqqCase{8, 0}),
                         [](const auto& info) {
                           return std::to_string(info.param.nbits) + "bit_axis" + std::to_string(info.param.axis);
                         });

// ---- AQLM: 1x16, 2x8 and an out-group of 2, codes stored signed ----

struct AqlmCase {
  int num_codebooks, nbits, out_group, in_group;
  friend void PrintTo(const AqlmCase& c, std::ostream* os) {
    *os << c.num_codebooks << "x" << c.nbits << " og" << c.out_group << " ig" << c.in_group;
  }
};
class AqlmViewTest : public ::testing::TestWithParam<AqlmCase> {};

TEST_P(AqlmViewTest, DecodesWhatTheReferenceDequantizes) {
  const AqlmCase c = GetParam();
  const std::uint64_t seed = 1500 + static_cast<std::uint64_t>(c.num_codebooks * 100 + c.nbits * 4 + c.out_group);
  QORACLE_SEED_TRACE(seed);
  SeededRandom rng(seed);
  const AqlmConfig config{.in_group_size = c.in_group, .out_group_size = c.out_group, .num_codebooks = c.num_codebooks,
                          .nbits_per_codebook = c.nbits};
  const int out = 32, in = 64;
  const AqlmGeometry g = aqlm_geometry(config, out, in);
  std::vector<int> codes(static_cast<std::size_t>(g.out_groups) * g.in_groups * c.num_codebooks);
  for (int& u : codes) u = static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(g.entries));
  std::vector<double> codebooks(static_cast<std::size_t>(c.num_codebooks) * g.entries * c.out_group * c.in_group);
  for (double& e : codebooks) e = round_to(Dtype::Float16, rng.normal());
  const Vector scales = round_to(Dtype::Float16, Vector(rng.uniform(g.out_groups, 1, 0.01, 0.03).col(0)));
  const AqlmLinear layer(config, out, in, codes, codebooks, scales, std::nullopt, Dtype::Float16, AqlmKernel::Exact);
  EXPECT_TRUE(view_decodes<optimized::AqlmWeights>(layer.weight(), optimized::host_base(layer)));
}

INSTANTIATE_TEST_SUITE_P(Configs, AqlmViewTest,
                         ::testing::Values(AqlmCase{1, 16, 1, 8}, AqlmCase{2, 8, 1, 8}, AqlmCase{1, 8, 2, 4},
                                           AqlmCase{4, 8, 1, 8}),
                         [](const auto& info) {
                           const AqlmCase& c = info.param;
                           return std::to_string(c.num_codebooks) + "x" + std::to_string(c.nbits) + "_og" +
                                  std::to_string(c.out_group);
                         });

// ---- EETQ: every checkpoint layout ----

class EetqViewTest : public ::testing::TestWithParam<EetqLayout> {};

TEST_P(EetqViewTest, DecodesWhatTheReferenceDequantizes) {
  const EetqLayout layout = GetParam();
  QORACLE_SEED_TRACE(1600);
  SeededRandom rng(1600);
  const int out = 128, in = 192;
  const EetqLinear layer(eetq_quantize(rng.normal(out, in, 0.02), Dtype::Float16), std::nullopt, EetqKernel::Exact);
  EXPECT_TRUE(view_decodes<optimized::EetqWeights>(layer.weight(), optimized::host_base(layer, layout)));
}

INSTANTIATE_TEST_SUITE_P(Layouts, EetqViewTest,
                         ::testing::Values(EetqLayout::Interleaved, EetqLayout::Volta, EetqLayout::Plain),
                         [](const auto& info) {
                           return std::string(info.param == EetqLayout::Interleaved ? "sm75_sm89"
                                              : info.param == EetqLayout::Volta     ? "sm70"
                                                                                    : "plain");
                         });

}  // namespace
}  // namespace qoracle

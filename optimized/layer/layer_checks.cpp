// The checks every path makes on a layer, and the OFT rotations computed on the host.
#include <algorithm>
#include <numeric>
#include <string>

#include "optimized/forward/prepass.hpp"
#include "optimized/layer/layer_checks.hpp"
#include "optimized/layer/weight_views.hpp"
#include "optimized/rotation/batched_cayley.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

void expect_size(std::size_t got, std::size_t want, const std::string& field) {
  if (got != want)
    throw Error(field + ": expected " + std::to_string(want) + " values, got " + std::to_string(got));
}

}  // namespace

void check_fused_layer(const HostLayer& l, std::size_t x_size, int tokens) {
  if (l.out_features < 1 || l.in_features < 1)
    throw Error("shape: expected positive out_features and in_features, got " + std::to_string(l.out_features) +
                " and " + std::to_string(l.in_features));
  if (tokens < 1) throw Error("tokens: expected >= 1, got " + std::to_string(tokens));
  const auto out = static_cast<std::size_t>(l.out_features), in = static_cast<std::size_t>(l.in_features);
  expect_size(x_size, static_cast<std::size_t>(tokens) * in, "x");
  if (!l.bias.empty()) expect_size(l.bias.size(), out, "bias");
  if (l.oft.size() > kMaxRotations)
    throw Error("oft: expected at most " + std::to_string(kMaxRotations) + " OFT adapters at once, got " + std::to_string(l.oft.size()));
  for (std::size_t k = 0; k < l.oft.size(); ++k) {
    const HostRotation& r = l.oft[k];
    const std::string adapter = "oft[" + std::to_string(k) + "]", where = adapter + ".";
    const int b = r.block_size;
    if (b < 2 || b > 128 || l.in_features % b != 0)
      throw Error(where + "block_size: expected 2..128 dividing in_features " + std::to_string(l.in_features) + ", got " +
                  std::to_string(b));
    const int rows = r.block_share ? 1 : l.in_features / b;
    if (r.rows != rows) throw Error(where + "rows: expected " + std::to_string(rows) + ", got " + std::to_string(r.rows));
    try {  // terms, COFT's radius and the parameters' size, as the batched Cayley checks them
      check_cayley_batch(cayley_batch(r), r.params);
    } catch (const Error& e) {
      throw e.within(adapter);
    }
  }
  if (const int unit = rotation_unit(l); unit > kMaxRotationUnit)
    throw Error("oft: the block sizes' least common multiple is " + std::to_string(unit) +
                "; the prepass rotates chunks holding whole blocks of every adapter, expected at most " +
                std::to_string(kMaxRotationUnit));
  if (!l.dot_scale.empty()) expect_size(l.dot_scale.size(), out, "dot_scale");
  if (l.rank > 0) {
    expect_size(l.lora_a.size(), static_cast<std::size_t>(l.rank) * in, "lora_a");
    expect_size(l.lora_b.size(), out * static_cast<std::size_t>(l.rank), "lora_b");
    if (!l.lora_bias.empty()) expect_size(l.lora_bias.size(), out, "lora_bias");
  }
  std::visit(
      [&](const auto& w) {
        using W = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<W, DenseWeights>) {
          expect_size(w.w.size(), out * in, "weight");
        } else if constexpr (std::is_same_v<W, HqqWeights>) {
          const std::size_t words = static_cast<std::size_t>(w.cols) * w.packed_rows;
          const int k = w.nbits == 3 ? 10 : 8 / w.nbits;
          if (w.nbits < 1 || w.nbits > 8 || w.nbits == 5 || w.nbits == 6 || w.nbits == 7)
            throw Error("nbits: expected 1, 2, 3, 4 or 8, got " + std::to_string(w.nbits));
          if (w.cols < 1 || (out * in) % static_cast<std::size_t>(w.cols) != 0 ||
              static_cast<std::size_t>(w.packed_rows) * k < out * in / w.cols)
            throw Error("W_q: a " + std::to_string(w.packed_rows) + " x " + std::to_string(w.cols) +
                        " packing cannot hold " + std::to_string(out * in) + " codes");
          expect_size(w.nbits == 3 ? w.w_q32.size() : w.w_q8.size(), words, "W_q");
          const std::size_t groups = w.axis == 1 ? out * in / w.cols : static_cast<std::size_t>(w.cols);
          expect_size(w.scale.size(), groups, "scale");
          expect_size(w.zero.size(), groups, "zero");
        } else if constexpr (std::is_same_v<W, AqlmWeights>) {
          if (w.nbits < 1 || w.nbits > 16) throw Error("nbits_per_codebook: expected 1..16, got " + std::to_string(w.nbits));
          if (w.out_group < 1 || w.in_group < 1 || out % w.out_group || in % w.in_group ||
              static_cast<std::size_t>(w.in_groups) != in / w.in_group)
            throw Error("group sizes: expected out_group and in_group dividing the features");
          const std::size_t codes = out / w.out_group * w.in_groups * static_cast<std::size_t>(w.num_codebooks);
          expect_size(w.nbits > 8 ? w.codes16.size() : w.codes8.size(), codes, "codes");
          expect_size(w.codebooks.size(),
                      static_cast<std::size_t>(w.num_codebooks) * (std::size_t{1} << w.nbits) * w.out_group * w.in_group,
                      "codebooks");
          expect_size(w.scales.size(), out / w.out_group, "scales");
        } else {
          expect_size(w.bytes.size(), out * in, "weight");
          expect_size(w.scales.size(), out, "weight_scales");
          if (w.layout < 0 || w.layout > 2) throw Error("layout: expected 0 (sm75-sm89), 1 (sm70) or 2 (plain)");
          if (w.layout != EetqView::Plain && (l.in_features % 64 || l.out_features % 64))
            throw Error("shape: EETQ's interleaved and sm70 layouts need features that are multiples of 64");
        }
      },
      l.weights);
}

CayleyBatch cayley_batch(const HostRotation& r) {
  return {r.rows, r.block_size, r.neumann, r.terms, r.coft_radius, r.math_series, r.all_twos};
}

int rotation_unit(const HostLayer& l) {
  int unit = 1;
  for (const HostRotation& r : l.oft) unit = std::lcm(unit, std::max(r.block_size, 1));
  return unit;
}

std::vector<float> rotation_blocks_on_host(const HostRotation& rot) {
  const int b = rot.block_size;
  const std::size_t n_el = static_cast<std::size_t>(b) * (b - 1) / 2, bb = static_cast<std::size_t>(b) * b;
  std::vector<float> r(static_cast<std::size_t>(rot.rows) * bb), ws(static_cast<std::size_t>(rotation_scratch_floats(b, rot.neumann)));
  for (int j = 0; j < rot.rows; ++j) {
    float partial = 0.0f;
    rotation_block(rot.params.data() + j * n_el, b, rot.neumann, neumann_series(rot.terms, rot.math_series, rot.all_twos),
                   rot.coft_radius, ws.data(), &partial, r.data() + j * bb, 0, 1, NoSync{});
  }
  return r;
}

std::vector<std::vector<float>> rotations_on_host(const HostLayer& l) {
  std::vector<std::vector<float>> out;
  for (const HostRotation& r : l.oft) out.push_back(rotation_blocks_on_host(r));
  return out;
}

std::vector<const float*> data_of(const std::vector<std::vector<float>>& rotations) {
  std::vector<const float*> out;
  for (const std::vector<float>& r : rotations) out.push_back(r.data());
  return out;
}

}  // namespace qoracle::optimized

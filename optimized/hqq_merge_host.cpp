// hqq_merge's host emulation, and the checks and grouping both paths share.
#include <limits>
#include <string>

#include "optimized/fused_gemv_checks.hpp"
#include "optimized/fused_views.hpp"
#include "optimized/hqq_merge.hpp"
#include "optimized/hqq_merge_checks.hpp"
#include "optimized/hqq_requantize.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

const HqqWeights& check_hqq_merge(const HostLayer& l) {
  check_fused_layer(l, static_cast<std::size_t>(l.in_features), 1);
  const auto* w = std::get_if<HqqWeights>(&l.weights);
  if (!w) throw Error("base: hqq_merge needs an HQQ layer");
  if (l.oft.empty() == (l.rank == 0))
    throw Error("adapter: hqq_merge needs LoRA or OFT adapters, not both and not neither (oft: " +
                std::to_string(l.oft.size()) + " adapters, lora rank: " + std::to_string(l.rank) + ")");
  if (!l.lora_bias.empty())
    throw Error("lora_bias: PEFT's HqqLoraLinear refuses lora_bias (ValueError), so there is no merge to reproduce");
  return *w;
}

HqqMergeGrouping hqq_merge_grouping(const HostLayer& l, const HqqWeights& w) {
  HqqMergeGrouping g;
  g.cols = w.cols;
  g.rows = static_cast<int>(static_cast<long long>(l.out_features) * l.in_features / w.cols);
  g.groups = w.axis == 1 ? g.rows : g.cols;
  g.axis = w.axis;
  g.nbits = w.nbits;
  g.packed_rows = w.packed_rows;
  g.params.max_code = (1 << w.nbits) - 1;
  g.params.round_zero = w.round_zero;
  g.params.shrink_scale = static_cast<float>(1.0 / w.beta);
  g.params.lp_minus_one = static_cast<float>(w.lp_norm - 1.0);
  return g;
}

namespace {

// The merged weight, row-major (out, in) = the grouped matrix's storage (as the GPU's kernels).
std::vector<float> merged_weight_on_host(const HostLayer& l, const HqqView& view) {
  std::vector<float> merged(static_cast<std::size_t>(l.out_features) * l.in_features), previous;
  auto fill = [&](auto&& element) {
    for (int o = 0; o < l.out_features; ++o)
      for (int i = 0; i < l.in_features; ++i) merged[static_cast<std::size_t>(o) * l.in_features + i] = element(o, i);
  };
  if (l.rank > 0) {
    const LoraMergeTerms terms = lora_merge_terms(l, l.lora_a.data(), l.lora_b.data(), l.dot_scale.data());
    fill([&](int o, int i) { return merged_lora_element(view, o, i, terms); });
    return merged;
  }
  // W R_n^T ... R_1^T: the last adapter rotates the stored weight, each earlier one the result.
  for (std::size_t k = l.oft.size(); k-- > 0;) {
    const std::vector<float> blocks = rotation_blocks_on_host(l.oft[k]);
    const RotationBlocks rot = rotation_blocks(blocks.data(), l.oft[k].block_size, l.oft[k].block_share);
    merged.swap(previous);
    merged.resize(previous.size());
    if (k + 1 == l.oft.size())
      fill([&](int o, int i) { return merged_oft_element(view, o, i, rot); });
    else
      fill([&](int o, int i) { return merged_oft_element(DenseView{previous.data(), l.in_features}, o, i, rot); });
  }
  return merged;
}

}  // namespace


HqqMergeResult hqq_merge_on_host(const HostLayer& l) {
  const HqqWeights& hw = check_hqq_merge(l);
  const HqqMergeGrouping g = hqq_merge_grouping(l, hw);
  const std::vector<float> merged = merged_weight_on_host(l, make_view(hw, l, [](const auto& v) { return v.data(); }));
  HqqMergeResult out{HqqWeights{HqqLayout(hw)}};  // the layout and config stay; the tensors are new
  std::vector<float>& zero = out.weights.zero;
  std::vector<float> inv(g.groups);
  zero.resize(g.groups);
  for (int k = 0; k < g.groups; ++k) hqq_group_start(g.group(merged.data(), k), g.params, inv[k], zero[k]);
  if (hw.optimize) {
    float best = std::numeric_limits<float>::infinity();
    for (int it = 0; it < hw.iters; ++it) {
      ++out.steps;
      double err = 0.0;
      for (int k = 0; k < g.groups; ++k) err += hqq_group_step(g.group(merged.data(), k), g.params, inv[k], zero[k]);
      const float mean = static_cast<float>(err) / static_cast<float>(merged.size());
      if (mean < best)
        best = mean;
      else
        break;
    }
  }
  for (int prow = 0; prow < g.packed_rows; ++prow)
    for (int c = 0; c < g.cols; ++c) {
      const std::uint32_t word = g.packed_word(merged.data(), inv.data(), zero.data(), prow, c);
      if (hw.nbits == 3)
        out.weights.w_q32.push_back(static_cast<std::int32_t>(word));
      else
        out.weights.w_q8.push_back(static_cast<std::uint8_t>(word));
    }
  out.weights.scale.resize(g.groups);
  for (int k = 0; k < g.groups; ++k) out.weights.scale[k] = 1.0f / inv[k];
  return out;
}

HostLayer hqq_merged_layer(const HostLayer& layer, HqqMergeResult merged) {
  check_hqq_merge(layer);
  HostLayer out;
  out.out_features = layer.out_features;
  out.in_features = layer.in_features;
  out.activations = layer.activations;
  out.bias = layer.bias;
  out.weights = std::move(merged.weights);
  return out;
}

}  // namespace qoracle::optimized

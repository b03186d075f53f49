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
  if (l.oft.size() + (l.rank > 0 ? 1 : 0) != 1)
    throw Error("adapter: hqq_merge needs exactly one adapter, LoRA or OFT");
  if (!l.dot_scale.empty()) throw Error("dot_scale: hqq_merge has no DoRA merge");
  if (!l.lora_bias.empty())
    throw Error("lora_bias: PEFT's HqqLoraLinear refuses lora_bias (ValueError), so there is no merge to reproduce");
  return *w;
}

HqqMergeGrouping hqq_merge_grouping(const HostLayer& l, const HqqWeights& w) {
  HqqMergeGrouping g;
  g.cols = w.cols;
  g.rows = static_cast<int>(static_cast<long long>(l.out_features) * l.in_features / w.cols);
  g.groups = w.axis == 1 ? g.rows : g.cols;
  g.params.max_code = (1 << w.nbits) - 1;
  g.params.round_zero = w.round_zero;
  g.params.shrink_scale = static_cast<float>(1.0 / w.beta);
  g.params.lp_minus_one = static_cast<float>(w.lp_norm - 1.0);
  return g;
}

HqqMergeResult hqq_merge_on_host(const HostLayer& l) {
  const HqqWeights& hw = check_hqq_merge(l);
  const HqqMergeGrouping g = hqq_merge_grouping(l, hw);
  const auto view = make_view(hw, l, [](const auto& v) { return v.data(); });
  const std::vector<float> rotation = l.oft.empty() ? std::vector<float>{} : rotation_blocks_on_host(l, l.oft[0]);
  // The merged weight, row-major (out, in) = the grouped matrix's storage.
  std::vector<float> merged(static_cast<std::size_t>(l.out_features) * l.in_features);
  for (int o = 0; o < l.out_features; ++o)
    for (int i = 0; i < l.in_features; ++i)
      merged[static_cast<std::size_t>(o) * l.in_features + i] =
          l.rank > 0 ? merged_lora_element(view, o, i, l.lora_a.data(), l.lora_b.data(), l.rank, l.in_features, l.scaling)
                     : merged_oft_element(view, o, i, rotation.data(), l.oft[0].block_size);
  HqqMergeResult out;
  std::vector<float> inv(g.groups);
  out.zero.resize(g.groups);
  for (int k = 0; k < g.groups; ++k) hqq_group_start(g.group(merged.data(), k, hw.axis), g.params, inv[k], out.zero[k]);
  if (hw.optimize) {
    float best = std::numeric_limits<float>::infinity();
    for (int it = 0; it < hw.iters; ++it) {
      ++out.steps;
      double err = 0.0;
      for (int k = 0; k < g.groups; ++k) err += hqq_group_step(g.group(merged.data(), k, hw.axis), g.params, inv[k], out.zero[k]);
      const float mean = static_cast<float>(err) / static_cast<float>(merged.size());
      if (mean < best)
        best = mean;
      else
        break;
    }
  }
  out.codes.resize(merged.size());
  for (std::size_t f = 0; f < merged.size(); ++f) {
    const int k = hw.axis == 1 ? static_cast<int>(f / g.cols) : static_cast<int>(f % g.cols);
    out.codes[f] = static_cast<int>(hqq_code(merged[f], inv[k], out.zero[k], g.params.max_code));
  }
  out.scale.resize(g.groups);
  for (int k = 0; k < g.groups; ++k) out.scale[k] = 1.0f / inv[k];
  return out;
}

}  // namespace qoracle::optimized

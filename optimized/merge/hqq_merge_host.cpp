// hqq_merge's host emulation, and the checks and grouping both paths share.
#include <limits>
#include <string>

#include "optimized/merge/hqq_merge.hpp"
#include "optimized/merge/hqq_merge_checks.hpp"
#include "optimized/merge/hqq_requantize.hpp"
#include "optimized/merge/merged_weight.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

void check_hqq_lora_bias(const HostLayer& l) {
  if (!l.lora_bias.empty())
    throw Error("lora_bias: PEFT's HqqLoraLinear refuses lora_bias (ValueError), so there is no merge to reproduce");
}

const HqqWeights& check_hqq_merge(const HostLayer& l) {
  const HqqWeights& w = check_merge_base<HqqWeights>(l, "hqq_merge", "an HQQ layer");
  check_hqq_lora_bias(l);
  return w;
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

HqqMergeResult hqq_merge_on_host(const HostLayer& l) {
  const HqqWeights& hw = check_hqq_merge(l);
  const HqqMergeGrouping g = hqq_merge_grouping(l, hw);
  const std::vector<float> merged = merged_weight_on_host(l);
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
  check_hqq_merge(layer);  // no lora_bias: the bias stays as it is
  return layer_after_merge(layer, std::move(merged.weights));
}

}  // namespace qoracle::optimized

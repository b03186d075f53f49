#pragma once
// Shared by hqq_merge's GPU path and its host emulation.
#include <cstdint>

#include "optimized/layer/host_layer.hpp"
#include "optimized/merge/hqq_requantize.hpp"

namespace qoracle::optimized {

// The grouped view of the merged weight (row-major (out, in) storage reshaped to (rows, cols)).
struct HqqMergeGrouping {
  int rows = 0, cols = 0, groups = 0, axis = 1, nbits = 4, packed_rows = 0;
  HqqQuantizerParams params;
  // Group k: a row of the grouped matrix (axis 1) or a column (axis 0).
  QORACLE_HD HqqGroupRef group(const float* merged, int k) const {
    return axis == 1 ? HqqGroupRef{merged + static_cast<long long>(k) * cols, cols, 1}
                     : HqqGroupRef{merged + k, rows, cols};
  }
  // Word (prow, c) of the requantized codes as hqq stores them, the layout HqqView reads: grouped
  // row slot * packed_rows + prow in bit field `slot` from the top; 3-bit's padding rows stay 0.
  QORACLE_HD std::uint32_t packed_word(const float* merged, const float* inv, const float* zero, int prow,
                                       int c) const {
    const int container = nbits == 3 ? 30 : 8;
    std::uint32_t word = 0;
    for (int slot = 0; slot < container / nbits; ++slot) {
      const int r = slot * packed_rows + prow;
      if (r >= rows) break;
      const int k = axis == 1 ? r : c;
      const float q = hqq_code(merged[static_cast<long long>(r) * cols + c], inv[k], zero[k], params.max_code);
      word |= static_cast<std::uint32_t>(q) << (container - nbits * (slot + 1));
    }
    return word;
  }
};

// Throws qoracle::Error unless `layer` has an HQQ base and LoRA or OFT adapters (not both, no
// lora_bias); returns the base.
const HqqWeights& check_hqq_merge(const HostLayer& layer);
// PEFT's HqqLoraLinear refuses lora_bias: throws where the layer has one.
void check_hqq_lora_bias(const HostLayer& layer);
HqqMergeGrouping hqq_merge_grouping(const HostLayer& layer, const HqqWeights& weights);

}  // namespace qoracle::optimized

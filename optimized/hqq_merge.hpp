#pragma once
// Merging an adapter into an HQQ layer on the GPU: dequantize, add the LoRA delta or rotate
// (W R_bd^T), requantize with the layer's hqq config (the proximal optimizer included). The whole
// layer per launch sequence: the early-stop decision is made on the device, no host round trips
// between steps. optimized/hqq_requantize.hpp holds the per-group and per-element code.
#include <vector>

#include "optimized/fused_weights.hpp"

namespace qoracle::optimized {

struct HqqMergeResult {
  std::vector<int> codes;          // the grouped (R, C) code matrix, row-major
  std::vector<float> scale, zero;  // per group (scale = 1 / inv)
  int steps = 0;                   // optimizer steps executed
};

// `layer` must have an HQQ base and exactly one of a LoRA or an OFT adapter. Throws qoracle::Error
// naming what does not fit, and "no GPU: ..." without a usable device.
HqqMergeResult hqq_merge(const HostLayer& layer);
// The same code run serially on the host (what the GPU result must equal, up to powf's ulps).
HqqMergeResult hqq_merge_on_host(const HostLayer& layer);

}  // namespace qoracle::optimized

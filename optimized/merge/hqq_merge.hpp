#pragma once
// Merging adapters into an HQQ layer on the GPU: dequantize, add the LoRA delta or rotate, then
// requantize with the layer's hqq config (the proximal optimizer included). The whole layer per
// launch sequence: the early-stop decision is made on the device, no host round trips between
// steps. optimized/merged_weight.hpp holds the per-element code, optimized/hqq_requantize.hpp the
// per-group code.
//
// The merged weight is the one whose plain forward is the layer's forward, requantized once:
//   LoRA (the layer's adapters stacked):  dot_scale (.) W + B A   (= g (.) (W + s B A) for DoRA)
//   OFT x R_1 R_2 ... R_n:                W (R_1 R_2 ... R_n)^T = W R_n^T ... R_1^T
// For one adapter that is PEFT's HqqLoraLinear merge. For several, PEFT requantizes after each
// adapter (and composes OFT in reverse, spec peft-oft-lora.md Q9); the reference's math convention
// merges them at once, as here.
#include <vector>

#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

struct HqqMergeResult {
  HqqWeights weights;  // the merged base as hqq stores it: packed codes, scale (1 / inv), zero, the same config
  int steps = 0;       // optimizer steps executed
};

// `layer` must have an HQQ base and LoRA or OFT adapters, not both, and no lora_bias. Throws
// qoracle::Error naming what does not fit, and "no GPU: ..." without a usable device.
HqqMergeResult hqq_merge(const HostLayer& layer);
// The same code run serially on the host (what the GPU result must equal, up to powf's ulps).
HqqMergeResult hqq_merge_on_host(const HostLayer& layer);

// `layer` after the merge: its base replaced by the merged weights and its adapters removed, ready
// for the fused kernels. The bias stays, as the math says (PEFT's HQQ merge drops it, Q26).
HostLayer hqq_merged_layer(const HostLayer& layer, HqqMergeResult merged);

}  // namespace qoracle::optimized

#pragma once
// The merged weight before any requantization: the dense (out, in) float32 matrix whose plain
// forward is the layer's forward, from its base (read through its weight view, so any format) and
// its LoRA or OFT adapters. The per-element code is written once for host and device (see
// optimized/cayley_block.hpp); hqq_merge requantizes the result, dense_merge keeps it.
//   LoRA (the layer's adapters stacked, their scalings and DoRA magnitudes folded into B):
//     W'[o][i] = dot_scale[o] W[o][i] + s (B A)[o][i]   (dot_scale absent without DoRA)
//   OFT x R_1 R_2 ... R_n, one adapter at a time, the last first: W' = W R_n^T ... R_1^T, with
//     (W R^T)[o][i] = sum_k W[o][j b + k] R_j[c][k] for i = j b + c
#include <vector>

#include "optimized/device/hd.hpp"
#include "optimized/layer/host_layer.hpp"
#include "optimized/rotation/rotation_blocks.hpp"

namespace qoracle::optimized {

struct LoraMergeTerms {
  const float* a = nullptr;          // (rank, in)
  const float* b = nullptr;          // (out, rank)
  const float* dot_scale = nullptr;  // per output; null: 1
  int rank = 0, in = 0;
  float scaling = 1.0f;
};

// The layer's LoRA terms with its tensors at a, b and dot_scale (host or device copies; dot_scale
// null without DoRA).
inline LoraMergeTerms lora_merge_terms(const HostLayer& l, const float* a, const float* b, const float* dot_scale) {
  return LoraMergeTerms{a, b, l.dot_scale.empty() ? nullptr : dot_scale, l.rank, l.in_features, l.scaling};
}

template <class View>
QORACLE_HD float merged_lora_element(const View& w, int o, int i, const LoraMergeTerms& t) {
  float delta = 0.0f;
  for (int r = 0; r < t.rank; ++r)
    delta += t.b[static_cast<long long>(o) * t.rank + r] * t.a[static_cast<long long>(r) * t.in + i];
  const float base = t.dot_scale ? t.dot_scale[o] * w(o, i) : w(o, i);
  return base + delta * t.scaling;
}

template <class View>
QORACLE_HD float merged_oft_element(const View& w, int o, int i, const RotationBlocks& rot) {
  const int b = rot.block_size, j = i / b, c = i % b;
  const float* r = rot.block(j);
  float acc = 0.0f;
  for (int k = 0; k < b; ++k) acc += w(o, j * b + k) * r[c * b + k];
  return acc;
}

// Throws qoracle::Error unless the layer has LoRA or OFT adapters, not both and not neither
// (`merge` names the caller in the message).
void check_merge_adapters(const HostLayer& layer, const char* merge);
// What every merge checks first, in this order: the layer's sizes, that its base is a `Weights`
// ("base: <merge> needs <base>" otherwise), and its adapters. Returns the base.
template <class Weights>
const Weights& check_merge_base(const HostLayer& layer, const char* merge, const char* base);
// Throws qoracle::Error where the layer has lora_bias and no base bias to fold it into.
void check_lora_bias_target(const HostLayer& layer);

// The merged weight computed serially on the host with the kernels' element code, the same
// arithmetic as merged_weight_on_device's.
std::vector<float> merged_weight_on_host(const HostLayer& layer);

// `layer` after a merge: its base replaced by `weights` (the merged weight as the base stores it)
// and its adapters removed. The bias stays, with lora_bias folded in (b + s b_B), as the math says.
HostLayer layer_after_merge(const HostLayer& layer, HostWeights weights);

}  // namespace qoracle::optimized

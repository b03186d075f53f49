#pragma once
// HQQ requantization for the merge path, per group and per element, written once for host and
// device (see optimized/cayley_block.hpp). It follows hqq 0.2.8.post1's quantizer as the
// reference's float32 emulation does (reference/hqq_quantizer.cpp, spec hqq.md §2): every
// elementwise step rounded to float32, group sums and the global error sum accumulated in double
// and rounded once, the early stop on the global mean |W - W_r| keeping the stopping step's update.
#include <cmath>

#include "optimized/cayley_block.hpp"  // QORACLE_HD
#include "optimized/rotation_blocks.hpp"

namespace qoracle::optimized {

// One group of the grouped weight: `count` values `stride` apart starting at `w`.
struct HqqGroupRef {
  const float* w;
  int count, stride;
  QORACLE_HD float operator[](int k) const { return w[static_cast<long long>(k) * stride]; }
};

struct HqqQuantizerParams {
  int max_code = 15;
  bool round_zero = false;
  float shrink_scale = 0.1f;   // 1 / beta in float32
  float lp_minus_one = -0.3f;  // p - 1
};

// inv = max_code / (max - min) (two float32 roundings; 1 for a range <= 1e-4; at most 2e4) and
// zero = -min * inv (rounded to an integer with round_zero).
QORACLE_HD inline void hqq_group_start(const HqqGroupRef& g, const HqqQuantizerParams& p, float& inv, float& zero) {
  float lo = g[0], hi = g[0];
  for (int k = 1; k < g.count; ++k) {
    lo = g[k] < lo ? g[k] : lo;
    hi = g[k] > hi ? g[k] : hi;
  }
  const float denom = hi - lo;
  float s = (1.0f / denom) * static_cast<float>(p.max_code);
  if ((denom < 0 ? -denom : denom) <= 1e-4f) s = 1.0f;
  inv = s < 2e4f ? s : 2e4f;
  zero = -lo * inv;
  if (p.round_zero) zero = nearbyintf(zero);
}

QORACLE_HD inline float hqq_code(float w, float inv, float zero, int max_code) {
  const float v = nearbyintf(w * inv + zero);
  return v < 0.0f ? 0.0f : (v > static_cast<float>(max_code) ? static_cast<float>(max_code) : v);
}

// One legacy proximal step for a group: updates `zero`, returns the group's sum of |W - W_r| under
// the zero it started with (in double).
QORACLE_HD inline double hqq_group_step(const HqqGroupRef& g, const HqqQuantizerParams& p, float inv, float& zero) {
  double acc = 0.0, err = 0.0;
  for (int k = 0; k < g.count; ++k) {
    const float w = g[k];
    const float q = hqq_code(w, inv, zero, p.max_code);
    const float wr = (q - zero) / inv;
    const float e = w - wr;
    const float ae = e < 0 ? -e : e;
    float shrunk = ae - p.shrink_scale * powf(ae, p.lp_minus_one);
    if (!(shrunk > 0.0f)) shrunk = 0.0f;
    const float we = e > 0.0f ? shrunk : (e < 0.0f ? -shrunk : 0.0f);
    acc += static_cast<double>(q - (w - we) * inv);
    err += static_cast<double>(ae);
  }
  zero = static_cast<float>(acc) / static_cast<float>(g.count);
  return err;
}

// The merged weight's element before requantization. LoRA (the layer's adapters stacked, their
// scalings and DoRA magnitudes folded into B): dot_scale[o] W[o][i] + s (B A)[o][i], with dot_scale
// absent for no DoRA. OFT, one adapter at a time: (W R_bd^T)[o][i] = sum_k W[o][j b + k] R_j[c][k]
// with i = j b + c.
struct LoraMergeTerms {
  const float* a = nullptr;          // (rank, in)
  const float* b = nullptr;          // (out, rank)
  const float* dot_scale = nullptr;  // per output; null: 1
  int rank = 0, in = 0;
  float scaling = 1.0f;
};

template <class View>
QORACLE_HD float merged_lora_element(const View& w, int o, int i, const LoraMergeTerms& t) {
  float delta = 0.0f;
  for (int r = 0; r < t.rank; ++r)
    delta += t.b[static_cast<long long>(o) * t.rank + r] * t.a[static_cast<long long>(r) * t.in + i];
  const float base = t.dot_scale ? t.dot_scale[o] * w(o, i) : w(o, i);
  return base + delta * t.scaling;
}

// (W R^T)[o][i]: row o of W, block by block, times column c of R_j^T (row c of R_j).
template <class View>
QORACLE_HD float merged_oft_element(const View& w, int o, int i, const RotationBlocks& rot) {
  const int b = rot.block_size, j = i / b, c = i % b;
  const float* r = rot.block(j);
  float acc = 0.0f;
  for (int k = 0; k < b; ++k) acc += w(o, j * b + k) * r[c * b + k];
  return acc;
}

}  // namespace qoracle::optimized

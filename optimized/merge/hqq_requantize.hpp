#pragma once
// HQQ requantization for the merge path, per group, written once for host and
// device (see optimized/cayley_block.hpp). It follows hqq 0.2.8.post1's quantizer as the
// reference's float32 emulation does (reference/hqq_quantizer.cpp, spec hqq.md §2): every
// elementwise step rounded to float32, group sums and the global error sum accumulated in double
// and rounded once, the early stop on the global mean |W - W_r| keeping the stopping step's update.
#include <cmath>

#include "optimized/device/hd.hpp"

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

// Reductions across the `lanes` threads that share one group (a warp's shuffles on the device,
// where every lane gets the result; the identity for one lane on the host). Sums of a group's
// float32 terms in double are exact, so any order gives the host's serial result.
struct OneLane {
  QORACLE_HD float min(float v) const { return v; }
  QORACLE_HD float max(float v) const { return v; }
  QORACLE_HD double sum(double v) const { return v; }
};

// inv = max_code / (max - min) (two float32 roundings; 1 for a range <= 1e-4; at most 2e4) and
// zero = -min * inv (rounded to an integer with round_zero). This lane takes elements lane,
// lane + lanes, ...
template <class Reduce = OneLane>
QORACLE_HD void hqq_group_start(const HqqGroupRef& g, const HqqQuantizerParams& p, float& inv, float& zero, int lane = 0,
                                int lanes = 1, Reduce reduce = {}) {
  float lo = g[lane < g.count ? lane : 0], hi = lo;
  for (int k = lane; k < g.count; k += lanes) {
    lo = g[k] < lo ? g[k] : lo;
    hi = g[k] > hi ? g[k] : hi;
  }
  lo = reduce.min(lo);
  hi = reduce.max(hi);
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
// the zero it started with (in double). Lanes as in hqq_group_start.
template <class Reduce = OneLane>
QORACLE_HD double hqq_group_step(const HqqGroupRef& g, const HqqQuantizerParams& p, float inv, float& zero, int lane = 0,
                                 int lanes = 1, Reduce reduce = {}) {
  double acc = 0.0, err = 0.0;
  for (int k = lane; k < g.count; k += lanes) {
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
  acc = reduce.sum(acc);
  err = reduce.sum(err);
  zero = static_cast<float>(acc) / static_cast<float>(g.count);
  return err;
}

}  // namespace qoracle::optimized

#pragma once
// The view path of the few-token forward: one warp per output, each lane a strided share of the
// inputs, every token at once, the weights dequantized element by element by the stored format's
// view (optimized/layer/weight_views.hpp) and float32 accumulation; the lanes' shares are summed
// by the kernel's shuffle tree. For float32 activations and for the stored configs the row
// layouts do not cover; correct everywhere, built for coverage rather than speed.
#include "optimized/device/dtype_bits.hpp"
#include "optimized/forward/tc_gemv.hpp"

namespace qoracle::optimized {

constexpr int kViewGemvWarps = 8;

// This lane's shares of dot(x[t], W[o]) for t < tokens (<= kGemvMaxTokens).
template <class View, class Tag>
QORACLE_HD void view_gemv_lane(const View& w, int o, const Element<Tag>* x, int tokens, int in, int lane,
                               float (&acc)[kGemvMaxTokens]) {
  for (int t = 0; t < kGemvMaxTokens; ++t) acc[t] = 0.0f;
  for (int i = lane; i < in; i += 32) {
    const float wv = w(o, i);
#ifdef __CUDA_ARCH__
#pragma unroll
#endif
    for (int t = 0; t < kGemvMaxTokens; ++t)
      if (t < tokens) acc[t] += bits_to_float(x[static_cast<long long>(t) * in + i], Tag{}) * wv;
  }
}

}  // namespace qoracle::optimized

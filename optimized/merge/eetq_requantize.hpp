#pragma once
// EETQ's quantizer for the merge path, per output channel, written once for host and device (see
// optimized/cayley_block.hpp). The same IEEE steps as the reference's eetq_quantize (spec eetq.md
// §3): the weight rounded to float16, amax in float32, scale32 = amax * 2^-7, one float32 division
// per code, round half away, clamp to [-128, 127]; the stored scale is scale32 rounded to float16.
// With the same float32 merged weight, host and device give identical codes and scales.
#include <cmath>

#include "optimized/device/hd.hpp"
#ifdef __CUDACC__
#include <cuda_fp16.h>
#endif

namespace qoracle::optimized {

// float16 round-to-nearest-even, widened back (the host's is activation_io's conversion).
float round_to_half_on_host(float v);
QORACLE_HD inline float round_to_half(float v) {
#ifdef __CUDA_ARCH__
  return __half2float(__float2half_rn(v));
#else
  return round_to_half_on_host(v);
#endif
}

// amax is max |round_to_half(w)| over the channel (order-free, so any reduction gives it).
QORACLE_HD inline float eetq_scale32(float amax) { return amax * (1.0f / 128.0f); }

// The code of one stored (float16-valued) weight. An all-zero channel (scale 0) gets 127, as the
// library's 0/0 does. The callers refuse non-finite weights; a NaN ratio would still give a code
// (-128), never an undefined conversion.
QORACLE_HD inline int eetq_code(float stored, float scale32) {
  if (scale32 == 0.0f) return 127;
  const float q = roundf(stored / scale32);
  return q >= 127.0f ? 127 : q >= -128.0f ? static_cast<int>(q) : -128;
}

}  // namespace qoracle::optimized

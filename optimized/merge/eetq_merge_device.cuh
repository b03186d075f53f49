#pragma once
// EETQ requantization on the device (optimized/merge/eetq_merge.cu).
#include <cuda_runtime.h>

#include <cstdint>

#include "optimized/device/device_buffer.hpp"
#include "optimized/layer/weight_views.hpp"

namespace qoracle::optimized {

// merged (out, in) float32 -> the codes in `layout`'s bytes, float16 scales (held as float), and
// the smallest flat index of a weight float16 cannot hold into *unstorable (which starts at the
// maximum). Asynchronous on `s`.
void launch_eetq_requantize(const float* merged, const EetqView& layout, std::int8_t* bytes, float* scales,
                            unsigned long long* unstorable, cudaStream_t s);

}  // namespace qoracle::optimized

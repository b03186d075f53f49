#pragma once
// HQQ requantization on the device (optimized/merge/hqq_merge.cu), its result left there.
#include <cuda_runtime.h>

#include <cstdint>

#include "optimized/device/device_buffer.hpp"
#include "optimized/merge/hqq_merge_checks.hpp"

namespace qoracle::optimized {

struct HqqRequantized {
  HqqRequantized(const HqqMergeGrouping& g, cudaStream_t s)
      : words8(g.nbits == 3 ? 0 : static_cast<size_t>(g.packed_rows) * g.cols, s),
        words32(g.nbits == 3 ? static_cast<size_t>(g.packed_rows) * g.cols : 0, s),
        scale(static_cast<size_t>(g.groups), s),
        zero(static_cast<size_t>(g.groups), s),
        steps(1, s) {}
  StreamBuffer<std::uint8_t> words8;   // nbits 1, 2, 4, 8
  StreamBuffer<std::int32_t> words32;  // nbits 3
  StreamBuffer<float> scale, zero;
  StreamBuffer<int> steps;
};

// The codes, scale and zero of `merged` (the grouping's (out, in) float32 weight) as hqq's optimizer
// leaves them after at most `iters` steps (0: its start, optimize off). Asynchronous on `s`.
HqqRequantized requantize_hqq_on_device(const HqqMergeGrouping& g, int iters, const float* merged, cudaStream_t s);

}  // namespace qoracle::optimized

// EETQ requantization of a merged weight on the device: one block per output channel, amax of the
// float16-rounded weights by a max-reduction (order-free, so it equals the host's serial max), then
// every code written to its byte in the base's layout.
#include <cuda_runtime.h>

#include "optimized/merge/eetq_merge_device.cuh"
#include "optimized/merge/eetq_requantize.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kChannelThreads = 256;

// `unstorable`: the smallest flat index whose weight float16 cannot hold (left at its start
// value, the maximum, where every weight fits).
__global__ void requantize_kernel(const float* merged, EetqView layout, std::int8_t* bytes, float* scales,
                                  unsigned long long* unstorable) {
  __shared__ float partial[kChannelThreads];
  const int o = static_cast<int>(blockIdx.x), in = layout.in_features;
  const float* row = merged + static_cast<long long>(o) * in;
  float amax = 0.0f;
  for (int i = static_cast<int>(threadIdx.x); i < in; i += kChannelThreads) {
    const float stored = round_to_half(row[i]);
    if (!isfinite(stored)) atomicMin(unstorable, static_cast<unsigned long long>(o) * in + i);
    amax = fmaxf(amax, fabsf(stored));
  }
  partial[threadIdx.x] = amax;
  __syncthreads();
  for (int s = kChannelThreads / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) partial[threadIdx.x] = fmaxf(partial[threadIdx.x], partial[threadIdx.x + s]);
    __syncthreads();
  }
  const float scale32 = eetq_scale32(partial[0]);
  if (threadIdx.x == 0) scales[o] = round_to_half(scale32);
  for (int i = static_cast<int>(threadIdx.x); i < in; i += kChannelThreads)
    bytes[layout.offset(o, i)] = EetqView::stored_byte(eetq_code(round_to_half(row[i]), scale32), layout.layout);
}

}  // namespace

void launch_eetq_requantize(const float* merged, const EetqView& layout, std::int8_t* bytes, float* scales,
                            unsigned long long* unstorable, cudaStream_t s) {
  requantize_kernel<<<layout.out_features, kChannelThreads, 0, s>>>(merged, layout, bytes, scales, unstorable);
  check_cuda(cudaGetLastError(), "eetq requantize launch");
}

}  // namespace qoracle::optimized

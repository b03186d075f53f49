#include "optimized/device/l2_flush.hpp"

#include <cuda_runtime.h>

#include "optimized/device/device_buffer.hpp"

namespace qoracle::optimized {

namespace {

constexpr size_t kFlushBytes = size_t{256} << 20;

// Reads every word; writes only if the sum is a value it never is, so the reads stay.
__global__ void read_all_kernel(const uint4* data, size_t n, unsigned* sink) {
  unsigned acc = 0;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const uint4 v = data[i];
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) *sink = acc;
}

}  // namespace

void flush_l2(void* stream) {
  static DeviceBuffer<uint4> buffer(kFlushBytes / sizeof(uint4));
  static DeviceBuffer<unsigned> sink(1);
  static const bool filled = [] {
    check_cuda(cudaMemset(buffer.get(), 1, kFlushBytes), "cudaMemset");
    return true;
  }();
  (void)filled;
  read_all_kernel<<<1024, 256, 0, static_cast<cudaStream_t>(stream)>>>(buffer.get(), kFlushBytes / sizeof(uint4), sink.get());
  check_cuda(cudaGetLastError(), "read_all_kernel launch");
}

}  // namespace qoracle::optimized

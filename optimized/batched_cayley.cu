#include <cuda_runtime.h>

#include <string>

#include "optimized/batched_cayley.hpp"
#include "optimized/block_sync.cuh"
#include "optimized/cayley_block.hpp"
#include "optimized/device_buffer.hpp"
#include "optimized/device_probe.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kThreads = 256;
constexpr int kSharedLimit = 48 * 1024;  // without opting in to more

// One thread block per OFT block; its scratch in shared memory when it fits, else in global.
__global__ void cayley_kernel(const float* params, int b, bool neumann, NeumannSeries series, float coft_radius,
                              float* out, float* global_scratch, bool shared) {
  extern __shared__ float smem[];
  __shared__ float partial[kThreads];
  const auto blk = static_cast<size_t>(blockIdx.x);
  float* ws = shared ? smem : global_scratch + blk * rotation_scratch_floats(b, neumann);
  const float* v = params + blk * (static_cast<size_t>(b) * (b - 1) / 2);
  rotation_block(v, b, neumann, series, coft_radius, ws, partial, out + blk * b * b, static_cast<int>(threadIdx.x),
                 static_cast<int>(blockDim.x), BlockSync{});
}

}  // namespace

std::vector<float> batched_cayley(const CayleyBatch& batch, const std::vector<float>& params) {
  check_cayley_batch(batch, params);
  const int b = batch.block_size;
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);

  const size_t scratch_bytes = sizeof(float) * rotation_scratch_floats(b, batch.neumann);
  const bool shared = scratch_bytes <= kSharedLimit;
  DeviceBuffer<float> d_params(params.size()), d_out(static_cast<size_t>(batch.rows) * b * b);
  DeviceBuffer<float> d_scratch(shared ? 0 : static_cast<size_t>(batch.rows) * rotation_scratch_floats(b, batch.neumann));
  d_params.upload(params);
  cayley_kernel<<<batch.rows, kThreads, shared ? scratch_bytes : 0>>>(
      d_params.get(), b, batch.neumann, neumann_series(batch.terms, batch.math_series), batch.coft_radius, d_out.get(),
      d_scratch.get(), shared);
  check_cuda(cudaGetLastError(), "cayley_kernel launch");
  return d_out.download();
}

}  // namespace qoracle::optimized

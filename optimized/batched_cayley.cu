#include <cuda_runtime.h>

#include <string>

#include "optimized/batched_cayley.hpp"
#include "optimized/batched_cayley_launch.hpp"
#include "optimized/block_sync.cuh"
#include "optimized/cayley_block.hpp"
#include "optimized/device_buffer.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemv_checks.hpp"  // cayley_batch
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

size_t scratch_bytes(const CayleyBatch& batch) {
  return sizeof(float) * static_cast<size_t>(rotation_scratch_floats(batch.block_size, batch.neumann));
}

}  // namespace

std::size_t cayley_global_scratch_floats(const CayleyBatch& batch) {
  return scratch_bytes(batch) <= kSharedLimit ? 0 : static_cast<size_t>(batch.rows) * scratch_bytes(batch) / sizeof(float);
}

void launch_batched_cayley(const CayleyBatch& batch, const float* d_params, float* d_out, float* d_scratch) {
  const bool shared = scratch_bytes(batch) <= kSharedLimit;
  cayley_kernel<<<batch.rows, kThreads, shared ? scratch_bytes(batch) : 0>>>(
      d_params, batch.block_size, batch.neumann, neumann_series(batch.terms, batch.math_series), batch.coft_radius, d_out,
      d_scratch, shared);
  check_cuda(cudaGetLastError(), "cayley_kernel launch");
}

const float* rotation_blocks_on_device(const HostRotation& rotation, Uploads& keep) {
  const CayleyBatch batch = cayley_batch(rotation);
  float* blocks = keep.allocate<float>(static_cast<size_t>(batch.rows) * batch.block_size * batch.block_size);
  launch_batched_cayley(batch, keep(rotation.params), blocks, keep.allocate<float>(cayley_global_scratch_floats(batch)));
  return blocks;
}

std::vector<float> batched_cayley(const CayleyBatch& batch, const std::vector<float>& params) {
  check_cayley_batch(batch, params);
  const int b = batch.block_size;
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);

  DeviceBuffer<float> d_params(params.size()), d_out(static_cast<size_t>(batch.rows) * b * b);
  DeviceBuffer<float> d_scratch(cayley_global_scratch_floats(batch));
  d_params.upload(params);
  launch_batched_cayley(batch, d_params.get(), d_out.get(), d_scratch.get());
  return d_out.download();
}

}  // namespace qoracle::optimized

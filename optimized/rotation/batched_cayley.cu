#include <cuda_runtime.h>

#include <string>

#include "optimized/rotation/batched_cayley.hpp"
#include "optimized/rotation/batched_cayley_launch.hpp"
#include "optimized/device/block_sync.cuh"
#include "optimized/rotation/cayley_block.hpp"
#include "optimized/device/device_buffer.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/layer/layer_checks.hpp"  // cayley_batch
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {


// One thread block per OFT block; its scratch in shared memory when it fits, else in global.
__global__ void cayley_kernel(const float* params, int b, bool neumann, NeumannSeries series, float coft_radius,
                              float* out, float* global_scratch, bool shared) {
  extern __shared__ float smem[];
  __shared__ float partial[kCayleyThreads];
  const auto blk = static_cast<size_t>(blockIdx.x);
  float* ws = shared ? smem : global_scratch + blk * rotation_scratch_floats(b, neumann);
  const float* v = params + blk * (static_cast<size_t>(b) * (b - 1) / 2);
  rotation_block(v, b, neumann, series, coft_radius, ws, partial, out + blk * b * b, static_cast<int>(threadIdx.x),
                 static_cast<int>(blockDim.x), BlockSync{});
}

static_assert(sizeof(float) * kCayleyThreads == kCayleyStaticShared, "the planner counts the kernel's static array");

int opt_in_shared() {
  static const int limit = [] {
    int dev = 0, v = 0;
    check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
    check_cuda(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev), "cudaDeviceGetAttribute");
    return v;
  }();
  return limit;
}

}  // namespace

std::size_t cayley_global_scratch_floats(const CayleyBatch& batch) {
  if (!plan_cayley_launch(batch, opt_in_shared()).global_scratch) return 0;
  return static_cast<size_t>(batch.rows) * static_cast<size_t>(rotation_scratch_floats(batch.block_size, batch.neumann));
}

void launch_batched_cayley(const CayleyBatch& batch, const float* d_params, float* d_out, float* d_scratch) {
  const CayleyLaunch plan = plan_cayley_launch(batch, opt_in_shared());
  if (plan.opt_in)
    check_cuda(cudaFuncSetAttribute(cayley_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, plan.dynamic_shared),
               "cayley_kernel: opting in to more shared memory");
  cayley_kernel<<<batch.rows, kCayleyThreads, plan.dynamic_shared>>>(d_params, batch.block_size, batch.neumann,
                                                                     neumann_series(batch.terms, batch.math_series, batch.all_twos),
                                                                     batch.coft_radius, d_out, d_scratch,
                                                                     !plan.global_scratch);
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
  require_device();

  DeviceBuffer<float> d_params(params.size()), d_out(static_cast<size_t>(batch.rows) * b * b);
  DeviceBuffer<float> d_scratch(cayley_global_scratch_floats(batch));
  d_params.upload(params);
  launch_batched_cayley(batch, d_params.get(), d_out.get(), d_scratch.get());
  return d_out.download();
}

}  // namespace qoracle::optimized

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

// Scratch floats per OFT block: Neumann keeps S and two powers; exact keeps [I+S | I-S] (S
// itself is built in the output block, which the solve overwrites last).
int scratch_floats(int b, bool neumann) { return (neumann ? 3 : 2) * b * b; }

constexpr int kThreads = 256;
constexpr int kSharedLimit = 48 * 1024;  // without opting in to more

__global__ void cayley_kernel(const float* params, int b, bool neumann, int terms, float coft_radius, float* out,
                              float* global_scratch, bool shared) {
  extern __shared__ float smem[];
  __shared__ float partial[kThreads];
  const auto blk = static_cast<size_t>(blockIdx.x);
  const int scratch = (neumann ? 3 : 2) * b * b;
  float* ws = shared ? smem : global_scratch + blk * scratch;
  const float* v = params + blk * (static_cast<size_t>(b) * (b - 1) / 2);
  float* r = out + blk * b * b;
  const int tid = static_cast<int>(threadIdx.x), n = static_cast<int>(blockDim.x);
  const float f = coft_factor(v, b * (b - 1) / 2, coft_radius, partial, tid, n, BlockSync{});
  if (neumann) {
    skew_block(v, b, ws, tid, n, BlockSync{}, f);
    cayley_neumann_block(ws, b, terms, ws + b * b, ws + 2 * b * b, r, tid, n, BlockSync{});
  } else {
    skew_block(v, b, r, tid, n, BlockSync{}, f);
    cayley_exact_block(r, b, ws, r, tid, n, BlockSync{});
  }
}

}  // namespace

std::vector<float> batched_cayley(const CayleyBatch& batch, const std::vector<float>& params) {
  check_cayley_batch(batch, params);
  const int b = batch.block_size;
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);

  const size_t scratch_bytes = sizeof(float) * scratch_floats(b, batch.neumann);
  const bool shared = scratch_bytes <= kSharedLimit;
  DeviceBuffer<float> d_params(params.size()), d_out(static_cast<size_t>(batch.rows) * b * b);
  DeviceBuffer<float> d_scratch(shared ? 0 : static_cast<size_t>(batch.rows) * scratch_floats(b, batch.neumann));
  d_params.upload(params);
  cayley_kernel<<<batch.rows, kThreads, shared ? scratch_bytes : 0>>>(d_params.get(), b, batch.neumann, batch.terms,
                                                                       batch.coft_radius, d_out.get(), d_scratch.get(), shared);
  check_cuda(cudaGetLastError(), "cayley_kernel launch");
  return d_out.download();
}

}  // namespace qoracle::optimized

// HQQ requantization of a merged weight on the device (optimized/merge/hqq_requantize.hpp's per-group
// code, a warp per group), the whole optimizer in three launches instead of two per step: every
// group's trajectory (start, then each proximal step's zero kept and its error summed per block,
// in double), then one block decides where hqq's early stop falls (the global mean error, block
// sums added in block order), then the codes are packed with the zero of that step.
#include <cuda_runtime.h>

#include <algorithm>
#include <string>

#include "optimized/device/elementwise_launch.cuh"
#include "optimized/merge/hqq_merge_device.cuh"

namespace qoracle::optimized {

namespace {

constexpr int kTrajectoryWarps = 8;
constexpr int kTrajectoryBlocks = 1024;  // grid-stride: a fixed grid, so the sums' order is fixed
constexpr int kDecideThreads = 256;
constexpr int kMaxSteps = 64;  // hqq's iters (20 by default); hqq_merge's check refuses more

struct WarpReduce {
  __device__ float min(float v) const {
    for (int o = 16; o > 0; o /= 2) v = fminf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
  }
  __device__ float max(float v) const {
    for (int o = 16; o > 0; o /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
  }
  __device__ double sum(double v) const {
    for (int o = 16; o > 0; o /= 2) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
  }
};

// One warp per group (its lanes read the group's elements side by side), groups grid-strided.
// zeros: (iters + 1, groups), the zero before the first step and after each; partial: (iters,
// blocks), each block's sum of its groups' |W - W_r| under the zero each step started with, its
// warps' sums added in warp order.
__global__ void __launch_bounds__(32 * kTrajectoryWarps) trajectory_kernel(HqqMergeGrouping g, const float* merged, int iters,
                                                                          float* inv, float* zeros, double* partial) {
  __shared__ double warp_err[kTrajectoryWarps][kMaxSteps];
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  for (int s = lane; s < iters; s += 32) warp_err[warp][s] = 0.0;
  __syncwarp();  // lane 0 adds to what the other lanes zeroed
  const WarpReduce reduce;
  for (int k = static_cast<int>(blockIdx.x) * kTrajectoryWarps + warp; k < g.groups;
       k += static_cast<int>(gridDim.x) * kTrajectoryWarps) {
    const HqqGroupRef group = g.group(merged, k);
    float iv = 1.0f, z = 0.0f;
    hqq_group_start(group, g.params, iv, z, lane, 32, reduce);
    if (lane == 0) {
      inv[k] = iv;
      zeros[k] = z;
    }
    for (int s = 0; s < iters; ++s) {
      const double err = hqq_group_step(group, g.params, iv, z, lane, 32, reduce);
      if (lane == 0) {
        warp_err[warp][s] += err;
        zeros[static_cast<long long>(s + 1) * g.groups + k] = z;
      }
    }
  }
  __syncthreads();
  for (int s = static_cast<int>(threadIdx.x); s < iters; s += 32 * kTrajectoryWarps) {
    double sum = 0.0;
    for (int w = 0; w < kTrajectoryWarps; ++w) sum += warp_err[w][s];
    partial[static_cast<long long>(s) * gridDim.x + blockIdx.x] = sum;
  }
}

// One block: each step's total (a fixed order), then hqq's rule: a step that does not lower the
// mean stops the optimizer, its zero update kept. steps: how many steps ran.
__global__ void decide_kernel(const double* partial, int blocks, int iters, long long elements, int* steps) {
  __shared__ double sums[kDecideThreads];
  const int tid = static_cast<int>(threadIdx.x);
  float best = INFINITY;
  int ran = 0;
  for (int s = 0; s < iters; ++s) {
    double sum = 0.0;
    for (int b = tid; b < blocks; b += kDecideThreads) sum += partial[static_cast<long long>(s) * blocks + b];
    sums[tid] = sum;
    __syncthreads();
    for (int h = kDecideThreads / 2; h > 0; h /= 2) {
      if (tid < h) sums[tid] += sums[tid + h];
      __syncthreads();
    }
    const float mean = static_cast<float>(sums[0]) / static_cast<float>(elements);
    __syncthreads();
    ran = s + 1;
    if (mean < best)
      best = mean;
    else
      break;
  }
  if (tid == 0) *steps = ran;
}

// One thread per stored word, so each word is written once (no atomics).
template <class Word>
__global__ void pack_kernel(HqqMergeGrouping g, const float* merged, const float* inv, const float* zeros,
                            const int* steps, Word* words) {
  const long long f = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= static_cast<long long>(g.packed_rows) * g.cols) return;
  const float* zero = zeros + static_cast<long long>(*steps) * g.groups;
  words[f] = static_cast<Word>(g.packed_word(merged, inv, zero, static_cast<int>(f / g.cols), static_cast<int>(f % g.cols)));
}

__global__ void scale_kernel(int groups, const float* inv, const float* zeros, const int* steps, float* scale, float* zero) {
  const int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (k >= groups) return;
  scale[k] = 1.0f / inv[k];
  zero[k] = zeros[static_cast<long long>(*steps) * groups + k];
}

}  // namespace

HqqRequantized requantize_hqq_on_device(const HqqMergeGrouping& g, int iters, const float* merged, cudaStream_t s) {
  HqqRequantized r(g, s);
  if (iters > kMaxSteps) throw Error("iters: expected at most " + std::to_string(kMaxSteps) + " optimizer steps, got " + std::to_string(iters));
  const int blocks = std::min(kTrajectoryBlocks, (g.groups + kTrajectoryWarps - 1) / kTrajectoryWarps);
  StreamBuffer<float> inv(static_cast<size_t>(g.groups), s), zeros(static_cast<size_t>(iters + 1) * g.groups, s);
  StreamBuffer<double> partial(static_cast<size_t>(iters > 0 ? iters : 1) * blocks, s);
  trajectory_kernel<<<blocks, 32 * kTrajectoryWarps, 0, s>>>(g, merged, iters, inv.get(), zeros.get(), partial.get());
  decide_kernel<<<1, kDecideThreads, 0, s>>>(partial.get(), blocks, iters, static_cast<long long>(g.rows) * g.cols,
                                             r.steps.get());
  const long long words = static_cast<long long>(g.packed_rows) * g.cols;
  if (g.nbits == 3)
    pack_kernel<<<elementwise_blocks(words), kElementwiseThreads, 0, s>>>(g, merged, inv.get(), zeros.get(), r.steps.get(),
                                                                          r.words32.get());
  else
    pack_kernel<<<elementwise_blocks(words), kElementwiseThreads, 0, s>>>(g, merged, inv.get(), zeros.get(), r.steps.get(),
                                                                          r.words8.get());
  scale_kernel<<<elementwise_blocks(g.groups), kElementwiseThreads, 0, s>>>(g.groups, inv.get(), zeros.get(),
                                                                            r.steps.get(), r.scale.get(), r.zero.get());
  check_cuda(cudaGetLastError(), "hqq requantization launches");
  return r;
}

}  // namespace qoracle::optimized

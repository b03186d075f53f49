// HQQ requantization of a merged weight on the device (optimized/merge/hqq_requantize.hpp's per-group
// code), the whole optimizer in three launches instead of two per step: every group's trajectory
// (start, then each proximal step's zero kept and its error summed per block, in double), then one
// block decides where hqq's early stop falls (the global mean error, block sums added in block
// order), then the codes are packed with the zero of that step.
#include <cuda_runtime.h>

#include "optimized/device/elementwise_launch.cuh"
#include "optimized/merge/hqq_merge_device.cuh"

namespace qoracle::optimized {

namespace {

constexpr int kTrajectoryThreads = 128;
constexpr int kDecideThreads = 256;

// zeros: (iters + 1, groups), the zero before the first step and after each; partial: (iters,
// blocks), each block's sum of its groups' |W - W_r| under the zero each step started with.
__global__ void __launch_bounds__(kTrajectoryThreads) trajectory_kernel(HqqMergeGrouping g, const float* merged, int iters,
                                                                       float* inv, float* zeros, double* partial) {
  __shared__ double sums[kTrajectoryThreads];
  const int tid = static_cast<int>(threadIdx.x);
  const int k = static_cast<int>(blockIdx.x) * kTrajectoryThreads + tid;
  const bool live = k < g.groups;
  float iv = 1.0f, z = 0.0f;
  if (live) {
    hqq_group_start(g.group(merged, k), g.params, iv, z);
    inv[k] = iv;
    zeros[k] = z;
  }
  for (int s = 0; s < iters; ++s) {
    double err = 0.0;
    if (live) {
      err = hqq_group_step(g.group(merged, k), g.params, iv, z);
      zeros[static_cast<long long>(s + 1) * g.groups + k] = z;
    }
    sums[tid] = err;
    __syncthreads();
    for (int h = kTrajectoryThreads / 2; h > 0; h /= 2) {
      if (tid < h) sums[tid] += sums[tid + h];
      __syncthreads();
    }
    if (tid == 0) partial[static_cast<long long>(s) * gridDim.x + blockIdx.x] = sums[0];
    __syncthreads();
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
  const int blocks = (g.groups + kTrajectoryThreads - 1) / kTrajectoryThreads;
  StreamBuffer<float> inv(static_cast<size_t>(g.groups), s), zeros(static_cast<size_t>(iters + 1) * g.groups, s);
  StreamBuffer<double> partial(static_cast<size_t>(iters > 0 ? iters : 1) * blocks, s);
  trajectory_kernel<<<blocks, kTrajectoryThreads, 0, s>>>(g, merged, iters, inv.get(), zeros.get(), partial.get());
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

#include <cuda_runtime.h>

#include <limits>
#include <string>
#include <utility>

#include "optimized/device/device_buffer.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/device/elementwise_launch.cuh"
#include "optimized/merge/hqq_merge.hpp"
#include "optimized/merge/hqq_merge_checks.hpp"
#include "optimized/merge/merged_weight_launch.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kDecideThreads = 256;  // the one block that sums the groups' errors

struct OptimizerState {
  float best;
  int stopped;
  int steps;
};

__global__ void start_kernel(HqqMergeGrouping g, const float* merged, float* inv, float* zero) {
  const int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (k < g.groups) hqq_group_start(g.group(merged, k), g.params, inv[k], zero[k]);
}

__global__ void step_kernel(HqqMergeGrouping g, const float* merged, const float* inv, float* zero, double* err,
                            const OptimizerState* state) {
  if (state->stopped) return;
  const int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (k < g.groups) err[k] = hqq_group_step(g.group(merged, k), g.params, inv[k], zero[k]);
}

// One block: the global mean |W - W_r| (double sums in a fixed order, so the decision is
// deterministic), then hqq's early stop. The stopping step's zero update is kept.
__global__ void decide_kernel(const double* err, int groups, long long elements, OptimizerState* state) {
  __shared__ double partial[kDecideThreads];
  if (state->stopped) return;
  double sum = 0.0;
  for (int k = static_cast<int>(threadIdx.x); k < groups; k += kDecideThreads) sum += err[k];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int s = kDecideThreads / 2; s > 0; s /= 2) {
    if (static_cast<int>(threadIdx.x) < s) partial[threadIdx.x] += partial[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    ++state->steps;
    const float mean = static_cast<float>(partial[0]) / static_cast<float>(elements);
    if (mean < state->best)
      state->best = mean;
    else
      state->stopped = 1;
  }
}

// One thread per stored word, so each word is written once (no atomics).
template <class Word>
__global__ void pack_kernel(HqqMergeGrouping g, const float* merged, const float* inv, const float* zero, Word* words) {
  const long long f = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= static_cast<long long>(g.packed_rows) * g.cols) return;
  words[f] =
      static_cast<Word>(g.packed_word(merged, inv, zero, static_cast<int>(f / g.cols), static_cast<int>(f % g.cols)));
}

__global__ void scale_kernel(int groups, const float* inv, float* scale) {
  const int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (k < groups) scale[k] = 1.0f / inv[k];
}

}  // namespace

HqqMergeResult hqq_merge(const HostLayer& l) {
  const HqqWeights& hw = check_hqq_merge(l);
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);
  const HqqMergeGrouping g = hqq_merge_grouping(l, hw);
  const long long elements = static_cast<long long>(l.out_features) * l.in_features;

  Uploads up;
  const float* result = merged_weight_on_device(l, up);
  DeviceBuffer<float> inv(g.groups), zero(g.groups), scale(g.groups);
  DeviceBuffer<double> err(g.groups);
  DeviceBuffer<OptimizerState> state(1);
  state.upload({OptimizerState{std::numeric_limits<float>::infinity(), hw.optimize ? 0 : 1, 0}});

  start_kernel<<<elementwise_blocks(g.groups), kElementwiseThreads>>>(g, result, inv.get(), zero.get());
  for (int it = 0; hw.optimize && it < hw.iters; ++it) {  // launched unconditionally; a stopped state skips
    step_kernel<<<elementwise_blocks(g.groups), kElementwiseThreads>>>(g, result, inv.get(), zero.get(), err.get(), state.get());
    decide_kernel<<<1, kDecideThreads>>>(err.get(), g.groups, elements, state.get());
  }
  const long long words = static_cast<long long>(g.packed_rows) * g.cols;
  HqqMergeResult out{HqqWeights{HqqLayout(hw)}};  // the layout and config stay; the tensors are new
  if (hw.nbits == 3) {
    DeviceBuffer<std::int32_t> packed(static_cast<size_t>(words));
    pack_kernel<<<elementwise_blocks(words), kElementwiseThreads>>>(g, result, inv.get(), zero.get(), packed.get());
    out.weights.w_q32 = packed.download();
  } else {
    DeviceBuffer<std::uint8_t> packed(static_cast<size_t>(words));
    pack_kernel<<<elementwise_blocks(words), kElementwiseThreads>>>(g, result, inv.get(), zero.get(), packed.get());
    out.weights.w_q8 = packed.download();
  }
  scale_kernel<<<elementwise_blocks(g.groups), kElementwiseThreads>>>(g.groups, inv.get(), scale.get());
  check_cuda(cudaGetLastError(), "hqq_merge launches");
  out.weights.scale = scale.download();
  out.weights.zero = zero.download();
  out.steps = state.download()[0].steps;
  return out;
}

}  // namespace qoracle::optimized

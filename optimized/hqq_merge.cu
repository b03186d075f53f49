#include <cuda_runtime.h>

#include <limits>
#include <string>

#include "optimized/batched_cayley.hpp"
#include "optimized/device_buffer.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "optimized/fused_views.hpp"
#include "optimized/hqq_merge.hpp"
#include "optimized/hqq_merge_checks.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kThreads = 256;

struct OptimizerState {
  float best;
  int stopped;
  int steps;
};

unsigned blocks_for(long long n) { return static_cast<unsigned>((n + kThreads - 1) / kThreads); }

template <class View>
__global__ void merged_kernel(View w, int out, int in, const float* a, const float* b, int rank, float scaling,
                              const float* rotation, int block_size, float* merged) {
  const long long f = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= static_cast<long long>(out) * in) return;
  const int o = static_cast<int>(f / in), i = static_cast<int>(f % in);
  merged[f] = rank > 0 ? merged_lora_element(w, o, i, a, b, rank, in, scaling)
                       : merged_oft_element(w, o, i, rotation, block_size);
}

__global__ void start_kernel(HqqMergeGrouping g, int axis, const float* merged, float* inv, float* zero) {
  const int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (k < g.groups) hqq_group_start(g.group(merged, k, axis), g.params, inv[k], zero[k]);
}

__global__ void step_kernel(HqqMergeGrouping g, int axis, const float* merged, const float* inv, float* zero,
                            double* err, const OptimizerState* state) {
  if (state->stopped) return;
  const int k = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
  if (k < g.groups) err[k] = hqq_group_step(g.group(merged, k, axis), g.params, inv[k], zero[k]);
}

// One block: the global mean |W - W_r| (double sums in a fixed order, so the decision is
// deterministic), then hqq's early stop. The stopping step's zero update is kept.
__global__ void decide_kernel(const double* err, int groups, long long elements, OptimizerState* state) {
  __shared__ double partial[kThreads];
  if (state->stopped) return;
  double sum = 0.0;
  for (int k = static_cast<int>(threadIdx.x); k < groups; k += kThreads) sum += err[k];
  partial[threadIdx.x] = sum;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s /= 2) {
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

__global__ void codes_kernel(HqqMergeGrouping g, int axis, const float* merged, const float* inv, const float* zero,
                             long long elements, int* codes) {
  const long long f = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= elements) return;
  const int k = axis == 1 ? static_cast<int>(f / g.cols) : static_cast<int>(f % g.cols);
  codes[f] = static_cast<int>(hqq_code(merged[f], inv[k], zero[k], g.params.max_code));
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

  const std::vector<float> rotation = l.oft.empty() ? std::vector<float>{} : rotation_blocks_on_gpu(l, l.oft[0]);
  Uploads up;
  const HqqView view = make_view(hw, l, [&](const auto& v) { return up(v); });
  const float *lora_a = up(l.lora_a), *lora_b = up(l.lora_b), *rot = up(rotation);

  DeviceBuffer<float> merged(static_cast<size_t>(elements)), inv(g.groups), zero(g.groups), scale(g.groups);
  DeviceBuffer<double> err(g.groups);
  DeviceBuffer<int> codes(static_cast<size_t>(elements));
  DeviceBuffer<OptimizerState> state(1);
  state.upload({OptimizerState{std::numeric_limits<float>::infinity(), hw.optimize ? 0 : 1, 0}});

  merged_kernel<<<blocks_for(elements), kThreads>>>(view, l.out_features, l.in_features, lora_a, lora_b, l.rank,
                                                    l.scaling, rot, l.oft.empty() ? 0 : l.oft[0].block_size, merged.get());
  start_kernel<<<blocks_for(g.groups), kThreads>>>(g, hw.axis, merged.get(), inv.get(), zero.get());
  for (int it = 0; hw.optimize && it < hw.iters; ++it) {  // launched unconditionally; a stopped state skips
    step_kernel<<<blocks_for(g.groups), kThreads>>>(g, hw.axis, merged.get(), inv.get(), zero.get(), err.get(), state.get());
    decide_kernel<<<1, kThreads>>>(err.get(), g.groups, elements, state.get());
  }
  codes_kernel<<<blocks_for(elements), kThreads>>>(g, hw.axis, merged.get(), inv.get(), zero.get(), elements, codes.get());
  scale_kernel<<<blocks_for(g.groups), kThreads>>>(g.groups, inv.get(), scale.get());
  check_cuda(cudaGetLastError(), "hqq_merge launches");

  HqqMergeResult out;
  out.codes = codes.download();
  out.scale = scale.download();
  out.zero = zero.download();
  out.steps = state.download()[0].steps;
  return out;
}

}  // namespace qoracle::optimized

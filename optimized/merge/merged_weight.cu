// The merged weight on the device: one thread per element, the element code of merged_weight.hpp.
#include <cuda_runtime.h>

#include <utility>
#include <variant>

#include "optimized/device/device_buffer.hpp"
#include "optimized/device/elementwise_launch.cuh"
#include "optimized/merge/merged_weight_launch.hpp"

namespace qoracle::optimized {

namespace {

template <class View>
__global__ void lora_kernel(View w, int out, int in, LoraMergeTerms terms, float* merged) {
  const long long f = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= static_cast<long long>(out) * in) return;
  merged[f] = merged_lora_element(w, static_cast<int>(f / in), static_cast<int>(f % in), terms);
}

template <class View>
__global__ void oft_kernel(View w, int out, int in, RotationBlocks rot, float* merged) {
  const long long f = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (f >= static_cast<long long>(out) * in) return;
  merged[f] = merged_oft_element(w, static_cast<int>(f / in), static_cast<int>(f % in), rot);
}

}  // namespace

void launch_merged_weight(const ResidentTensors& t, float* merged, float* other) {
  const HostLayer& l = t.meta;
  const FusedAdapters& a = t.adapters;
  const long long elements = static_cast<long long>(l.out_features) * l.in_features;
  std::visit(
      [&](const auto& view) {
        if (l.rank > 0) {
          const LoraMergeTerms terms{a.lora_a, a.lora_b, a.dot_scale, l.rank, l.in_features, a.scaling};
          lora_kernel<<<elementwise_blocks(elements), kElementwiseThreads, 0, t.stream>>>(view, l.out_features,
                                                                                          l.in_features, terms, merged);
          return;
        }
        // The last adapter rotates the stored weight, each earlier one the result so far (two
        // buffers, ping-pong, arranged so that the first adapter writes `merged`).
        const int n = a.rotations;
        float* dst = n % 2 == 1 ? merged : other;
        for (int k = n; k-- > 0;) {
          const RotationBlocks rot = rotation_at(a, k);
          if (k + 1 == n) {
            oft_kernel<<<elementwise_blocks(elements), kElementwiseThreads, 0, t.stream>>>(view, l.out_features,
                                                                                           l.in_features, rot, dst);
          } else {
            float* src = dst;
            dst = src == merged ? other : merged;
            oft_kernel<<<elementwise_blocks(elements), kElementwiseThreads, 0, t.stream>>>(
                DenseView{src, l.in_features}, l.out_features, l.in_features, rot, dst);
          }
        }
      },
      t.view);
  check_cuda(cudaGetLastError(), "merged weight launches");
}

}  // namespace qoracle::optimized

// The merged weight on the device: one thread per element, the element code of merged_weight.hpp.
#include <cuda_runtime.h>

#include <utility>
#include <variant>

#include "optimized/rotation/batched_cayley_launch.hpp"
#include "optimized/device/elementwise_launch.cuh"
#include "optimized/layer/fused_views.hpp"
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

const float* merged_weight_on_device(const HostLayer& l, Uploads& keep) {
  const long long elements = static_cast<long long>(l.out_features) * l.in_features;
  float* merged = keep.allocate<float>(static_cast<size_t>(elements));
  std::visit(
      [&](const auto& weights) {
        const auto view = make_view(weights, l, [&](const auto& v) { return keep(v); });
        if (l.rank > 0) {
          const LoraMergeTerms terms = lora_merge_terms(l, keep(l.lora_a), keep(l.lora_b), keep(l.dot_scale));
          lora_kernel<<<elementwise_blocks(elements), kElementwiseThreads>>>(view, l.out_features, l.in_features, terms, merged);
          return;
        }
        // The last adapter rotates the stored weight, each earlier one the result so far (two
        // buffers, ping-pong).
        float* other = l.oft.size() > 1 ? keep.allocate<float>(static_cast<size_t>(elements)) : nullptr;
        for (std::size_t k = l.oft.size(); k-- > 0;) {
          const RotationBlocks rot =
              rotation_blocks(rotation_blocks_on_device(l.oft[k], keep), l.oft[k].block_size, l.oft[k].block_share);
          if (k + 1 == l.oft.size()) {
            oft_kernel<<<elementwise_blocks(elements), kElementwiseThreads>>>(view, l.out_features, l.in_features, rot, merged);
          } else {
            std::swap(merged, other);
            oft_kernel<<<elementwise_blocks(elements), kElementwiseThreads>>>(DenseView{other, l.in_features}, l.out_features,
                                                           l.in_features, rot, merged);
          }
        }
      },
      l.weights);
  check_cuda(cudaGetLastError(), "merged weight launches");
  return merged;
}

}  // namespace qoracle::optimized

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

// OFT blocks up to kTileBlock wide: a block of threads owns kTileRows rows of one OFT block j,
// reads that W tile (each element once, through the view) and R_j into shared memory, then each
// output sums over k in the element code's order. A thread per element would read R_j column-wise,
// 32 sectors per warp load.
constexpr int kTileRows = 32, kTileBlock = 64, kTileThreads = 256;

template <class View>
__global__ void __launch_bounds__(kTileThreads) oft_tile_kernel(View w, int out, int in, RotationBlocks rot, float* merged) {
  __shared__ float wt[kTileRows * kTileBlock];
  __shared__ float rt[kTileBlock * (kTileBlock + 1)];  // row c at c (b + 1): conflict-free across c
  const int b = rot.block_size, j = static_cast<int>(blockIdx.y), o0 = static_cast<int>(blockIdx.x) * kTileRows;
  const int tid = static_cast<int>(threadIdx.x);
  const float* r = rot.block(j);
  for (int e = tid; e < kTileRows * b; e += kTileThreads) {
    const int m = e / b, k = e % b;
    wt[m * b + k] = o0 + m < out ? w(o0 + m, j * b + k) : 0.0f;
  }
  for (int e = tid; e < b * b; e += kTileThreads) rt[(e / b) * (b + 1) + e % b] = r[e];
  __syncthreads();
  for (int e = tid; e < kTileRows * b; e += kTileThreads) {
    const int m = e / b, c = e % b;
    if (o0 + m >= out) continue;
    float acc = 0.0f;
    for (int k = 0; k < b; ++k) acc += wt[m * b + k] * rt[c * (b + 1) + k];  // merged_oft_element's order
    merged[static_cast<long long>(o0 + m) * in + j * b + c] = acc;
  }
}

template <class View>
void launch_oft(const View& view, int out, int in, const RotationBlocks& rot, float* dst, cudaStream_t s) {
  const long long elements = static_cast<long long>(out) * in;
  if (rot.block_size <= kTileBlock) {
    const dim3 grid(static_cast<unsigned>((out + kTileRows - 1) / kTileRows), static_cast<unsigned>(in / rot.block_size));
    oft_tile_kernel<<<grid, kTileThreads, 0, s>>>(view, out, in, rot, dst);
  } else {
    oft_kernel<<<elementwise_blocks(elements), kElementwiseThreads, 0, s>>>(view, out, in, rot, dst);
  }
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
            launch_oft(view, l.out_features, l.in_features, rot, dst, t.stream);
          } else {
            float* src = dst;
            dst = src == merged ? other : merged;
            launch_oft(DenseView{src, l.in_features}, l.out_features, l.in_features, rot, dst, t.stream);
          }
        }
      },
      t.view);
  check_cuda(cudaGetLastError(), "merged weight launches");
}

}  // namespace qoracle::optimized

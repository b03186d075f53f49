#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "optimized/batched_cayley.hpp"
#include "optimized/block_sync.cuh"
#include "optimized/device_buffer.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemv.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "optimized/fused_views.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kWarpsPerBlock = 8;

// Grid: (output tiles of 8 features, tokens). Each block rotates its token's activations into
// shared memory once, then each warp produces one output feature.
template <class View>
__global__ void fused_gemv_kernel(View w, FusedAdapters a, const float* x, int in, int out, float* y) {
  extern __shared__ float smem[];
  float* x_rot = smem;
  float* u = smem + in;
  const int t = static_cast<int>(blockIdx.y);
  fused_prologue(x + static_cast<size_t>(t) * in, in, a, x_rot, u, static_cast<int>(threadIdx.x),
                 static_cast<int>(blockDim.x), BlockSync{});
  const int warp = static_cast<int>(threadIdx.x) / kWarpLanes, lane = static_cast<int>(threadIdx.x) % kWarpLanes;
  const int o = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (o >= out) return;
  float acc = fused_dot(w, o, x_rot, in, lane, kWarpLanes);
  for (int offset = kWarpLanes / 2; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
  if (lane == 0) y[static_cast<size_t>(t) * out + o] = fused_epilogue(acc, o, a, u);
}

// Device copies of host vectors, alive as long as this object.
class Uploads {
 public:
  template <class T>
  const T* operator()(const std::vector<T>& v) {
    if (v.empty()) return nullptr;
    auto buf = std::make_shared<DeviceBuffer<T>>(v.size());
    buf->upload(v);
    keep_.push_back(buf);
    return buf->get();
  }

 private:
  std::vector<std::shared_ptr<void>> keep_;
};

}  // namespace

std::vector<float> fused_gemv(const HostLayer& l, const std::vector<float>& x, int tokens) {
  check_fused_layer(l, x.size(), tokens);
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);

  // R per block with the batched Cayley kernel (block_share: one, replicated).
  std::vector<float> rotation;
  if (!l.oft_params.empty()) {
    const std::vector<float> r = batched_cayley({l.oft_rows, l.oft_block_size, l.neumann, l.terms}, l.oft_params);
    if (l.block_share)
      for (int j = 0; j < l.in_features / l.oft_block_size; ++j) rotation.insert(rotation.end(), r.begin(), r.end());
    else
      rotation = r;
  }
  Uploads up;
  const FusedAdapters a = fused_adapters(l, up(rotation), up(l.lora_a), up(l.lora_b), up(l.bias));
  const float* d_x = up(x);
  DeviceBuffer<float> d_y(static_cast<size_t>(tokens) * l.out_features);
  const size_t smem = sizeof(float) * (static_cast<size_t>(l.in_features) + l.rank);
  const dim3 grid((l.out_features + kWarpsPerBlock - 1) / kWarpsPerBlock, tokens);
  std::visit(
      [&](const auto& w) {
        const auto view = make_view(w, l, [&](const auto& v) { return up(v); });
        auto kernel = fused_gemv_kernel<std::decay_t<decltype(view)>>;
        if (smem > 48 * 1024)
          check_cuda(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)),
                     "shared memory for in_features + rank (at most ~99 KB on sm_80/sm_90 without tiling)");
        kernel<<<grid, kWarpsPerBlock * kWarpLanes, smem>>>(view, a, d_x, l.in_features, l.out_features, d_y.get());
        check_cuda(cudaGetLastError(), "fused_gemv_kernel launch");
      },
      l.weights);
  return d_y.download();
}

}  // namespace qoracle::optimized

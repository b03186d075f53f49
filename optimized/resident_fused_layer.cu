#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "optimized/batched_cayley_launch.hpp"
#include "optimized/block_sync.cuh"
#include "optimized/device_activations.cuh"
#include "optimized/device_buffer.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemm.hpp"
#include "optimized/fused_gemv.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "optimized/fused_views.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kWarpsPerBlock = 8;

// The GEMV. Grid: (output tiles of 8 features, tokens). Each block rotates its token's activations
// into shared memory once, then each warp produces one output feature. X: float, __half or
// __nv_bfloat16 activations (x and y); arithmetic in float32.
template <class View, class X>
__global__ void fused_gemv_kernel(View w, FusedAdapters a, const X* x, int in, int out, X* y) {
  extern __shared__ float smem[];
  float* x_rot = smem;
  float* u = smem + in;
  float* scratch = u + a.rank;  // in floats, with two or more rotations
  const int t = static_cast<int>(blockIdx.y);
  fused_prologue(x + static_cast<size_t>(t) * in, in, a, x_rot, scratch, u, static_cast<int>(threadIdx.x),
                 static_cast<int>(blockDim.x), BlockSync{});
  const int warp = static_cast<int>(threadIdx.x) / kWarpLanes, lane = static_cast<int>(threadIdx.x) % kWarpLanes;
  const int o = static_cast<int>(blockIdx.x) * kWarpsPerBlock + warp;
  if (o >= out) return;
  float acc = fused_dot(w, o, x_rot, in, lane, kWarpLanes);
  for (int offset = kWarpLanes / 2; offset > 0; offset /= 2) acc += __shfl_down_sync(0xffffffffu, acc, offset);
  if (lane == 0) y[static_cast<size_t>(t) * out + o] = static_cast<X>(fused_epilogue(acc, o, a, u));
}

// Grid: (output tiles of kGemmTileOut, token tiles of kGemmTileTokens), kGemmThreads threads.
template <class View, class X>
__global__ void fused_gemm_kernel(View w, FusedAdapters a, const X* x, int tokens, int in, int out, int bk, X* y) {
  extern __shared__ float smem[];
  float* xs = smem;
  float* x_rot = xs + kGemmTileTokens * bk;
  float* ws = x_rot + kGemmTileTokens * bk;
  float* u = ws + kGemmTileOut * bk;
  const int tid = static_cast<int>(threadIdx.x), n = static_cast<int>(blockDim.x);
  const int o0 = static_cast<int>(blockIdx.x) * kGemmTileOut, t0 = static_cast<int>(blockIdx.y) * kGemmTileTokens;
  for (int e = tid; e < kGemmTileTokens * a.rank; e += n) u[e] = 0.0f;  // first read after a barrier
  float acc[kGemmAccumulators] = {};
  for (int k0 = 0; k0 < in; k0 += bk) {
    const float* tile = gemm_load_activations(x, tokens, in, t0, k0, bk, a, xs, x_rot, u, tid, n, BlockSync{});
    gemm_load_weights(w, out, in, o0, k0, bk, ws, tid, n, BlockSync{});
    gemm_accumulate<kGemmAccumulators>(ws, tile, bk, acc, tid, n, BlockSync{});
  }
  gemm_epilogue<kGemmAccumulators>(acc, a, u, out, tokens, o0, t0, y, tid, n);
}

}  // namespace

struct ResidentFusedLayer::Impl {
  int in = 0, out = 0, rank = 0, tile_k = 0;
  Activations activations = Activations::Float32;
  Uploads up;
  FusedAdapters adapters;
  std::variant<DenseView, HqqView, AqlmView, EetqView> view;

  size_t gemv_shared_bytes() const {
    const size_t scratch = adapters.rotations > 1 ? static_cast<size_t>(in) : 0;
    return sizeof(float) * (static_cast<size_t>(in) + rank + scratch);
  }
  size_t gemm_shared_bytes() const { return sizeof(float) * static_cast<size_t>(gemm_shared_floats(tile_k, rank)); }

  // Once per layer, not per launch: more dynamic shared memory than the default 48 KB.
  void reserve_shared_memory() const {
    std::visit(
        [&](const auto& v) {
          with_activation_type(activations, [&](auto* type) {
            using V = std::decay_t<decltype(v)>;
            using X = std::remove_pointer_t<decltype(type)>;
            if (gemv_shared_bytes() > 48 * 1024)
              check_cuda(cudaFuncSetAttribute(fused_gemv_kernel<V, X>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(gemv_shared_bytes())),
                         "shared memory for in_features + rank (at most ~227 KB on sm_90, ~163 KB on sm_80)");
            if (gemm_shared_bytes() > 48 * 1024)
              check_cuda(cudaFuncSetAttribute(fused_gemm_kernel<V, X>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                              static_cast<int>(gemm_shared_bytes())),
                         "shared memory for the GEMM tiles and u (rank too large?)");
          });
        },
        view);
  }

  // Up to kGemvMaxTokens tokens: one warp per output reads each weight once per token; more
  // tokens: the tiled GEMM reads each weight tile once per kGemmTileTokens tokens. x and y hold
  // the layer's activation dtype.
  void launch(const void* d_x, int tokens, void* d_y) const {
    std::visit(
        [&](const auto& v) {
          with_activation_type(activations, [&](auto* type) {
            using X = std::remove_pointer_t<decltype(type)>;
            const X* x = static_cast<const X*>(d_x);
            X* y = static_cast<X*>(d_y);
            if (tokens <= kGemvMaxTokens) {
              const dim3 grid((out + kWarpsPerBlock - 1) / kWarpsPerBlock, tokens);
              fused_gemv_kernel<<<grid, kWarpsPerBlock * kWarpLanes, gemv_shared_bytes()>>>(v, adapters, x, in, out, y);
              check_cuda(cudaGetLastError(), "fused_gemv_kernel launch");
            } else {
              const dim3 grid((out + kGemmTileOut - 1) / kGemmTileOut, (tokens + kGemmTileTokens - 1) / kGemmTileTokens);
              fused_gemm_kernel<<<grid, kGemmThreads, gemm_shared_bytes()>>>(v, adapters, x, tokens, in, out, tile_k, y);
              check_cuda(cudaGetLastError(), "fused_gemm_kernel launch");
            }
          });
        },
        view);
  }
};

ResidentFusedLayer::ResidentFusedLayer(const HostLayer& l) {
  check_fused_layer(l, static_cast<size_t>(l.in_features), 1);
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);
  auto impl = std::make_unique<Impl>();
  impl->in = l.in_features;
  impl->out = l.out_features;
  impl->rank = l.rank;
  impl->activations = l.activations;
  impl->tile_k = gemm_tile_k(rotation_unit(l));
  std::vector<const float*> rotations;
  for (const HostRotation& r : l.oft) rotations.push_back(rotation_blocks_on_device(r, impl->up));
  impl->adapters = fused_adapters(l, rotations, [&](const auto& v) { return impl->up(v); });
  std::visit([&](const auto& w) { impl->view = make_view(w, l, [&](const auto& v) { return impl->up(v); }); },
             l.weights);
  impl->reserve_shared_memory();
  impl_ = impl.release();
}

ResidentFusedLayer::~ResidentFusedLayer() { delete impl_; }

std::vector<float> ResidentFusedLayer::forward(const std::vector<float>& x, int tokens) const {
  check_activations(x, tokens, impl_->in);
  return run_on_device(x, static_cast<size_t>(tokens) * impl_->out, impl_->activations,
                       [&](const void* d_x, void* d_y) { impl_->launch(d_x, tokens, d_y); });
}

double ResidentFusedLayer::time_forward(int tokens, int iterations) const {
  return time_on_device(static_cast<size_t>(tokens) * impl_->in, static_cast<size_t>(tokens) * impl_->out,
                        impl_->activations, iterations, [&](const void* d_x, void* d_y) { impl_->launch(d_x, tokens, d_y); });
}

std::vector<float> fused_forward(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  return ResidentFusedLayer(layer).forward(x, tokens);
}

}  // namespace qoracle::optimized

#include <cuda_runtime.h>

#include <memory>
#include <string>

#include "optimized/batched_cayley.hpp"
#include "optimized/block_sync.cuh"
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

// The GEMV. Grid: (output tiles of 8 features, tokens). Each block rotates its token's activations into
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

// Grid: (output tiles of kGemmTileOut, token tiles of kGemmTileTokens), kGemmThreads threads.
template <class View>
__global__ void fused_gemm_kernel(View w, FusedAdapters a, const float* x, int tokens, int in, int out, int bk, float* y) {
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
    gemm_load_activations(x, tokens, in, t0, k0, bk, a, xs, x_rot, u, tid, n, BlockSync{});
    gemm_load_weights(w, out, in, o0, k0, bk, ws, tid, n, BlockSync{});
    gemm_accumulate<kGemmAccumulators>(ws, x_rot, bk, acc, tid, n, BlockSync{});
  }
  gemm_epilogue<kGemmAccumulators>(acc, a, u, out, tokens, o0, t0, y, tid, n);
}

struct CudaEvent {
  cudaEvent_t e{};
  CudaEvent() { check_cuda(cudaEventCreate(&e), "cudaEventCreate"); }
  ~CudaEvent() { cudaEventDestroy(e); }
};

}  // namespace

struct ResidentFusedLayer::Impl {
  int in = 0, out = 0, rank = 0, tile_k = 0;
  Uploads up;
  FusedAdapters adapters;
  std::variant<DenseView, HqqView, AqlmView, EetqView> view;

  size_t gemv_shared_bytes() const { return sizeof(float) * (static_cast<size_t>(in) + rank); }
  size_t gemm_shared_bytes() const { return sizeof(float) * static_cast<size_t>(gemm_shared_floats(tile_k, rank)); }

  // Once per layer, not per launch: more dynamic shared memory than the default 48 KB.
  void reserve_shared_memory() const {
    std::visit(
        [&](const auto& v) {
          using V = std::decay_t<decltype(v)>;
          if (gemv_shared_bytes() > 48 * 1024)
            check_cuda(cudaFuncSetAttribute(fused_gemv_kernel<V>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(gemv_shared_bytes())),
                       "shared memory for in_features + rank (at most ~99 KB on sm_80/sm_90 without tiling)");
          if (gemm_shared_bytes() > 48 * 1024)
            check_cuda(cudaFuncSetAttribute(fused_gemm_kernel<V>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                            static_cast<int>(gemm_shared_bytes())),
                       "shared memory for the GEMM tiles and u (rank too large?)");
        },
        view);
  }

  // Up to kGemvMaxTokens tokens: one warp per output reads each weight once per token; more
  // tokens: the tiled GEMM reads each weight tile once per kGemmTileTokens tokens.
  void launch(const float* d_x, int tokens, float* d_y) const {
    std::visit(
        [&](const auto& v) {
          if (tokens <= kGemvMaxTokens) {
            const dim3 grid((out + kWarpsPerBlock - 1) / kWarpsPerBlock, tokens);
            fused_gemv_kernel<<<grid, kWarpsPerBlock * kWarpLanes, gemv_shared_bytes()>>>(v, adapters, d_x, in, out, d_y);
            check_cuda(cudaGetLastError(), "fused_gemv_kernel launch");
          } else {
            const dim3 grid((out + kGemmTileOut - 1) / kGemmTileOut, (tokens + kGemmTileTokens - 1) / kGemmTileTokens);
            fused_gemm_kernel<<<grid, kGemmThreads, gemm_shared_bytes()>>>(v, adapters, d_x, tokens, in, out, tile_k, d_y);
            check_cuda(cudaGetLastError(), "fused_gemm_kernel launch");
          }
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
  impl->tile_k = gemm_tile_k(l.oft_params.empty() ? 1 : l.oft_block_size);
  const std::vector<float> rotation = l.oft_params.empty() ? std::vector<float>{} : rotation_blocks_on_gpu(l);
  impl->adapters = fused_adapters(l, impl->up(rotation), impl->up(l.lora_a), impl->up(l.lora_b), impl->up(l.lora_bias),
                                  impl->up(l.bias));
  std::visit([&](const auto& w) { impl->view = make_view(w, l, [&](const auto& v) { return impl->up(v); }); },
             l.weights);
  impl->reserve_shared_memory();
  impl_ = impl.release();
}

ResidentFusedLayer::~ResidentFusedLayer() { delete impl_; }

std::vector<float> ResidentFusedLayer::forward(const std::vector<float>& x, int tokens) const {
  if (tokens < 1 || x.size() != static_cast<size_t>(tokens) * impl_->in)
    throw Error("x: expected " + std::to_string(tokens) + " x " + std::to_string(impl_->in) + " values, got " +
                std::to_string(x.size()));
  DeviceBuffer<float> d_x(x.size()), d_y(static_cast<size_t>(tokens) * impl_->out);
  d_x.upload(x);
  impl_->launch(d_x.get(), tokens, d_y.get());
  return d_y.download();
}

double ResidentFusedLayer::time_forward(int tokens, int iterations) const {
  DeviceBuffer<float> d_x(static_cast<size_t>(tokens) * impl_->in), d_y(static_cast<size_t>(tokens) * impl_->out);
  check_cuda(cudaMemset(d_x.get(), 0, sizeof(float) * tokens * impl_->in), "cudaMemset");
  impl_->launch(d_x.get(), tokens, d_y.get());  // warm-up
  CudaEvent start, stop;
  check_cuda(cudaEventRecord(start.e), "cudaEventRecord");
  for (int i = 0; i < iterations; ++i) impl_->launch(d_x.get(), tokens, d_y.get());
  check_cuda(cudaEventRecord(stop.e), "cudaEventRecord");
  check_cuda(cudaEventSynchronize(stop.e), "cudaEventSynchronize");
  float ms = 0;
  check_cuda(cudaEventElapsedTime(&ms, start.e, stop.e), "cudaEventElapsedTime");
  return ms * 1e-3 / iterations;
}

std::vector<float> fused_forward(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  return ResidentFusedLayer(layer).forward(x, tokens);
}

}  // namespace qoracle::optimized

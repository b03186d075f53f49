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

struct CudaEvent {
  cudaEvent_t e{};
  CudaEvent() { check_cuda(cudaEventCreate(&e), "cudaEventCreate"); }
  ~CudaEvent() { cudaEventDestroy(e); }
};

}  // namespace

struct FusedGemvLayer::Impl {
  int in = 0, out = 0, rank = 0;
  Uploads up;
  FusedAdapters adapters;
  std::variant<DenseView, HqqView, AqlmView, EetqView> view;

  size_t shared_bytes() const { return sizeof(float) * (static_cast<size_t>(in) + rank); }

  // Once per layer, not per launch: more dynamic shared memory than the default 48 KB.
  void reserve_shared_memory() const {
    if (shared_bytes() <= 48 * 1024) return;
    std::visit(
        [&](const auto& v) {
          check_cuda(cudaFuncSetAttribute(fused_gemv_kernel<std::decay_t<decltype(v)>>,
                                          cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(shared_bytes())),
                     "shared memory for in_features + rank (at most ~99 KB on sm_80/sm_90 without tiling)");
        },
        view);
  }

  void launch(const float* d_x, int tokens, float* d_y) const {
    const dim3 grid((out + kWarpsPerBlock - 1) / kWarpsPerBlock, tokens);
    std::visit(
        [&](const auto& v) {
          fused_gemv_kernel<<<grid, kWarpsPerBlock * kWarpLanes, shared_bytes()>>>(v, adapters, d_x, in, out, d_y);
          check_cuda(cudaGetLastError(), "fused_gemv_kernel launch");
        },
        view);
  }
};

FusedGemvLayer::FusedGemvLayer(const HostLayer& l) {
  check_fused_layer(l, static_cast<size_t>(l.in_features), 1);
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);
  auto impl = std::make_unique<Impl>();
  impl->in = l.in_features;
  impl->out = l.out_features;
  impl->rank = l.rank;
  const std::vector<float> rotation = l.oft_params.empty() ? std::vector<float>{} : rotation_blocks_on_gpu(l);
  impl->adapters = fused_adapters(l, impl->up(rotation), impl->up(l.lora_a), impl->up(l.lora_b), impl->up(l.bias));
  std::visit([&](const auto& w) { impl->view = make_view(w, l, [&](const auto& v) { return impl->up(v); }); },
             l.weights);
  impl->reserve_shared_memory();
  impl_ = impl.release();
}

FusedGemvLayer::~FusedGemvLayer() { delete impl_; }

std::vector<float> FusedGemvLayer::forward(const std::vector<float>& x, int tokens) const {
  if (tokens < 1 || x.size() != static_cast<size_t>(tokens) * impl_->in)
    throw Error("x: expected " + std::to_string(tokens) + " x " + std::to_string(impl_->in) + " values, got " +
                std::to_string(x.size()));
  DeviceBuffer<float> d_x(x.size()), d_y(static_cast<size_t>(tokens) * impl_->out);
  d_x.upload(x);
  impl_->launch(d_x.get(), tokens, d_y.get());
  return d_y.download();
}

double FusedGemvLayer::time_forward(int tokens, int iterations) const {
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

std::vector<float> fused_gemv(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  return FusedGemvLayer(layer).forward(x, tokens);
}

}  // namespace qoracle::optimized

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <string>
#include <variant>

#include "bench/peft_order_gpu/peft_order_layer.hpp"
#include "optimized/batched_cayley_launch.hpp"
#include "optimized/device_activations.cuh"
#include "optimized/device_buffer.hpp"
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "optimized/fused_views.hpp"
#include "reference/error.hpp"

namespace qoracle::bench {

using namespace qoracle::optimized;

namespace {

constexpr int kThreads = 256;

unsigned grid_for(size_t n) { return static_cast<unsigned>(std::max<size_t>(1, std::min<size_t>((n + kThreads - 1) / kThreads, 1u << 20))); }

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(std::string(what) + ": " + cublasGetStatusString(s));
}

cudaDataType_t data_type(const float*) { return CUDA_R_32F; }
cudaDataType_t data_type(const __half*) { return CUDA_R_16F; }
cudaDataType_t data_type(const __nv_bfloat16*) { return CUDA_R_16BF; }

// W (out, in) in the activation dtype, decoded from the stored bytes: what hqq's dequantize()
// materializes every forward.
template <class View, class X>
__global__ void dequantize_kernel(View w, int out, int in, X* dst) {
  const size_t n = static_cast<size_t>(out) * in;
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[e] = static_cast<X>(w(static_cast<int>(e / in), static_cast<int>(e % in)));
}

template <class X>
__global__ void convert_kernel(const float* src, size_t n, float scale, X* dst) {
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[e] = static_cast<X>(scale * src[e]);
}

struct Tail {
  const float* dot_scale = nullptr;  // DoRA's factor on x W^T
  const float* bias = nullptr;
  const float* lora_bias = nullptr;
  float lora_scaling = 0.0f;         // on lora_bias (B carries it already)
};

// y <- dot_scale y + bias + v + scaling lora_bias, elementwise (v: LoRA's u B^T, or none).
template <class X>
__global__ void tail_kernel(X* y, const X* v, Tail t, int tokens, int out) {
  const size_t n = static_cast<size_t>(tokens) * out;
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int o = static_cast<int>(e % out);
    float r = static_cast<float>(y[e]);
    if (t.dot_scale) r *= t.dot_scale[o];
    if (t.bias) r += t.bias[o];
    if (v) r += static_cast<float>(v[e]);
    if (t.lora_bias) r += t.lora_scaling * t.lora_bias[o];
    y[e] = static_cast<X>(r);
  }
}

// Row-major C (rows x cols) = A (rows x depth) B^T with B (cols x depth); float32 accumulation. In
// cuBLAS's column-major terms C^T = B A^T.
void matmul_abt(cublasHandle_t h, cudaDataType_t t, int rows, int cols, int depth, const void* a, int lda, const void* b,
                int ldb, void* c, int ldc) {
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasGemmEx(h, CUBLAS_OP_T, CUBLAS_OP_N, cols, rows, depth, &one, b, t, ldb, a, t, lda, &zero, c, t, ldc,
                            CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmEx");
}

// x R_bd for row-major x (tokens, in) and R's row-major b x b blocks (one block serves all when
// `one_block`): per block j, (x_j R_j)^T = R_j^T x_j^T, one strided batched GEMM over the blocks,
// as PEFT's einsum over (tokens, blocks, b) runs.
void rotate(cublasHandle_t h, cudaDataType_t t, int tokens, int in, int b, const void* r, bool one_block, const void* x,
            void* x_rot) {
  const float one = 1.0f, zero = 0.0f;
  check_cublas(cublasGemmStridedBatchedEx(h, CUBLAS_OP_N, CUBLAS_OP_N, b, tokens, b, &one, r, t, b,
                                          one_block ? 0 : static_cast<long long>(b) * b, x, t, in, b, &zero, x_rot, t, in, b,
                                          in / b, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
               "cublasGemmStridedBatchedEx (OFT rotation)");
}

using Bytes = DeviceBuffer<unsigned char>;

}  // namespace

struct PeftOrderGpuLayer::Impl {
  struct Rotation {
    CayleyBatch batch;
    const float* params = nullptr;
    std::unique_ptr<DeviceBuffer<float>> r, scratch;  // R in float32, the Cayley's scratch
    std::unique_ptr<Bytes> r_x;                       // R in the activation dtype
  };

  int in = 0, out = 0, rank = 0;
  Activations activations = Activations::Float32;
  size_t x_bytes = 4;
  cublasHandle_t handle{};
  Uploads up;
  std::variant<DenseView, HqqView, AqlmView, EetqView> view;
  bool resident_w = false;  // a plain linear's W is converted once; quantized W every forward
  std::unique_ptr<Bytes> w, lora_a, lora_b;
  std::vector<Rotation> rotations;
  Tail tail;

  ~Impl() {
    if (handle) cublasDestroy(handle);
  }

  std::unique_ptr<Bytes> bytes(size_t count) const { return std::make_unique<Bytes>(count * x_bytes); }

  template <class X>
  void convert(const float* src, size_t n, float scale, Bytes& dst) const {
    convert_kernel<<<grid_for(n), kThreads>>>(src, n, scale, reinterpret_cast<X*>(dst.get()));
    check_cuda(cudaGetLastError(), "convert_kernel launch");
  }

  template <class X>
  void dequantize() const {
    std::visit(
        [&](const auto& v) {
          dequantize_kernel<<<grid_for(static_cast<size_t>(out) * in), kThreads>>>(v, out, in, reinterpret_cast<X*>(w->get()));
        },
        view);
    check_cuda(cudaGetLastError(), "dequantize_kernel launch");
  }

  // Per-token buffers: two for the rotations' ping-pong, u and v for LoRA.
  struct Workspace {
    std::unique_ptr<Bytes> x_rot[2], u, v;
  };
  Workspace workspace(int tokens) const {
    Workspace ws;
    if (!rotations.empty()) ws.x_rot[0] = bytes(static_cast<size_t>(tokens) * in);
    if (rotations.size() > 1) ws.x_rot[1] = bytes(static_cast<size_t>(tokens) * in);
    if (rank > 0) {
      ws.u = bytes(static_cast<size_t>(tokens) * rank);
      ws.v = bytes(static_cast<size_t>(tokens) * out);
    }
    return ws;
  }

  // One forward, launch by launch, in PEFT's order.
  void launch(const void* x, int tokens, void* y, const Workspace& ws) const {
    with_activation_type(activations, [&](auto* type) {
      using X = std::remove_pointer_t<decltype(type)>;
      const cudaDataType_t t = data_type(type);
      const void* cur = x;
      for (size_t k = 0; k < rotations.size(); ++k) {
        const Rotation& rot = rotations[k];
        launch_batched_cayley(rot.batch, rot.params, rot.r->get(), rot.scratch->get());
        convert<X>(rot.r->get(), static_cast<size_t>(rot.batch.rows) * rot.batch.block_size * rot.batch.block_size, 1.0f,
                   *rot.r_x);
        void* dst = ws.x_rot[k % 2]->get();
        rotate(handle, t, tokens, in, rot.batch.block_size, rot.r_x->get(), rot.batch.rows == 1, cur, dst);
        cur = dst;
      }
      if (!resident_w) dequantize<X>();
      matmul_abt(handle, t, tokens, out, in, cur, in, w->get(), in, y, out);
      if (rank > 0) {
        matmul_abt(handle, t, tokens, rank, in, x, in, lora_a->get(), in, ws.u->get(), rank);
        matmul_abt(handle, t, tokens, out, rank, ws.u->get(), rank, lora_b->get(), rank, ws.v->get(), out);
      }
      if (rank > 0 || tail.bias || tail.dot_scale) {
        tail_kernel<<<grid_for(static_cast<size_t>(tokens) * out), kThreads>>>(
            static_cast<X*>(y), rank > 0 ? reinterpret_cast<const X*>(ws.v->get()) : nullptr, tail, tokens, out);
        check_cuda(cudaGetLastError(), "tail_kernel launch");
      }
    });
  }
};

PeftOrderGpuLayer::PeftOrderGpuLayer(const HostLayer& l) {
  check_fused_layer(l, static_cast<size_t>(l.in_features), 1);
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.in = l.in_features;
  m.out = l.out_features;
  m.rank = l.rank;
  m.activations = l.activations;
  m.x_bytes = activation_bytes(l.activations);
  check_cublas(cublasCreate(&m.handle), "cublasCreate");
  const auto at = [&](const auto& v) { return m.up(v); };
  std::visit([&](const auto& w) { m.view = make_view(w, l, at); }, l.weights);
  m.resident_w = std::holds_alternative<DenseWeights>(l.weights);
  m.w = m.bytes(static_cast<size_t>(m.out) * m.in);
  for (const HostRotation& r : l.oft) {
    Impl::Rotation rot;
    rot.batch = {r.rows, r.block_size, r.neumann, r.terms, r.coft_radius, r.math_series};
    check_cayley_batch(rot.batch, r.params);
    rot.params = at(r.params);
    const size_t blocks = static_cast<size_t>(r.rows) * r.block_size * r.block_size;
    rot.r = std::make_unique<DeviceBuffer<float>>(blocks);
    rot.scratch = std::make_unique<DeviceBuffer<float>>(cayley_global_scratch_floats(rot.batch));
    rot.r_x = m.bytes(blocks);
    m.rotations.push_back(std::move(rot));
  }
  with_activation_type(m.activations, [&](auto* type) {
    using X = std::remove_pointer_t<decltype(type)>;
    if (m.resident_w) m.dequantize<X>();  // the plain linear's W, in its dtype once
    if (m.rank > 0) {
      m.lora_a = m.bytes(l.lora_a.size());
      m.lora_b = m.bytes(l.lora_b.size());
      m.convert<X>(at(l.lora_a), l.lora_a.size(), 1.0f, *m.lora_a);
      m.convert<X>(at(l.lora_b), l.lora_b.size(), l.scaling, *m.lora_b);
    }
  });
  m.tail.bias = at(l.bias);
  m.tail.dot_scale = at(l.dot_scale);
  if (m.rank > 0) {
    m.tail.lora_bias = at(l.lora_bias);
    m.tail.lora_scaling = l.scaling;
  }
  check_cuda(cudaDeviceSynchronize(), "PeftOrderGpuLayer setup");
  impl_ = impl.release();
}

PeftOrderGpuLayer::~PeftOrderGpuLayer() { delete impl_; }

std::vector<float> PeftOrderGpuLayer::forward(const std::vector<float>& x, int tokens) const {
  if (tokens < 1 || x.size() != static_cast<size_t>(tokens) * impl_->in)
    throw Error("x: expected " + std::to_string(tokens) + " x " + std::to_string(impl_->in) + " values, got " +
                std::to_string(x.size()));
  const Impl::Workspace ws = impl_->workspace(tokens);
  return run_on_device(x, static_cast<size_t>(tokens) * impl_->out, impl_->activations,
                       [&](const void* d_x, void* d_y) { impl_->launch(d_x, tokens, d_y, ws); });
}

double PeftOrderGpuLayer::time_forward(int tokens, int iterations) const {
  const Impl::Workspace ws = impl_->workspace(tokens);
  return time_on_device(static_cast<size_t>(tokens) * impl_->in, static_cast<size_t>(tokens) * impl_->out,
                        impl_->activations, iterations,
                        [&](const void* d_x, void* d_y) { impl_->launch(d_x, tokens, d_y, ws); });
}

}  // namespace qoracle::bench

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <memory>
#include <string>
#include <variant>

#include "bench/peft_order_gpu/peft_order_layer.hpp"
#include "optimized/rotation/batched_cayley_launch.hpp"
#include "optimized/device/device_activations.cuh"
#include "optimized/device/device_buffer.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/layer/layer_checks.hpp"
#include "optimized/layer/fused_views.hpp"
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

template <class Dst, class Src>
__global__ void convert_kernel(const Src* src, size_t n, Dst* dst) {
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<size_t>(gridDim.x) * blockDim.x)
    dst[e] = static_cast<Dst>(static_cast<float>(src[e]));
}

struct Tail {
  const float* dot_scale = nullptr;  // DoRA's factor on x W^T
  const float* bias = nullptr;
  const float* lora_bias = nullptr;
  float lora_scaling = 0.0f;
};

// y <- dot_scale y + bias + scaling (v + lora_bias) in float32, rounded once to y's dtype (v: LoRA's
// u B^T in float32, or none), as PEFT adds the float32 LoRA output to the base result and casts.
template <class X>
__global__ void tail_kernel(X* y, const float* v, Tail t, int tokens, int out) {
  const size_t n = static_cast<size_t>(tokens) * out;
  for (size_t e = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; e < n; e += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int o = static_cast<int>(e % out);
    float r = static_cast<float>(y[e]);
    if (t.dot_scale) r *= t.dot_scale[o];
    if (t.bias) r += t.bias[o];
    if (v) r += t.lora_scaling * (v[e] + (t.lora_bias ? t.lora_bias[o] : 0.0f));
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

// x R_bd in float32 for row-major x (tokens, in) and R's row-major b x b blocks (one block serves
// all when `one_block`): per block j, (x_j R_j)^T = R_j^T x_j^T, one strided batched GEMM over the
// blocks, as PEFT's einsum over (tokens, blocks, b) runs in the adapter's float32.
void rotate(cublasHandle_t h, int tokens, int in, int b, const float* r, bool one_block, const float* x, float* x_rot) {
  const cudaDataType_t t = CUDA_R_32F;
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
    std::unique_ptr<DeviceBuffer<float>> r, scratch;  // R per block (float32, PEFT's adapter dtype), the Cayley's scratch
  };

  int in = 0, out = 0, rank = 0;
  Activations activations = Activations::Float32;
  cublasHandle_t handle{};
  Uploads up;
  std::variant<DenseView, HqqView, AqlmView, EetqView> view;
  bool resident_w = false;  // a plain linear's W is converted once; quantized W every forward
  std::unique_ptr<Bytes> w;  // W (out, in) in the activation dtype
  const float* lora_a = nullptr;
  const float* lora_b = nullptr;
  std::vector<Rotation> rotations;
  Tail tail;

  ~Impl() {
    if (handle) cublasDestroy(handle);
  }

  bool half() const { return activations != Activations::Float32; }

  template <class X>
  void dequantize() const {
    std::visit(
        [&](const auto& v) {
          dequantize_kernel<<<grid_for(static_cast<size_t>(out) * in), kThreads>>>(v, out, in, reinterpret_cast<X*>(w->get()));
        },
        view);
    check_cuda(cudaGetLastError(), "dequantize_kernel launch");
  }

  // Per-token buffers: x in float32 (16-bit activations, for the adapters), the rotations'
  // ping-pong, x R rounded to the activation dtype, u and v for LoRA.
  struct Workspace {
    std::unique_ptr<DeviceBuffer<float>> x32, z32[2], u, v;
    std::unique_ptr<Bytes> z;
  };
  Workspace workspace(int tokens) const {
    const size_t xs = static_cast<size_t>(tokens) * in;
    auto floats = [](size_t n) { return std::make_unique<DeviceBuffer<float>>(n); };
    Workspace ws;
    if (half() && (!rotations.empty() || rank > 0)) ws.x32 = floats(xs);
    if (!rotations.empty()) ws.z32[0] = floats(xs);
    if (rotations.size() > 1) ws.z32[1] = floats(xs);
    if (half() && !rotations.empty()) ws.z = std::make_unique<Bytes>(xs * activation_bytes(activations));
    if (rank > 0) {
      ws.u = floats(static_cast<size_t>(tokens) * rank);
      ws.v = floats(static_cast<size_t>(tokens) * out);
    }
    return ws;
  }

  // One forward, launch by launch, in PEFT's order and with PEFT's dtypes: the adapters in
  // float32, x R rounded to the activation dtype before the base matmul, the base in that dtype.
  void launch(const void* x, int tokens, void* y, const Workspace& ws) const {
    with_activation_type(activations, [&](auto* type) {
      using X = std::remove_pointer_t<decltype(type)>;
      const size_t xs = static_cast<size_t>(tokens) * in;
      const float* x32 = static_cast<const float*>(x);
      if (ws.x32) {  // PEFT casts x to the adapter's dtype
        convert_kernel<<<grid_for(xs), kThreads>>>(static_cast<const X*>(x), xs, ws.x32->get());
        x32 = ws.x32->get();
      }
      const void* z = x;  // what the base matmul reads
      if (!rotations.empty()) {
        const float* cur = x32;
        for (size_t k = 0; k < rotations.size(); ++k) {
          const Rotation& rot = rotations[k];
          launch_batched_cayley(rot.batch, rot.params, rot.r->get(), rot.scratch->get());
          float* dst = ws.z32[k % 2]->get();
          rotate(handle, tokens, in, rot.batch.block_size, rot.r->get(), rot.batch.rows == 1, cur, dst);
          cur = dst;
        }
        z = cur;
        if (ws.z) {
          convert_kernel<<<grid_for(xs), kThreads>>>(cur, xs, reinterpret_cast<X*>(ws.z->get()));
          z = ws.z->get();
        }
      }
      check_cuda(cudaGetLastError(), "convert_kernel launch");
      if (!resident_w) dequantize<X>();
      matmul_abt(handle, data_type(type), tokens, out, in, z, in, w->get(), in, y, out);
      if (rank > 0) {
        matmul_abt(handle, CUDA_R_32F, tokens, rank, in, x32, in, lora_a, in, ws.u->get(), rank);
        matmul_abt(handle, CUDA_R_32F, tokens, out, rank, ws.u->get(), rank, lora_b, rank, ws.v->get(), out);
      }
      if (rank > 0 || tail.bias || tail.dot_scale) {
        tail_kernel<<<grid_for(static_cast<size_t>(tokens) * out), kThreads>>>(static_cast<X*>(y),
                                                                                rank > 0 ? ws.v->get() : nullptr, tail,
                                                                                tokens, out);
        check_cuda(cudaGetLastError(), "tail_kernel launch");
      }
    });
  }
};

PeftOrderGpuLayer::PeftOrderGpuLayer(const HostLayer& l) {
  check_fused_layer(l, static_cast<size_t>(l.in_features), 1);
  require_device();
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.in = l.in_features;
  m.out = l.out_features;
  m.rank = l.rank;
  m.activations = l.activations;
  check_cublas(cublasCreate(&m.handle), "cublasCreate");
  const auto at = [&](const auto& v) { return m.up(v); };
  std::visit([&](const auto& w) { m.view = make_view(w, l, at); }, l.weights);
  m.resident_w = std::holds_alternative<DenseWeights>(l.weights);
  m.w = std::make_unique<Bytes>(static_cast<size_t>(m.out) * m.in * activation_bytes(m.activations));
  if (m.resident_w)  // the plain linear's W, converted to its dtype once
    with_activation_type(m.activations, [&](auto* type) { m.dequantize<std::remove_pointer_t<decltype(type)>>(); });
  for (const HostRotation& r : l.oft) {
    Impl::Rotation rot;
    rot.batch = cayley_batch(r);  // checked by check_fused_layer
    rot.params = at(r.params);
    rot.r = std::make_unique<DeviceBuffer<float>>(static_cast<size_t>(r.rows) * r.block_size * r.block_size);
    rot.scratch = std::make_unique<DeviceBuffer<float>>(cayley_global_scratch_floats(rot.batch));
    m.rotations.push_back(std::move(rot));
  }
  if (m.rank > 0) {
    m.lora_a = at(l.lora_a);
    m.lora_b = at(l.lora_b);
    m.tail.lora_bias = at(l.lora_bias);
    m.tail.lora_scaling = l.scaling;
  }
  m.tail.bias = at(l.bias);
  m.tail.dot_scale = at(l.dot_scale);
  check_cuda(cudaDeviceSynchronize(), "PeftOrderGpuLayer setup");
  impl_ = impl.release();
}

PeftOrderGpuLayer::~PeftOrderGpuLayer() { delete impl_; }

std::vector<float> PeftOrderGpuLayer::forward(const std::vector<float>& x, int tokens) const {
  check_activations(x, tokens, impl_->in);
  const Impl::Workspace ws = impl_->workspace(tokens);
  return run_on_device(x, static_cast<size_t>(tokens) * impl_->out, impl_->activations,
                       [&](const void* d_x, void* d_y) { impl_->launch(d_x, tokens, d_y, ws); });
}

optimized::ForwardTiming PeftOrderGpuLayer::time_forward(int tokens, int iterations) const {
  const Impl::Workspace ws = impl_->workspace(tokens);
  return time_launches(static_cast<size_t>(tokens) * impl_->in, static_cast<size_t>(tokens) * impl_->out,
                       impl_->activations, iterations, 1, false, cudaStream_t{},
                       [&](int, const void* d_x, void* d_y, cudaStream_t) { impl_->launch(d_x, tokens, d_y, ws); });
}

}  // namespace qoracle::bench

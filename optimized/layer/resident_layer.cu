#include "optimized/layer/resident_layer.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>

#include "optimized/device/activation_io.hpp"
#include "optimized/device/device_activations.cuh"
#include "optimized/device/device_buffer.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/forward/launch.hpp"
#include "optimized/forward/prepass.hpp"
#include "optimized/forward/tc_rotation.hpp"
#include "optimized/layer/fused_views.hpp"
#include "optimized/layer/layer_checks.hpp"
#include "optimized/layer/resident_tensors.cuh"
#include "optimized/rotation/batched_cayley_launch.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

void check_cublas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw Error(std::string(what) + ": cuBLAS status " + std::to_string(static_cast<int>(s)));
}

cudaDataType_t cuda_type(Activations a) {
  switch (a) {
    case Activations::Float16: return CUDA_R_16F;
    case Activations::BFloat16: return CUDA_R_16BF;
    case Activations::Float32: break;
  }
  return CUDA_R_32F;
}

// The GEMM path's scratch (allocated by reserve): x_rot beyond the GEMV's tokens, the dequantized
// weight, and LoRA's u with its column of ones.
constexpr std::size_t kCublasWorkspace = 32u << 20;

// The layer's description for the merges: its sizes, configs and small vectors, not its weights.
HostLayer without_tensors(const HostLayer& l) {
  HostLayer meta = l;
  std::visit(
      [](auto& w) {
        using W = std::decay_t<decltype(w)>;
        if constexpr (std::is_same_v<W, DenseWeights>) {
          w.w = {};
        } else if constexpr (std::is_same_v<W, HqqWeights>) {
          w.w_q8 = {};
          w.w_q32 = {};
          w.scale = {};
          w.zero = {};
        } else if constexpr (std::is_same_v<W, AqlmWeights>) {
          w = AqlmWeights{};
        } else {
          w.bytes = {};
          w.scales = {};
        }
      },
      meta.weights);
  meta.lora_a = {};
  meta.lora_b = {};
  for (HostRotation& r : meta.oft) r.params = {};
  return meta;
}

}  // namespace

struct ResidentFusedLayer::Impl {
  int in = 0, out = 0, rank = 0, unit = 1, sms = 132, r_aug = 0;
  Activations dtype = Activations::Float32;
  bool oft = false, lora = false, dora = false, bias = false;
  RowsKind kind = RowsKind::None;
  int rows_pad = 0, in_pad = 0;
  double bytes = 0;
  Uploads up;
  FusedAdapters adapters;
  AnyRowsLayout layout;
  RowsBase rows;                        // the row layout's host tensors (for replicas)
  Uploads replica_uploads;
  std::vector<AnyRowsLayout> replicas;  // copies of the row layout, for timing with weights in memory
  AnyView view;
  ResidentTensors tensors;
  const void* dense_weight = nullptr;  // a dense base's weight in the activation dtype, ld `dense_ld`
  int dense_ld = 0;
  // Scratch
  int capacity = 0;  // tokens
  void* x_rot = nullptr;
  float* u = nullptr;
  float* partials = nullptr;
  unsigned* counters = nullptr;
  void* weight_scratch = nullptr;
  void* a_dtype = nullptr;  // LoRA A in the activation dtype (rank, in)
  void* b_aug = nullptr;    // (out, r_aug): s B | bias + s b_B | 0
  void* u_aug = nullptr;    // (capacity, r_aug): u | 1 | 0
  std::vector<std::shared_ptr<void>> scratch_keep;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  void* cublas_workspace = nullptr;

  std::size_t elem() const { return activation_bytes(dtype); }

  template <class T>
  T* scratch(std::size_t count) {
    auto buf = std::make_shared<DeviceBuffer<T>>(count);
    check_cuda(cudaMemset(buf->get(), 0, count * sizeof(T)), "cudaMemset scratch");
    scratch_keep.push_back(buf);
    return buf->get();
  }

  int max_splits() const {
    int splits = 1;
    if (kind == RowsKind::None) return 1;
    std::visit(
        [&](const auto& by_tag) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(by_tag)>, std::monostate>)
            std::visit(
                [&](const auto& w) {
                  for (int t : {8, 16})
                    splits = std::max(splits, plan_gemv(rows_pad, in_pad, 4 * std::decay_t<decltype(w)>::kLaneInputs, t, sms,
                                                        shared_codebook_bytes(w))
                                                  .splits);
                },
                by_tag);
        },
        layout);
    return splits;
  }

  GemvPlan plan(int tokens) const {
    GemvPlan p;
    std::visit(
        [&](const auto& by_tag) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(by_tag)>, std::monostate>)
            std::visit(
                [&](const auto& w) {
                  p = plan_gemv(rows_pad, in_pad, 4 * std::decay_t<decltype(w)>::kLaneInputs, tokens, sms, shared_codebook_bytes(w));
                },
                by_tag);
        },
        layout);
    return p;
  }

  void reserve(int tokens) {
    if (tokens <= capacity) return;
    const int cap = std::max(tokens, kGemvMaxTokens);
    if (oft) x_rot = scratch<unsigned char>(static_cast<std::size_t>(cap) * in * elem());
    if (capacity == 0) {
      if (lora) u = scratch<float>(static_cast<std::size_t>(kGemvMaxTokens) * rank);
      if (kind != RowsKind::None) {
        partials = scratch<float>(static_cast<std::size_t>(max_splits()) * kGemvMaxTokens * rows_pad);
        counters = scratch<unsigned>(static_cast<std::size_t>((rows_pad + kGemvBlockRows - 1) / kGemvBlockRows));
      }
    }
    if (cap > kGemvMaxTokens) gemm_scratch(cap);
    capacity = cap;
  }

  void gemm_scratch(int cap) {
    if (!cublas) {
      check_cublas(cublasCreate(&cublas), "cublasCreate");
      cublas_workspace = scratch<unsigned char>(kCublasWorkspace);
      check_cublas(cublasSetWorkspace(cublas, cublas_workspace, kCublasWorkspace), "cublasSetWorkspace");
      if (!dense_weight || dora)
        weight_scratch = scratch<unsigned char>(static_cast<std::size_t>(out) * weight_ld() * elem());
    }
    if (r_aug > 0) {
      std::vector<float> ones(static_cast<std::size_t>(cap) * r_aug, 0.0f);
      for (int t = 0; t < cap; ++t) ones[static_cast<std::size_t>(t) * r_aug + rank] = 1.0f;
      u_aug = upload_dtype(ones);
    }
  }

  int weight_ld() const { return kind != RowsKind::None ? in_pad : in; }

  // Host floats to a device buffer in the activation dtype.
  void* upload_dtype(const std::vector<float>& v) {
    void* d = scratch<unsigned char>(v.size() * elem());
    if (dtype == Activations::Float32)
      check_cuda(cudaMemcpy(d, v.data(), v.size() * 4, cudaMemcpyHostToDevice), "cudaMemcpy");
    else
      check_cuda(cudaMemcpy(d, activation_bits(v, dtype).data(), v.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
    return d;
  }

  void gemm(cublasOperation_t ta, int m, int n, int k, const void* a, int lda, const void* b, int ldb, float beta,
            void* c, int ldc, cudaStream_t s) const {
    const float alpha = 1.0f;
    const cudaDataType_t t = cuda_type(dtype);
    check_cublas(cublasSetStream(cublas, s), "cublasSetStream");
    check_cublas(cublasGemmEx(cublas, ta, CUBLAS_OP_N, m, n, k, &alpha, a, t, lda, b, t, ldb, &beta, c, t, ldc,
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
                 "cublasGemmEx");
  }

  // A dense base's weight in the activation dtype (row layout `lay`), else the float32 one.
  const void* dense_of(const AnyRowsLayout& lay) const {
    const void* w = dense_weight;
    std::visit(
        [&](const auto& by_tag) {
          if constexpr (!std::is_same_v<std::decay_t<decltype(by_tag)>, std::monostate>)
            if (const auto* d = std::get_if<0>(&by_tag)) w = d->w;
        },
        lay);
    return w;
  }

  void forward(const void* x, void* y, int tokens, cudaStream_t s) { forward_with(layout, x, y, tokens, s); }

  void forward_with(const AnyRowsLayout& lay, const void* x, void* y, int tokens, cudaStream_t s) {
    if (tokens > capacity) throw Error("forward_on_device: " + std::to_string(tokens) + " tokens past the reserved " +
                                       std::to_string(capacity) + " (call reserve first)");
    if (tokens <= kGemvMaxTokens) {
      if (oft || lora) launch_prepass(dtype, x, tokens, in, unit, adapters, oft, lora, x_rot, u, s);
      GemvIo io;
      io.x = oft ? x_rot : x;
      io.y = y;
      io.tokens = tokens;
      io.in = in;
      io.out = out;
      io.adapters = adapters;
      io.u = u;
      io.partials = partials;
      io.counters = counters;
      io.x_from_prepass = oft;
      if (kind != RowsKind::None)
        launch_tc_gemv(lay, rows_pad, plan(tokens), io, oft || lora, s);
      else
        launch_view_gemv(view, dtype, io, s);
      return;
    }
    if (oft && dtype != Activations::Float32 && tc_rotation_fits(adapters.rotations, unit))
      launch_tc_rotation(dtype, x, tokens, in, adapters.rotation[0], x_rot, s);
    else if (oft)
      launch_prepass(dtype, x, tokens, in, unit, adapters, true, false, x_rot, nullptr, s);
    const void* xin = oft ? x_rot : x;
    const void* w = dense_of(lay);
    int ld = dense_ld;
    if (!dense_weight || dora) {
      ld = weight_ld();
      if (kind != RowsKind::None)
        launch_dequant_rows(lay, out, adapters.dot_scale, weight_scratch, ld, s);
      else
        launch_dequant_view(view, dtype, out, in, adapters.dot_scale, weight_scratch, ld, s);
      w = weight_scratch;
    }
    // Row-major y (t, out) = x (t, in) W^T is column-major y^T = W x^T.
    gemm(CUBLAS_OP_T, out, tokens, in, w, ld, xin, in, 0.0f, y, out, s);
    if (lora) gemm(CUBLAS_OP_T, rank, tokens, in, a_dtype, in, x, in, 0.0f, u_aug, r_aug, s);
    if (r_aug > 0) gemm(CUBLAS_OP_T, out, tokens, r_aug, b_aug, r_aug, u_aug, r_aug, 1.0f, y, out, s);
  }
};

ResidentFusedLayer::ResidentFusedLayer(const HostLayer& l) {
  check_fused_layer(l, static_cast<std::size_t>(l.in_features), 1);
  require_device();
  auto impl = std::make_unique<Impl>();
  Impl& m = *impl;
  m.in = l.in_features;
  m.out = l.out_features;
  m.rank = l.rank;
  m.dtype = l.activations;
  m.oft = !l.oft.empty();
  m.lora = l.rank > 0;
  m.dora = !l.dot_scale.empty();
  m.bias = !l.bias.empty() || !l.lora_bias.empty();
  m.unit = rotation_unit(l);
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&m.sms, cudaDevAttrMultiProcessorCount, dev), "cudaDeviceGetAttribute");
  check_cuda(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "cudaStreamCreate");

  std::vector<const float*> rotations;
  for (const HostRotation& r : l.oft) rotations.push_back(rotation_blocks_on_device(r, m.up));
  m.adapters = fused_adapters(l, rotations, [&](const auto& v) { return m.up(v); });

  const RowsBase rows = repack_rows(l);
  m.kind = rows.kind;
  m.rows_pad = rows.rows_pad;
  m.in_pad = rows.in_pad;
  if (rows.kind != RowsKind::None) {
    m.layout = rows_layout(rows, l.activations, [&](const auto& v) { return m.up(v); });
    m.rows = rows;
    m.bytes = rows.bytes();
    if (rows.kind == RowsKind::Dense) {
      std::visit(
          [&](const auto& by_tag) {
            if constexpr (!std::is_same_v<std::decay_t<decltype(by_tag)>, std::monostate>)
              m.dense_weight = std::get<0>(by_tag).w;
          },
          m.layout);
      m.dense_ld = rows.in_pad;
    }
  }
  // The stored tensors: the view path reads them; the merges too, so a layer with adapters keeps them.
  if (rows.kind == RowsKind::None || m.oft || m.lora)
    std::visit([&](const auto& w) { m.view = make_view(w, l, [&](const auto& v) { return m.up(v); }); }, l.weights);
  if (rows.kind == RowsKind::None) {
    std::visit(
        [&](const auto& w) {
          using W = std::decay_t<decltype(w)>;
          const auto sz = [](const auto& v) { return static_cast<double>(v.size() * sizeof(v[0])); };
          if constexpr (std::is_same_v<W, DenseWeights>) {
            m.bytes = sz(w.w);
            m.dense_weight = std::get<DenseView>(m.view).w;  // float32 activations: float32 weights
            m.dense_ld = m.in;
          } else if constexpr (std::is_same_v<W, HqqWeights>) {
            m.bytes = sz(w.w_q8) + sz(w.w_q32) + sz(w.scale) + sz(w.zero);
          } else if constexpr (std::is_same_v<W, AqlmWeights>) {
            m.bytes = sz(w.codes16) + sz(w.codes8) + sz(w.codebooks) + sz(w.scales);
          } else {
            m.bytes = sz(w.bytes) + sz(w.scales);
          }
        },
        l.weights);
  }
  // The GEMM path's LoRA and bias terms: [u 1] [s B  bias + s b_B]^T.
  if (m.lora || m.bias) {
    m.r_aug = (m.rank + 1 + 7) / 8 * 8;
    std::vector<float> b(static_cast<std::size_t>(m.out) * m.r_aug, 0.0f);
    for (int o = 0; o < m.out; ++o) {
      float* row = b.data() + static_cast<std::size_t>(o) * m.r_aug;
      for (int r = 0; r < m.rank; ++r) row[r] = l.scaling * l.lora_b[static_cast<std::size_t>(o) * m.rank + r];
      row[m.rank] = (l.bias.empty() ? 0.0f : l.bias[static_cast<std::size_t>(o)]) +
                    (l.lora_bias.empty() ? 0.0f : l.scaling * l.lora_bias[static_cast<std::size_t>(o)]);
    }
    m.b_aug = m.upload_dtype(b);
    if (m.lora) m.a_dtype = m.upload_dtype(l.lora_a);
  }
  m.reserve(kGemvMaxTokens);
  m.tensors.meta = without_tensors(l);
  m.tensors.view = m.view;
  m.tensors.adapters = m.adapters;
  m.tensors.stream = m.stream;
  check_cuda(cudaDeviceSynchronize(), "resident layer setup");
  impl_ = impl.release();
}

ResidentFusedLayer::~ResidentFusedLayer() {
  if (!impl_) return;
  if (impl_->cublas) cublasDestroy(impl_->cublas);
  if (impl_->stream) cudaStreamDestroy(impl_->stream);
  delete impl_;
}

int ResidentFusedLayer::in_features() const { return impl_->in; }
int ResidentFusedLayer::out_features() const { return impl_->out; }
Activations ResidentFusedLayer::activations() const { return impl_->dtype; }
double ResidentFusedLayer::base_bytes() const { return impl_->bytes; }

std::string ResidentFusedLayer::path(int tokens) const {
  const std::string base = impl_->kind != RowsKind::None ? rows_kind_name(impl_->kind) : "view";
  if (tokens <= kGemvMaxTokens) return (impl_->kind != RowsKind::None ? "tc-gemv/" : "view-gemv/") + base;
  return "gemm/" + base;
}

void ResidentFusedLayer::reserve(int tokens) { impl_->reserve(tokens); }

void ResidentFusedLayer::forward_on_device(const void* x, void* y, int tokens, void* stream) {
  impl_->forward(x, y, tokens, stream ? static_cast<cudaStream_t>(stream) : impl_->stream);
}

std::vector<float> ResidentFusedLayer::forward(const std::vector<float>& x, int tokens) {
  check_activations(x, tokens, impl_->in);
  impl_->reserve(tokens);
  return run_on_device(x, static_cast<size_t>(tokens) * impl_->out, impl_->dtype, [&](const void* d_x, void* d_y) {
    impl_->forward(d_x, d_y, tokens, impl_->stream);
    check_cuda(cudaStreamSynchronize(impl_->stream), "forward");
  });
}

ForwardTiming ResidentFusedLayer::time_forward(int tokens, int iterations, bool graph, bool cold_l2) {
  Impl& m = *impl_;
  m.reserve(tokens);
  // Cold: enough copies of the row layout that none is still in L2 when its turn comes again (at
  // least 256 MiB in all, 2 to 16 copies).
  if (cold_l2 && m.kind != RowsKind::None && m.replicas.empty()) {
    const int copies = std::clamp(static_cast<int>((double(256 << 20) + m.bytes - 1) / m.bytes), 2, 16);
    for (int r = 0; r < copies; ++r)
      m.replicas.push_back(rows_layout(m.rows, m.dtype, [&](const auto& v) { return m.replica_uploads(v); }));
    check_cuda(cudaDeviceSynchronize(), "replicas");
  }
  const int replicas = cold_l2 && !m.replicas.empty() ? static_cast<int>(m.replicas.size()) : 1;
  return time_launches(static_cast<size_t>(tokens) * m.in, static_cast<size_t>(tokens) * m.out, m.dtype, iterations,
                       replicas, graph, m.stream, [&](int r, const void* x, void* y, cudaStream_t s) {
                         m.forward_with(replicas > 1 ? m.replicas[static_cast<size_t>(r)] : m.layout, x, y, tokens, s);
                       });
}

const ResidentTensors& ResidentFusedLayer::tensors() const { return impl_->tensors; }

std::vector<float> fused_forward(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  ResidentFusedLayer resident(layer);
  return resident.forward(x, tokens);
}

}  // namespace qoracle::optimized

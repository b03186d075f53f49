#pragma once
// aqlm's QuantizedLinear (additive quantization with learned codebooks; spec aqlm.md §1-§2):
//   W[o*og + r, i*ig + c] = scales[o] * sum_k codebooks[k, u(codes[o, i, k]), r, c],  y = x W^T + b,
// with codes stored as signed ints and read back as u = stored mod 2^nbits.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reference/dense_linear.hpp"
#include "reference/dtype.hpp"
#include "reference/matrix.hpp"
#include "reference/peft_quirks.hpp"

namespace qoracle {

struct AqlmConfig {
  int in_group_size = 8;
  int out_group_size = 1;
  int num_codebooks = 1;
  int nbits_per_codebook = 16;
};

// The library path whose rounding a forward reproduces.
enum class AqlmKernel {
  Exact,           // float64 math (the oracle)
  DequantizeGemm,  // torch fallback: W_sum (fp32, k in order), W = rnd(W_sum * s), F.linear in the dtype
  NumbaLut,        // CPU, 256 entries, og = 1, float32: look-up tables per input group, sequential sums
  // The GPU paths (spec §2.4), emulated from their arithmetic in reference/aqlm_gpu_kernels.
  CudaMatvec,        // code1x16/2x8/1x8_matmat (<= 6 rows): per-group half2 FMAs, fp32 lanes, warp tree
  CudaMatvecTuring,  // the same on sm_75, where 2x8 sums each codebook separately (no fp16 pre-add)
  CudaDequantGemm,   // *_matmat_dequant (> 6 rows): unscaled W in the dtype, cuBLAS, x scale, + bias
  Triton,            // _aqlm_gemv_simple: float32 products and sum, x scale, + bias, one rounding
};
const char* aqlm_kernel_name(AqlmKernel k);
AqlmKernel parse_aqlm_kernel(const std::string& name);
// The kernel aqlm picks on the CPU for this config (spec §2.3).
AqlmKernel aqlm_cpu_kernel(const AqlmConfig& config);
// Whether aqlm has CUDA kernels for the config: 1x16 (in_group_size 8 or 16), 2x8 and 1x8
// (in_group_size 8), all with out_group_size 1.
bool aqlm_has_cuda_kernel(const AqlmConfig& config);
// The kernel it picks on a CUDA GPU of compute capability major.minor for `rows` input rows.
AqlmKernel aqlm_cuda_kernel(const AqlmConfig& config, int rows, int cc_major, int cc_minor);

// Og, Ig and K for a config and shape; throws Error naming the field that does not fit.
struct AqlmGeometry {
  int out_groups = 0, in_groups = 0, entries = 0;
};
AqlmGeometry aqlm_geometry(const AqlmConfig& config, int out_features, int in_features);

// The signed-offset trick: u >= 2^(nbits-1) is stored as u - 2^nbits.
std::int64_t aqlm_stored_code(int u, int nbits);
int aqlm_code_index(std::int64_t stored, int nbits);

class AqlmLinear {
 public:
  // codes: Og*Ig*C indices u in [0, 2^nbits) (order o, i, k); codebooks: C*K*og*ig values (order
  // k, u, r, c); scales: Og. Values are as stored (already in `dtype`). Throws Error naming the field.
  AqlmLinear(AqlmConfig config, int out_features, int in_features, std::vector<int> codes,
             std::vector<double> codebooks, Vector scales, std::optional<Vector> bias, Dtype dtype, AqlmKernel kernel);

  int in_features() const { return in_; }
  int out_features() const { return out_; }
  const AqlmConfig& config() const { return config_; }
  Matrix weight() const;  // exact W in double from the stored values (spec §2.1: double is exact)
  const std::optional<Vector>& bias() const { return bias_; }
  // The stored tensors (layouts as the constructor takes them).
  const std::vector<int>& codes() const { return codes_; }
  const std::vector<double>& codebooks() const { return codebooks_; }
  const Vector& scales() const { return scales_; }
  Dtype dtype() const { return dtype_; }
  AqlmKernel kernel() const { return kernel_; }
  double codebook(int k, int u, int r, int c) const;  // entry (r, c) of codebook k's vector u
  int code(int out_group, int in_group, int k) const {
    return codes_[(static_cast<std::size_t>(out_group) * ig_count_ + in_group) * config_.num_codebooks + k];
  }
  // In the kernel's arithmetic (Exact: plain double). `dtype` is the activations' dtype; the GPU
  // kernels take theirs from it and refuse anything but float16/bfloat16.
  Matrix forward(const Matrix& x, Dtype dtype = Dtype::Float64) const;
  DenseLinear dequantized() const { return DenseLinear(weight(), bias_); }

  // AQLM has no quantizer in the forward path: merges are refused (PEFT: NotImplementedError).
  static constexpr const char* no_merge =
      "AQLM layers cannot be merged into (PEFT raises NotImplementedError); use dequantized() to export a "
      "dense layer and merge that";
  static constexpr const char* no_dora = "AqlmLoraLinear does not support DoRA (PEFT raises ValueError)";
  void set_weight(const Matrix&, Dtype = Dtype::Float64);  // throws no_merge
  void set_bias(std::optional<Vector> b) { bias_ = std::move(b); }
  // PEFT's AqlmLoraLinear rounds the adapter output to the result dtype before scaling it.
  static constexpr PeftQuirks peft_quirks{.merge_drops_bias = false, .lora_unmerge_rounds_delta = false,
                                          .lora_rounds_before_scaling = true};

 private:
  Matrix decode(bool as_library) const;
  // Rows [begin, end) of the exact W (decode(false)), row-major, bit for bit.
  void decode_exact_rows(int begin, int end, double* rows) const;
  double embedding_bag_sum(double float32_sum) const;  // the library's sum in the codebook dtype
  Matrix forward_numba(const Matrix& x) const;
  Matrix forward_dequantize_gemm(const Matrix& x, Dtype dtype) const;

  AqlmConfig config_;
  int out_, in_, og_count_, ig_count_, entries_;
  std::vector<int> codes_;
  std::vector<double> codebooks_;
  Vector scales_;
  std::optional<Vector> bias_;
  Dtype dtype_;
  AqlmKernel kernel_;
};

}  // namespace qoracle

#pragma once
// EETQ's EetqLinear (w8a16; spec eetq.md §1, §4): y = x W^T + b with W[o][i] = q[o][i] * s_o,
// int8 codes q and an fp16 scale per output channel. The library accepts float16 activations only.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reference/dense_linear.hpp"
#include "reference/dtype.hpp"
#include "reference/eetq_format.hpp"
#include "reference/matrix.hpp"
#include "reference/peft_quirks.hpp"

namespace qoracle {

// The arithmetic a forward reproduces.
enum class EetqKernel {
  Exact,           // float64: W = q * s exactly (the oracle)
  Fp32Accumulate,  // as the library's m >= 5 GEMM: fp16_rn(q * s), float32 sums, fp16 output, then the
                   // bias added as a separate fp16 rounding. (The m <= 4 GEMV also sums partly in fp16;
                   // conformance/TOLERANCES.md states what that costs.)
};
const char* eetq_kernel_name(EetqKernel k);
EetqKernel parse_eetq_kernel(const std::string& name);

class EetqLinear {
 public:
  // Throws Error naming the field: features not multiples of 64, codes outside int8, scales of
  // the wrong length or not finite, a bias of the wrong length.
  EetqLinear(EetqQuantized weight, std::optional<Vector> bias, EetqKernel kernel);
  // From a checkpoint's tensors: `weight` bytes (nominal [in, out]) in `layout`, `weight_scales`, `bias`.
  static EetqLinear from_checkpoint(const std::vector<std::int8_t>& weight_bytes, int in_features, int out_features,
                                    EetqLayout layout, Vector weight_scales, std::optional<Vector> bias,
                                    EetqKernel kernel);

  int in_features() const { return static_cast<int>(weight_.q.cols()); }
  int out_features() const { return static_cast<int>(weight_.q.rows()); }
  const EetqQuantized& quantized() const { return weight_; }
  Matrix weight() const;  // exact q * s (eetq_dequantize(quantized(), false)), on every core
  const std::optional<Vector>& bias() const { return bias_; }
  // `dtype` is the activations' dtype; Fp32Accumulate accepts Float16 only (the library reads any
  // other dtype's bits as fp16 and returns garbage), Exact anything.
  Matrix forward(const Matrix& x, Dtype dtype = Dtype::Float64) const;
  DenseLinear dequantized() const { return DenseLinear(weight(), bias_); }

  // PEFT's EETQ layers raise AttributeError on merge/unmerge (for OFT too, with a "LoRA" message).
  static constexpr const char* no_merge =
      "EETQ layers cannot be merged into (PEFT raises AttributeError: Merging LoRA layers is not supported for "
      "Eetq layers.); use eetq_merge_to_dequantized() to dequantize, merge and requantize for export";
  static constexpr const char* no_dora = "EetqLoraLinear does not support DoRA (PEFT raises ValueError)";
  void set_weight(const Matrix&, Dtype = Dtype::Float64);  // throws no_merge
  void set_bias(std::optional<Vector> b) { bias_ = std::move(b); }
  // PEFT's EetqLoraLinear rounds the adapter output to the result dtype before scaling it.
  static constexpr PeftQuirks peft_quirks{.merge_drops_bias = false, .lora_unmerge_rounds_delta = false,
                                          .lora_rounds_before_scaling = true};

 private:
  // Rows [begin, end) of the exact W = q * s, row-major.
  void decode_rows(int begin, int end, double* rows) const;

  EetqQuantized weight_;
  std::optional<Vector> bias_;
  EetqKernel kernel_;
};

}  // namespace qoracle

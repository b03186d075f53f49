#pragma once
// hqq's HQQLinear as a base layer: packed codes, scale and zero per group, optional bias and a
// compute dtype. forward = x W_dq^T + bias with W_dq dequantized on every call. Setting a new
// weight requantizes it with the same config, as PEFT's HQQ merge builds a new HQQLinear.
#include <functional>
#include <optional>

#include "reference/dense_linear.hpp"
#include "reference/hqq_quantizer.hpp"
#include "reference/peft_quirks.hpp"

namespace qoracle {

class HqqLinear {
 public:
  // A quantized layer. scale/zero are cast to compute_dtype, as HQQLinear.cuda() does.
  // `requantize_with` is the arithmetic merges use (Float32Cpu: what hqq does on the CPU).
  HqqLinear(HqqQuantized quantized, std::optional<Vector> bias, Dtype compute_dtype,
            HqqArithmetic requantize_with = HqqArithmetic::Float64);
  // From the tensors an HQQLinear stores: W_q (packed), scale and zero (one per group).
  static HqqLinear from_packed(const HqqConfig& config, int out_features, int in_features, const HqqPacked& w_q,
                               const Vector& scale, const Vector& zero, std::optional<Vector> bias, Dtype compute_dtype,
                               HqqArithmetic requantize_with);
  // Quantize a dense weight (HQQLinear(linear, quant_config, compute_dtype=...)).
  static HqqLinear quantize(const Matrix& weight, std::optional<Vector> bias, const HqqConfig& config,
                            Dtype compute_dtype, HqqArithmetic arithmetic);

  int in_features() const { return quantized_.in_features; }
  int out_features() const { return quantized_.out_features; }
  Matrix weight() const;  // hqq_dequantize(quantized(), compute_dtype()), decoded on every core
  const std::optional<Vector>& bias() const { return bias_; }
  // In `dtype` (the activations' dtype): out = rnd(x W_dq^T), then out += bias, another rounding.
  Matrix forward(const Matrix& x, Dtype dtype = Dtype::Float64) const;

  // Requantize with the same config; hqq quantizes weight.float(), whatever the compute dtype.
  void set_weight(const Matrix& weight, Dtype dtype = Dtype::Float64);
  // Stage-wise judging (conformance/layers/evaluate_layer.hpp): sees each weight handed to the
  // quantizer and returns the one to quantize, so that hqq's chaotic optimizer can be judged on
  // the producer's own input (a one-ulp difference there can move a whole group's zero).
  using RequantizeHook = std::function<Matrix(const Matrix&)>;
  void set_requantize_hook(RequantizeHook hook) { requantize_hook_ = std::move(hook); }
  void set_bias(std::optional<Vector> bias) { bias_ = std::move(bias); }
  DenseLinear dequantized() const { return DenseLinear(weight(), bias_); }

  const HqqQuantized& quantized() const { return quantized_; }
  HqqPacked packed() const { return hqq_pack(quantized_.codes, quantized_.config.nbits); }
  Dtype compute_dtype() const { return compute_dtype_; }
  HqqArithmetic requantize_arithmetic() const { return requantize_with_; }

  // PEFT's HQQ merge builds a new HQQLinear, which has no bias.
  static constexpr const char* no_merge = nullptr;  // merges are supported
  static constexpr const char* no_dora = nullptr;  // DoRA is supported
  static constexpr PeftQuirks peft_quirks{
      .merge_drops_bias = true, .lora_unmerge_rounds_delta = false, .lora_rounds_after_each_adapter = true};

 private:
  // Rows [begin, end) of W_dq, row-major: the values hqq_dequantize computes, bit for bit.
  void decode_rows(int begin, int end, double* rows) const;

  HqqQuantized quantized_;
  std::optional<Vector> bias_;
  Dtype compute_dtype_;
  HqqArithmetic requantize_with_;
  RequantizeHook requantize_hook_;
};

}  // namespace qoracle

#pragma once
// The LibTorch baseline: each layer computed with ATen ops in the order PEFT and the quantization
// libraries run them, in float32 (PEFT keeps adapters in float32; a float32 model keeps its base
// there too). It is the "what users run today" row of the benchmarks and the third opinion of the
// conformance suite. Nothing is cached that PEFT recomputes: the rotation is rebuilt from its
// parameters on every OFT forward, and quantized weights are dequantized on every call.
#include <ATen/ATen.h>

#include <functional>
#include <optional>
#include <string>

#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle::torch_baseline {

at::Tensor to_tensor(const Matrix& m);  // float32, row-major
at::Tensor to_tensor(const Vector& v);
Matrix to_matrix(const at::Tensor& t);  // any float dtype, 2-D

// hqq's quantizer (0.2.8.post1, legacy proximal optimizer; spec hqq.md §2) on a float32 weight,
// as tensors: grouped codes (R, C) int32, scale and zero per group (float32, scale = 1 / inv).
struct TorchHqqQuantized {
  at::Tensor codes, scale, zero;
};
TorchHqqQuantized torch_hqq_quantize(const at::Tensor& weight, const HqqConfig& config);

// A base layer as its library holds it in torch, with its forward.
class TorchBase {
 public:
  static TorchBase from(const DenseLinear& layer);  // nn.Linear: F.linear
  static TorchBase from(const HqqLinear& layer);    // HQQLinear: unpack, (W_q - zero) * scale, matmul, + bias
  static TorchBase from(const AqlmLinear& layer);   // aqlm's torch path: codebook lookups summed, * scales, F.linear
  static TorchBase from(const EetqLinear& layer);   // q * scale, F.linear
  at::Tensor weight() const { return dequantize_(); }  // (out, in) float32
  at::Tensor forward(const at::Tensor& x) const;
  // nn.Linear: in place. HQQ: requantized with the layer's config into a new layer without a bias,
  // as PEFT's HQQ merge builds a new HQQLinear. Others throw Error (PEFT refuses those merges).
  void set_weight(at::Tensor w);
  const c10::optional<at::Tensor>& bias() const { return bias_; }
  at::Tensor hqq_codes() const;  // HQQ only: the grouped codes, unpacked from W_q
  const std::string& format() const { return format_; }

 private:
  std::string format_;
  std::function<at::Tensor()> dequantize_;
  c10::optional<at::Tensor> bias_;
  bool matmul_then_add_ = false;  // hqq: out = matmul(x, W^T); out += bias
  c10::optional<HqqConfig> hqq_config_;
  at::Tensor hqq_w_q_;  // HQQ: W_q as stored
  std::int64_t hqq_rows_ = 0;
  void set_hqq(const HqqConfig& config, std::int64_t out, std::int64_t in, at::Tensor w_q, at::Tensor scale,
               at::Tensor zero);
};

// OFT (PEFT's OFTRotationModule + Linear.forward): skew from the parameters, R per block (Neumann
// series or exact solve), einsum over blocks, then the base.
class TorchOftLinear {
 public:
  template <class Base>
  TorchOftLinear(const OftLayer<Base>& layer, const std::string& adapter)
      : base_(TorchBase::from(layer.base())), config_(layer.adapter(adapter).config()),
        blocks_(layer.adapter(adapter).blocks()), weight_(to_tensor(layer.adapter(adapter).weight())) {}
  at::Tensor rotation_blocks() const;  // (r, b, b)
  at::Tensor forward(const at::Tensor& x) const;
  void merge();    // W <- (R_bd W^T)^T (nn.Linear only: PEFT's HqqOFTLinear.merge raises)
  void unmerge();  // W <- (inv(R_bd) W^T)^T, in float32 as PEFT does
  const TorchBase& base() const { return base_; }

 private:
  TorchBase base_;
  OftConfig config_;
  OftBlocks blocks_;
  at::Tensor weight_;
  bool merged_ = false;  // merged: the forward is the base alone
};

// LoRA (PEFT's lora.Linear forward): base(x) + lora_B(lora_A(x)) * scaling.
class TorchLoraLinear {
 public:
  template <class Base>
  TorchLoraLinear(const LoraLayer<Base>& layer, const std::string& adapter)
      : TorchLoraLinear(TorchBase::from(layer.base()), layer.adapter(adapter)) {}
  TorchLoraLinear(TorchBase base, const LoraAdapter& adapter);
  at::Tensor forward(const at::Tensor& x) const;
  void merge();    // W += (B A) * s; an HQQ base is requantized (and loses its bias)
  void unmerge();  // W -= (B A) * s
  const TorchBase& base() const { return base_; }

 private:
  at::Tensor delta_weight() const;
  TorchBase base_;
  at::Tensor a_, b_;
  c10::optional<at::Tensor> b_bias_;
  double scaling_;
  bool merged_ = false;  // merged: the forward is the base alone
};

}  // namespace qoracle::torch_baseline

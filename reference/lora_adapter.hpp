#pragma once
// One LoRA adapter: delta = s * B * A with s = alpha / r, or alpha / sqrt(r) with rsLoRA;
// optional bias on B (lora_bias) and, for DoRA, a magnitude vector m per output row.
#include <optional>

#include "reference/matrix.hpp"

namespace qoracle {

struct LoraConfig {
  int r = 8;
  double lora_alpha = 8.0;
  bool use_rslora = false;
  bool lora_bias = false;
  bool use_dora = false;
};

class LoraAdapter {
 public:
  // a: (r, in), b: (out, r), b_bias: (out) iff lora_bias, magnitude: (out) iff use_dora.
  LoraAdapter(int in_features, int out_features, LoraConfig config, Matrix a, Matrix b,
              std::optional<Vector> b_bias = std::nullopt, std::optional<Vector> magnitude = std::nullopt);

  const LoraConfig& config() const { return config_; }
  double scaling() const;
  Matrix delta_weight() const;                     // s * B * A, (out, in)
  std::optional<Vector> delta_bias() const;        // s * b_B with lora_bias
  Matrix output(const Matrix& x) const;            // s * (x A^T B^T + b_B)
  Matrix unscaled_output(const Matrix& x) const;   // x A^T B^T + b_B
  // output(x) through OpenBLAS on every core, for the exact-math forward (the emulated dtypes keep
  // output(), whose rounded results the fixtures pin bit for bit).
  Matrix output_float64(const Matrix& x) const;
  const Matrix& a() const { return a_; }  // (r, in)
  const Matrix& b() const { return b_; }  // (out, r)
  const std::optional<Vector>& b_bias() const { return b_bias_; }
  const std::optional<Vector>& magnitude() const { return magnitude_; }
  void set_magnitude(Vector m) { magnitude_ = std::move(m); }

 private:
  LoraConfig config_;
  Matrix a_, b_;
  std::optional<Vector> b_bias_, magnitude_;
};

}  // namespace qoracle

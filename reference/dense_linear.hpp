#pragma once
// torch.nn.Linear: y = x W^T + b with W (out, in). One of the base layers the adapters wrap
// (the others: HqqLinear, ...); each provides weight(), bias(), forward(x, dtype), set_weight,
// set_bias and its PeftQuirks.
#include <optional>
#include <string>

#include "reference/dtype.hpp"
#include "reference/matrix.hpp"
#include "reference/peft_quirks.hpp"

namespace qoracle {

class DenseLinear {
 public:
  DenseLinear(Matrix w, std::optional<Vector> b);  // throws Error on a bad shape or non-finite values

  int in_features() const { return static_cast<int>(weight_.cols()); }
  int out_features() const { return static_cast<int>(weight_.rows()); }
  const Matrix& weight() const { return weight_; }
  const std::optional<Vector>& bias() const { return bias_; }
  // In `dtype`: F.linear rounds once, after the bias is added.
  Matrix forward(const Matrix& x, Dtype dtype = Dtype::Float64) const;

  // A merged weight written back into a `dtype` parameter (rounds to it).
  void set_weight(const Matrix& w, Dtype dtype = Dtype::Float64) { weight_ = round_to(dtype, w); }
  void set_bias(std::optional<Vector> b) { bias_ = std::move(b); }
  DenseLinear dequantized() const { return *this; }

  static constexpr const char* no_merge = nullptr;  // merges are supported
  static constexpr const char* no_dora = nullptr;  // DoRA is supported
  static constexpr PeftQuirks peft_quirks{.merge_drops_bias = false, .lora_unmerge_rounds_delta = true};

 private:
  Matrix weight_;
  std::optional<Vector> bias_;
};

// Checks x is (tokens, in_features) and finite.
void require_input(const Matrix& x, int in_features);
// Throws when a computation on finite inputs overflowed: the reference never returns garbage.
void require_finite_result(const Matrix& m, const std::string& what);

}  // namespace qoracle

#include "conformance/tolerances.hpp"

#include <algorithm>

namespace qoracle {

Tolerance tolerance_for(Dtype dtype, const std::string& output, Convention convention) {
  switch (dtype) {
    case Dtype::Float64:
      // PEFT unmerges through a float32 inverse; reproducing it rounds a double inverse to
      // float32, and one ulp of difference upstream can flip that rounding (2^-24 ~ 6e-8).
      if (convention == Convention::Peft && output == "unmerged_weight") return {0.0, 1e-6};
      // Same algorithm in double on both sides: the difference is summation order over at most
      // a few thousand terms, ~n * 2^-53 relative to the largest magnitude.
      return {0.0, 1e-12};
    case Dtype::Float32:
      // The emulation rounds where PEFT rounds; what remains is float32 accumulation order in
      // dot products of a few dozen terms: 16 ulps (2^-24) of the largest value.
      return {0.0, 1e-6};
    case Dtype::Float16:
      // Same rounding points as PEFT, so at most one rounding decision flipped by a different
      // float32 accumulation order: one ulp of the largest value, at most 2^-10 * max|y|.
      return {0.0, 1e-3};
    case Dtype::BFloat16:
      return {0.0, 8e-3};  // likewise, one bfloat16 ulp: at most 2^-7 = 7.8e-3 of max|y|
  }
  return {0.0, 0.0};
}

Tolerance tolerance_for_output(const std::string& layer_kind, Dtype dtype, const std::string& output,
                               Convention convention, int group_size) {
  // A value within ~1e-7 of a rounding boundary can flip its code when sums run in another order:
  // the HQQ issue's >= 99.99 % identical codes.
  constexpr double kCodeShare = 1e-4;
  const bool hqq = layer_kind.ends_with("/hqq") || layer_kind == "hqq/quantize";
  // PEFT's float32 inverse (tolerance_for's unmerge exception) is OFT's only: LoRA unmerges by a subtraction.
  const Tolerance plain = tolerance_for(dtype, output, layer_kind.starts_with("oft/") ? convention : Convention::Math);
  if (output.ends_with("_codes")) return {0.0, 0.0, kCodeShare};
  if (hqq && output.ends_with("_zero")) return {0.0, std::max(plain.rtol, 1e-6), kCodeShare * group_size};
  const bool requantized = output.starts_with("quantized_") || output.starts_with("merged_") ||
                           output.starts_with("unmerged_") || output == "forward_merged";
  if (hqq && requantized) return {0.0, std::max(plain.rtol, 1e-6), kCodeShare};
  const bool half = dtype == Dtype::Float16 || dtype == Dtype::BFloat16;
  if (layer_kind.ends_with("/aqlm") && half && output.starts_with("forward")) return {0.0, 0.0, 0.0};
  return plain;
}

Tolerance float32_against_oracle() {
  // Unlike the emulation above, nothing here rounds where the oracle rounds: every dot product of
  // K <= 4096 float32 terms carries ~sqrt(K) * 2^-24 <= 3.8e-6 of its magnitude (random-walk
  // growth), on top of a float32 rotation or dequantization (a few ulps). 1e-5 of max|y|.
  return {0.0, 1e-5};
}

double oracle_factor(Dtype dtype) { return dtype == Dtype::Float64 ? 1.0 : 2.0; }

}  // namespace qoracle

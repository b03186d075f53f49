#include "conformance/tolerances.hpp"

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
      // float32 results against the double reference: k * n * 2^-24 for short dot products.
      return {0.0, 1e-5};
    case Dtype::Float16:
      return {0.0, 4e-3};  // about eight half-precision ulps (2^-11) of the largest value
    case Dtype::BFloat16:
      return {0.0, 3e-2};  // about eight bfloat16 ulps (2^-8) of the largest value
  }
  return {0.0, 0.0};
}

double oracle_factor(Dtype dtype) { return dtype == Dtype::Float64 ? 1.0 : 2.0; }

}  // namespace qoracle

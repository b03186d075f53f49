#include "conformance/derived_bounds.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace qoracle {

namespace {

std::string format(const char* fmt, double a, double b = 0.0, double c = 0.0) {
  char buf[160];
  std::snprintf(buf, sizeof buf, fmt, a, b, c);
  return buf;
}

double bits(Dtype d) { return d == Dtype::Float64 ? 64 : d == Dtype::Float32 ? 32 : 16; }

}  // namespace

DerivedBound& DerivedBound::operator+=(const DerivedBound& other) {
  value += other.value;
  if (!other.why.empty()) why += (why.empty() ? "" : "; ") + other.why;
  return *this;
}

double gamma_n(int n, double u) {
  const double nu = n * u;
  return nu < 1.0 ? nu / (1.0 - nu) : nu;
}

double cascade_sum_error(int n, double u) { return (std::ceil(std::log2(std::max(n, 2))) + 2.0) * u; }

DerivedBound float32_inverse_unmerge_bound(const std::vector<Matrix>& rotations, const Matrix& merged,
                                           Dtype product_dtype) {
  const double u32 = unit_roundoff(Dtype::Float32), up = unit_roundoff(product_dtype);
  double bound = 0.0, worst_kappa = 1.0;
  Eigen::Index col = 0;
  for (const Matrix& r : rotations) {
    const Eigen::Index b = r.rows();
    const Vector sv = Eigen::JacobiSVD<Matrix>(r).singularValues();
    const double smin = sv(sv.size() - 1), kappa = sv(0) / smin, inv_norm = 1.0 / smin;
    worst_kappa = std::max(worst_kappa, kappa);
    const double per_unit_row = (static_cast<double>(b) * u32 * kappa + gamma_n(static_cast<int>(b), up)) * inv_norm;
    const double row_norm = merged.middleCols(col, b).rowwise().norm().maxCoeff();
    bound = std::max(bound, row_norm * per_unit_row);
    col += b;
  }
  const double b = rotations.empty() ? 0.0 : static_cast<double>(rotations.front().rows());
  return {bound, format("PEFT's float32 inverse of R: block %.0f, kappa(R) up to %.3g", b, worst_kappa)};
}

DerivedBound rotation_product_bound(const std::vector<Matrix>& rotations, const Matrix& weight, Dtype product_dtype) {
  double bound = 0.0;
  Eigen::Index col = 0;
  for (const Matrix& r : rotations) {
    const Eigen::Index b = r.rows();
    const Matrix abs_product = weight.middleCols(col, b).cwiseAbs() * r.cwiseAbs().transpose();
    bound = std::max(bound, gamma_n(static_cast<int>(b), unit_roundoff(product_dtype)) * abs_product.maxCoeff());
    col += b;
  }
  return {bound, format("W R^T summed over b = %.0f terms in float%.0f",
                        rotations.empty() ? 0.0 : static_cast<double>(rotations.front().rows()), bits(product_dtype))};
}

DerivedBound lora_delta_bound(const LoraAdapter& adapter, Dtype adapter_dtype, Dtype rounded_to) {
  const double u = unit_roundoff(adapter_dtype), s = std::abs(adapter.scaling());
  const Matrix abs_product = adapter.b().cwiseAbs() * adapter.a().cwiseAbs();
  double bound = (gamma_n(adapter.config().r, u) + 2.0 * u) * s * abs_product.maxCoeff();
  if (rounded_to == Dtype::Float16 || rounded_to == Dtype::BFloat16)
    bound += 2.0 * unit_roundoff(rounded_to) * adapter.delta_weight().cwiseAbs().maxCoeff();
  return {bound, format("s B A summed over r = %.0f in float%.0f", adapter.config().r, bits(adapter_dtype))};
}

DerivedBound dora_factor_bound(int in_features, Dtype adapter_dtype, double max_magnitude) {
  const double u = unit_roundoff(adapter_dtype);
  return {(cascade_sum_error(in_features, u) + 2.0 * u) * max_magnitude,
          format("DoRA's weight norm over %.0f inputs", in_features)};
}

DerivedBound half_gemm_flip_bound(Dtype dtype, double max_abs) {
  if (dtype != Dtype::Float16 && dtype != Dtype::BFloat16) return {};
  return {2.0 * unit_roundoff(dtype) * max_abs, "one flipped rounding in torch's blocked half GEMM"};
}

}  // namespace qoracle

#include "reference/dtype.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

#include "reference/error.hpp"

namespace qoracle {

const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::Float64: return "float64";
    case Dtype::Float32: return "float32";
    case Dtype::Float16: return "float16";
    case Dtype::BFloat16: return "bfloat16";
  }
  return "unknown";
}

Dtype parse_dtype(const std::string& name) {
  if (name == "float64") return Dtype::Float64;
  if (name == "float32") return Dtype::Float32;
  if (name == "float16") return Dtype::Float16;
  if (name == "bfloat16") return Dtype::BFloat16;
  throw Error("dtype: expected one of float64, float32, float16, bfloat16, got '" + name + "'");
}

double unit_roundoff(Dtype d) {
  switch (d) {
    case Dtype::Float64: return std::ldexp(1.0, -53);
    case Dtype::Float32: return std::ldexp(1.0, -24);
    case Dtype::Float16: return std::ldexp(1.0, -11);
    case Dtype::BFloat16: return std::ldexp(1.0, -8);
  }
  return 0.0;
}

std::uint16_t float_to_half_bits(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  const auto sign = static_cast<std::uint16_t>((x >> 16) & 0x8000u);
  std::uint32_t a = x & 0x7FFFFFFFu;
  if (a >= 0x7F800000u) return static_cast<std::uint16_t>(sign | (a > 0x7F800000u ? 0x7E00u : 0x7C00u));
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // >= 65520 rounds to inf
  if (a < 0x38800000u) {
    // Below 2^-14: a multiple of the subnormal step 2^-24. Scaling by 2^24 is exact and
    // nearbyint rounds half to even in the default rounding mode.
    const float scaled = std::bit_cast<float>(a) * 16777216.0f;
    return static_cast<std::uint16_t>(sign | static_cast<std::uint16_t>(std::nearbyint(scaled)));
  }
  a += 0x0FFFu + ((a >> 13) & 1u);  // round half to even on the 13 dropped mantissa bits
  a -= 0x38000000u;                 // rebias the exponent from 127 to 15
  return static_cast<std::uint16_t>(sign | (a >> 13));
}

float half_bits_to_float(std::uint16_t h) {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exp = (h >> 10) & 0x1Fu;
  const std::uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    const float mag = std::ldexp(static_cast<float>(mant), -24);
    return sign ? -mag : mag;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7F800000u | (mant << 13));
  return std::bit_cast<float>(sign | ((exp + 112u) << 23) | (mant << 13));
}

std::uint16_t float_to_bfloat16_bits(float f) {
  const std::uint32_t x = std::bit_cast<std::uint32_t>(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((x >> 16) | 0x0040u);  // quiet NaN
  const std::uint32_t rounded = x + 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<std::uint16_t>(rounded >> 16);
}

float bfloat16_bits_to_float(std::uint16_t b) { return std::bit_cast<float>(static_cast<std::uint32_t>(b) << 16); }

double round_to(Dtype d, double value) {
  switch (d) {
    case Dtype::Float64: return value;
    case Dtype::Float32: return static_cast<double>(static_cast<float>(value));
    case Dtype::Float16: return half_bits_to_float(float_to_half_bits(static_cast<float>(value)));
    case Dtype::BFloat16: return bfloat16_bits_to_float(float_to_bfloat16_bits(static_cast<float>(value)));
  }
  return value;
}

namespace {

struct Format {
  int precision;     // significand bits, the implicit one included
  int min_exponent;  // of the smallest normal value; below it the step stays 2^(min - precision + 1)
  double max_finite;
};

Format format_of(Dtype d) {
  switch (d) {
    case Dtype::Float64: return {53, -1022, std::numeric_limits<double>::max()};
    case Dtype::Float32: return {24, -126, std::numeric_limits<float>::max()};
    case Dtype::Float16: return {11, -14, 65504.0};
    case Dtype::BFloat16: return {8, -126, 3.3895313892515355e38};
  }
  return {53, -1022, std::numeric_limits<double>::max()};
}

// The spacing of d's values around |v| (v finite, non-zero).
double step_at(const Format& f, double v) {
  return std::ldexp(1.0, std::max(std::ilogb(v), f.min_exponent) - (f.precision - 1));
}

}  // namespace

double round_once_to(Dtype d, double value) {
  if (d == Dtype::Float64 || value == 0.0 || !std::isfinite(value)) return value;
  const Format f = format_of(d);
  const double step = step_at(f, value);
  // value / step is exact (a power-of-two scaling) and nearbyint rounds half to even.
  const double rounded = std::nearbyint(value / step) * step;
  if (std::fabs(rounded) > f.max_finite) return std::copysign(std::numeric_limits<double>::infinity(), value);
  return rounded;
}

double fused_multiply_add(Dtype d, double a, double b, double c) {
  // a*b is exact in double for every d narrower than float32; the sum may not be, so keep its
  // error (TwoSum) and let it decide the one case where it matters: a sum exactly halfway.
  const double p = a * b;
  const double s = p + c;
  const double bp = s - c, bc = s - bp;
  const double err = (p - bp) + (c - bc);
  const double r = round_once_to(d, s);
  if (err == 0.0 || !std::isfinite(r) || s == r) return r;
  const double half_step = step_at(format_of(d), s) / 2;
  if (std::fabs(s - r) != half_step) return r;  // not a tie: the tiny error cannot move it across
  // A tie broken by the error: towards r keeps r, away from r takes the other neighbour.
  return (err > 0) == (s > r) ? r + 2 * (s - r) : r;
}

Matrix round_to(Dtype d, const Matrix& m) {
  if (d == Dtype::Float64) return m;  // exact: a copy, not a call per element
  return m.unaryExpr([d](double v) { return round_to(d, v); });
}

Vector round_to(Dtype d, const Vector& v) {
  if (d == Dtype::Float64) return v;
  return v.unaryExpr([d](double e) { return round_to(d, e); });
}

}  // namespace qoracle

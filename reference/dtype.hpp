#pragma once
// Logical dtypes of fixture tensors and the exact round-to-nearest-even conversions that
// torch applies when it stores a double into them (double -> float32 -> half/bfloat16,
// as c10 does), so deployment-dtype behaviour can be emulated bit for bit.
#include <cstdint>
#include <string>

#include "reference/matrix.hpp"

namespace qoracle {

enum class Dtype { Float64, Float32, Float16, BFloat16 };

const char* dtype_name(Dtype d);
Dtype parse_dtype(const std::string& name);  // throws Error naming the accepted values
double unit_roundoff(Dtype d);                // 2^-53, 2^-24, 2^-11, 2^-8

std::uint16_t float_to_half_bits(float f);
float half_bits_to_float(std::uint16_t h);
std::uint16_t float_to_bfloat16_bits(float f);
float bfloat16_bits_to_float(std::uint16_t b);

double round_to(Dtype d, double value);
Matrix round_to(Dtype d, const Matrix& m);
Vector round_to(Dtype d, const Vector& v);

// One correct rounding of an exact double to d (round_to goes through float32 first, as torch
// does; a GPU instruction rounds its exact result once, which these reproduce).
double round_once_to(Dtype d, double value);
// a*b + c with a single rounding to d (CUDA's __hfma2 on half/bfloat16 lanes); a, b, c must be
// values of d.
double fused_multiply_add(Dtype d, double a, double b, double c);

}  // namespace qoracle

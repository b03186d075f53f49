#include "optimized/device/activation_io.hpp"

#include "optimized/device/dtype_bits.hpp"
#include "optimized/merge/eetq_requantize.hpp"

#include "reference/dtype.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

const char* activations_name(Activations a) {
  switch (a) {
    case Activations::Float32: return "float32";
    case Activations::Float16: return "float16";
    case Activations::BFloat16: return "bfloat16";
  }
  return "?";
}

std::vector<float> round_activations(const std::vector<float>& v, Activations dtype) {
  if (dtype == Activations::Float32) return v;
  return activation_values(activation_bits(v, dtype), dtype);
}

std::vector<std::uint16_t> activation_bits(const std::vector<float>& v, Activations dtype) {
  if (dtype == Activations::Float32) throw Error("activations: float32 has no 16-bit pattern");
  std::vector<std::uint16_t> bits(v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    bits[i] = dtype == Activations::Float16 ? float_to_half_bits(v[i]) : float_to_bfloat16_bits(v[i]);
  return bits;
}

std::vector<float> activation_values(const std::vector<std::uint16_t>& bits, Activations dtype) {
  if (dtype == Activations::Float32) throw Error("activations: float32 has no 16-bit pattern");
  std::vector<float> v(bits.size());
  for (std::size_t i = 0; i < bits.size(); ++i)
    v[i] = dtype == Activations::Float16 ? half_bits_to_float(bits[i]) : bfloat16_bits_to_float(bits[i]);
  return v;
}

float round_to_half_on_host(float v) { return half_bits_to_float(float_to_half_bits(v)); }
float half_bits_to_float_on_host(std::uint16_t h) { return half_bits_to_float(h); }
float bfloat16_bits_to_float_on_host(std::uint16_t b) { return bfloat16_bits_to_float(b); }
std::uint16_t float_to_half_bits_on_host(float v) { return float_to_half_bits(v); }
std::uint16_t float_to_bfloat16_bits_on_host(float v) { return float_to_bfloat16_bits(v); }

}  // namespace qoracle::optimized

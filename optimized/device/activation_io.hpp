#pragma once
// Host-side conversions of activations to and from the layer's activation dtype (float32, float16,
// bfloat16), with the same round-to-nearest-even as the device's __float2half_rn /
// __float2bfloat16_rn, so the host emulation and the kernels see the same values.
#include <cstdint>
#include <vector>

#include "optimized/device/dtype_bits.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

// Each value rounded to the dtype (and widened back to float; identity for Float32).
std::vector<float> round_activations(const std::vector<float>& v, Activations dtype);
// float16/bfloat16 bit patterns, as the kernels read and write them (not for Float32).
std::vector<std::uint16_t> activation_bits(const std::vector<float>& v, Activations dtype);
std::vector<float> activation_values(const std::vector<std::uint16_t>& bits, Activations dtype);

// Calls f with the template tag of the dtype (optimized/device/dtype_bits.hpp).
template <class F>
void with_activation_tag(Activations dtype, F f) {
  switch (dtype) {
    case Activations::Float32: return f(FloatTag{});
    case Activations::Float16: return f(HalfTag{});
    case Activations::BFloat16: return f(BFloat16Tag{});
  }
}

}  // namespace qoracle::optimized

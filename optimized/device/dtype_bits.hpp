#pragma once
// float16 / bfloat16 as 16-bit patterns in code written once for host and device: the device uses
// its conversion instructions, the host the reference's exact round-to-nearest-even
// (reference/dtype.cpp, through activation_io.cpp), so both give the same bits.
#include <cstdint>

#include "optimized/device/hd.hpp"
#ifdef __CUDACC__
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#endif

namespace qoracle::optimized {

// The activation dtypes as template tags, and the element type each is stored as (float16 and
// bfloat16 as bit patterns, so that host code needs no CUDA header).
struct FloatTag {};
struct HalfTag {};
struct BFloat16Tag {};
template <class Tag>
struct ElementOf {
  using type = std::uint16_t;
};
template <>
struct ElementOf<FloatTag> {
  using type = float;
};
template <class Tag>
using Element = typename ElementOf<Tag>::type;

float half_bits_to_float_on_host(std::uint16_t h);
float bfloat16_bits_to_float_on_host(std::uint16_t b);
std::uint16_t float_to_half_bits_on_host(float v);
std::uint16_t float_to_bfloat16_bits_on_host(float v);

QORACLE_HD inline float bits_to_float(std::uint16_t b, HalfTag) {
#ifdef __CUDA_ARCH__
  return __half2float(__ushort_as_half(b));
#else
  return half_bits_to_float_on_host(b);
#endif
}
QORACLE_HD inline float bits_to_float(std::uint16_t b, BFloat16Tag) {
  // bfloat16 is float32's top half, on either side.
#ifdef __CUDA_ARCH__
  return __uint_as_float(static_cast<unsigned>(b) << 16);
#else
  return bfloat16_bits_to_float_on_host(b);
#endif
}
QORACLE_HD inline std::uint16_t float_to_bits(float v, HalfTag) {
#ifdef __CUDA_ARCH__
  return __half_as_ushort(__float2half_rn(v));
#else
  return float_to_half_bits_on_host(v);
#endif
}
QORACLE_HD inline std::uint16_t float_to_bits(float v, BFloat16Tag) {
#ifdef __CUDA_ARCH__
  return __bfloat16_as_ushort(__float2bfloat16_rn(v));
#else
  return float_to_bfloat16_bits_on_host(v);
#endif
}
QORACLE_HD inline float bits_to_float(float v, FloatTag) { return v; }
QORACLE_HD inline float float_to_bits(float v, FloatTag) { return v; }

// v rounded to the dtype (round to nearest even) and widened back.
template <class Tag>
QORACLE_HD inline float round_to(float v, Tag tag) {
  return bits_to_float(float_to_bits(v, tag), tag);
}
// Two values rounded to the dtype, packed low-first as a tensor-core register holds them.
template <class Tag>
QORACLE_HD inline std::uint32_t pack_pair(float lo, float hi, Tag tag) {
  return static_cast<std::uint32_t>(float_to_bits(lo, tag)) | (static_cast<std::uint32_t>(float_to_bits(hi, tag)) << 16);
}

}  // namespace qoracle::optimized

#pragma once
// The quantized weights as the optimized kernels read them: each view answers W[o][i] (float32)
// straight from the bytes as stored, so a kernel dequantizes in registers while it loads. Written
// once for host and device (optimized/cayley_block.hpp explains why); the host tests compare every
// view element by element with the float64 reference's dequantized weight.
#include <cstdint>

#include "optimized/device/hd.hpp"

namespace qoracle::optimized {

// torch.nn.Linear: W row-major (out, in).
struct DenseView {
  const float* w = nullptr;
  int in_features = 0;
  QORACLE_HD float operator()(int o, int i) const { return w[static_cast<std::int64_t>(o) * in_features + i]; }
};

// hqq's HQQLinear: W flattened row-major, grouped row-major into (R, C); a group is a row of it
// (axis 1) or a column (axis 0). Codes are bit fields of W_q (uint8 words, or int32 words for
// 3-bit), slab s of the grouped rows in field s counted from the top; W = (Q - zero) * scale.
struct HqqView {
  const std::uint8_t* w_q8 = nullptr;    // nbits 1, 2, 4, 8
  const std::int32_t* w_q32 = nullptr;   // nbits 3
  const float* scale = nullptr;          // per group
  const float* zero = nullptr;           // per group
  int nbits = 4, axis = 1, in_features = 0, cols = 0, packed_rows = 0;
  // The stored code of W[o][i], and its group.
  QORACLE_HD std::uint32_t code(int o, int i) const {
    const std::int64_t f = static_cast<std::int64_t>(o) * in_features + i;
    const std::int64_t r = f / cols, c = f % cols;
    const std::int64_t slot = r / packed_rows, prow = r % packed_rows;
    const int container = nbits == 3 ? 30 : 8;
    const int shift = container - nbits * static_cast<int>(slot + 1);
    const std::uint32_t word = nbits == 3 ? static_cast<std::uint32_t>(w_q32[prow * cols + c]) : w_q8[prow * cols + c];
    return (word >> shift) & ((1u << nbits) - 1u);
  }
  QORACLE_HD std::int64_t group(int o, int i) const {
    const std::int64_t f = static_cast<std::int64_t>(o) * in_features + i;
    return axis == 1 ? f / cols : f % cols;
  }
  QORACLE_HD float operator()(int o, int i) const {
    const std::int64_t g = group(o, i);
    return (static_cast<float>(code(o, i)) - zero[g]) * scale[g];
  }
};

// aqlm's QuantizedLinear: W[o*og + r][i*ig + c] = scales[o] * sum_k codebooks[k][u][r][c] with u the
// stored code (int16 for 16-bit codebooks, int8 for 8-bit) read modulo 2^nbits.
struct AqlmView {
  const std::int16_t* codes16 = nullptr;  // [Og][Ig][C], nbits 9..16
  const std::int8_t* codes8 = nullptr;    // [Og][Ig][C], nbits <= 8
  const float* codebooks = nullptr;       // [C][K][og][ig]
  const float* scales = nullptr;          // [Og]
  int in_groups = 0, num_codebooks = 1, nbits = 16, out_group = 1, in_group = 8;
  QORACLE_HD float operator()(int o, int i) const {
    const int og = o / out_group, r = o % out_group, ig = i / in_group, c = i % in_group;
    const std::int64_t entries = std::int64_t{1} << nbits;
    float sum = 0.0f;
    for (int k = 0; k < num_codebooks; ++k) {
      const std::int64_t at = (static_cast<std::int64_t>(og) * in_groups + ig) * num_codebooks + k;
      const std::int64_t stored = nbits > 8 ? codes16[at] : codes8[at];
      const std::int64_t u = stored & (entries - 1);  // two's complement: stored mod 2^nbits
      sum += codebooks[((k * entries + u) * out_group + r) * in_group + c];
    }
    return sum * scales[og];
  }
};

// EETQ's EetqLinear: int8 codes with an fp16 scale per output channel (held as float here), in
// one of the checkpoint byte layouts (reference/eetq_format.hpp).
struct EetqView {
  enum Layout { Interleaved, Volta, Plain };
  const std::int8_t* bytes = nullptr;  // the checkpoint's `weight` buffer, k * n bytes
  const float* scales = nullptr;       // [out]
  Layout layout = Interleaved;
  int in_features = 0, out_features = 0;
  QORACLE_HD static std::int64_t swap_middle_bytes(std::int64_t f) {
    return (f & 3) == 1 || (f & 3) == 2 ? f ^ 3 : f;
  }
  // Where the layout stores code (o, i) in `bytes`.
  QORACLE_HD std::int64_t offset(int o, int i) const {
    if (layout == Plain) return static_cast<std::int64_t>(i) * out_features + o;
    if (layout == Volta)  // row-major [in, out], then bytes 1 and 2 of every word swapped
      return swap_middle_bytes(static_cast<std::int64_t>(i) * out_features + o);
    const int t = i & 15, b = t < 8 ? 2 * t : 2 * t - 15;  // sm75-sm89: the closed form (spec eetq.md §2.2)
    return static_cast<std::int64_t>(o >> 1) * (2 * static_cast<std::int64_t>(in_features)) + (i >> 6) * 128 +
           (o & 1) * 64 + ((i >> 4) & 3) * 16 + b;
  }
  // The byte the layout stores for code q (the GPU layouts add 128), and back.
  QORACLE_HD static std::int8_t stored_byte(int q, Layout layout) {
    return layout == Plain ? static_cast<std::int8_t>(q) : static_cast<std::int8_t>(static_cast<std::uint8_t>(q + 128));
  }
  QORACLE_HD int code(int o, int i) const {
    const std::int8_t stored = bytes[offset(o, i)];
    return layout == Plain ? stored : static_cast<int>(static_cast<std::uint8_t>(stored)) - 128;
  }
  QORACLE_HD float operator()(int o, int i) const {
    const int q = code(o, i);
    return static_cast<float>(q) * scales[o];
  }
};

}  // namespace qoracle::optimized

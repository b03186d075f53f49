#pragma once
// The base weights as the tensor-core kernels read them (16-bit activations): every format
// repacked once, when a layer becomes resident, into rows of codes, one row per output, padded to
// whole 16-row warp tiles and whole K blocks (zeros), so that a lane reads its share of a row with
// 16-byte loads and no bounds checks. The bytes are the format's own (codes, groups' scale and
// zero, codebooks); only their order changes, as Marlin and GemLite reshuffle offline.
//
// A layout answers, for row r and a lane's run of kLaneInputs inputs from i0: load() (the raw
// bytes, 16-byte loads that skip L1: weights are streamed once) and value() (input i0 + c's weight
// in the activation dtype, rounded where the library rounds: hqq's rnd(rnd(Q - z) * s), AQLM's
// rounded codebook sum, EETQ's and dense weights exactly). A per-row factor (EETQ's and AQLM's
// scale) stays outside the sum and is applied in the epilogue (row_scale). Written once for host
// and device; the host emulation runs the same code.
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "optimized/device/dtype_bits.hpp"
#include "optimized/device/hd.hpp"

namespace qoracle::optimized {

struct alignas(16) Chunk16 {
  std::uint32_t w[4];
  QORACLE_HD std::uint32_t byte(int k) const { return (w[k >> 2] >> (8 * (k & 3))) & 0xffu; }
  QORACLE_HD std::uint32_t half_word(int k) const { return (w[k >> 1] >> (16 * (k & 1))) & 0xffffu; }
};

// 16 bytes of streamed weights: read once, so not kept in L1 (ld.global.nc.L1::no_allocate).
QORACLE_HD inline Chunk16 load_streamed(const void* p) {
#ifdef __CUDA_ARCH__
  Chunk16 c;
  asm("ld.global.nc.L1::no_allocate.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(c.w[0]), "=r"(c.w[1]), "=r"(c.w[2]), "=r"(c.w[3])
      : "l"(p));
  return c;
#else
  Chunk16 c;
  std::memcpy(&c, p, sizeof c);
  return c;
#endif
}

// 8 bytes of streamed weights (the 1-bit and 1x8 layouts' runs).
QORACLE_HD inline Chunk16 load_streamed8(const void* p) {
  Chunk16 c{};
#ifdef __CUDA_ARCH__
  asm("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(c.w[0]), "=r"(c.w[1]) : "l"(p));
#else
  std::memcpy(&c, p, 8);
#endif
  return c;
}

// Two weights rounded to the dtype and packed low-first, as one register of an mma fragment: the
// pair helper every layout's pair() starts from. (v0, v1 are dtype values already; the packing is
// exact.)
template <class Tag>
QORACLE_HD inline std::uint32_t pack_values(float v0, float v1, Tag tag) {
#ifdef __CUDA_ARCH__
  if constexpr (std::is_same_v<Tag, HalfTag>) {
    const __half2 h = __floats2half2_rn(v0, v1);
    return *reinterpret_cast<const std::uint32_t*>(&h);
  } else {
    const __nv_bfloat162 h = __floats2bfloat162_rn(v0, v1);
    return *reinterpret_cast<const std::uint32_t*>(&h);
  }
#else
  return pack_pair(v0, v1, tag);
#endif
}

// rnd(a * s) for a pair of dtype values a (packed) and one dtype value s: the product of two
// 16-bit values is exact in float32, so one rounding of it is torch's float16/bfloat16 multiply
// (and the host's round_to(a * s)).
template <class Tag>
QORACLE_HD inline std::uint32_t scale_pair(std::uint32_t a, float s, Tag tag) {
#ifdef __CUDA_ARCH__
  if constexpr (std::is_same_v<Tag, HalfTag>) {
    const __half2 r = __hmul2(*reinterpret_cast<const __half2*>(&a), __float2half2_rn(s));
    return *reinterpret_cast<const std::uint32_t*>(&r);
  } else {
    const __nv_bfloat162 r = __hmul2(*reinterpret_cast<const __nv_bfloat162*>(&a), __float2bfloat162_rn(s));
    return *reinterpret_cast<const std::uint32_t*>(&r);
  }
#else
  const float lo = bits_to_float(static_cast<std::uint16_t>(a & 0xffffu), tag);
  const float hi = bits_to_float(static_cast<std::uint16_t>(a >> 16), tag);
  return pack_pair(lo * s, hi * s, tag);
#endif
}

// Rows padded to whole blocks of warp tiles, inputs to whole K blocks (4 lanes x kLaneInputs).
constexpr int kTileRows = 16;
constexpr int kRowsPadUnit = 64;
QORACLE_HD inline int padded(int n, int unit) { return (n + unit - 1) / unit * unit; }

// nn.Linear in the activation dtype (as PEFT stores it): 16 inputs = two 16-byte loads.
template <class Tag>
struct DenseRows {
  static constexpr int kLaneInputs = 16;
  static constexpr bool kSharedCodebooks = false;
  struct Raw {
    Chunk16 c[2];
  };
  const std::uint16_t* w = nullptr;  // [rows_pad][in_pad] bit patterns
  int in_pad = 0;
  QORACLE_HD Raw load(int row, int i0) const {
    const std::uint16_t* p = w + static_cast<long long>(row) * in_pad + i0;
    return {{load_streamed(p), load_streamed(p + 8)}};
  }
  QORACLE_HD float value(const Raw& raw, int, int, int c) const {
    return bits_to_float(static_cast<std::uint16_t>(raw.c[c >> 3].half_word(c & 7)), Tag{});
  }
  // Inputs c and c + 1 (c even) as stored: already the register an mma fragment holds.
  QORACLE_HD std::uint32_t pair(const Raw& raw, int, int, int c) const { return raw.c[c >> 3].w[(c & 7) >> 1]; }
  QORACLE_HD float row_scale(int) const { return 1.0f; }
};

// EETQ: int8 codes per output row (any checkpoint layout, unpermuted), the scale outside the sum.
template <class Tag>
struct Int8Rows {
  static constexpr int kLaneInputs = 16;
  static constexpr bool kSharedCodebooks = false;
  using Raw = Chunk16;
  const std::int8_t* q = nullptr;  // [rows_pad][in_pad]
  const float* scale = nullptr;    // [rows_pad]
  int in_pad = 0;
  QORACLE_HD Raw load(int row, int i0) const { return load_streamed(q + static_cast<long long>(row) * in_pad + i0); }
  QORACLE_HD float value(const Raw& raw, int, int, int c) const {
    return static_cast<float>(static_cast<std::int8_t>(raw.byte(c)));  // exact in either dtype
  }
  QORACLE_HD std::uint32_t pair(const Raw& raw, int row, int i0, int c) const {
    return pack_values(value(raw, row, i0, c), value(raw, row, i0, c + 1), Tag{});
  }
  QORACLE_HD float row_scale(int row) const { return scale[row]; }
};

// HQQ, axis 1, nbits 8/4/2/1: each row's codes packed low bits first (input i in bits
// (i % k) * nbits of byte i / k, k = 8 / nbits); a lane's run is 16 bytes (8 for 1-bit, whose
// 128-input runs would spill), at most 64 inputs; scale and zero per group (groups of a multiple
// of 16 inputs, so 16 consecutive inputs share one), in the dtype as hqq keeps them.
template <class Tag, int NBITS>
struct HqqRows {
  static constexpr int kPerByte = 8 / NBITS;
  static constexpr int kLaneInputs = 16 * kPerByte < 64 ? 16 * kPerByte : 64;
  static constexpr int kRuns = kLaneInputs / 16;  // runs of 16 inputs, one group each
  static constexpr bool kSharedCodebooks = false;
  struct Raw {
    Chunk16 codes;
    float scale[kRuns], zero[kRuns];
  };
  const std::uint8_t* codes = nullptr;  // [rows_pad][in_pad / kPerByte]
  const std::uint16_t* scale = nullptr;  // [groups] dtype bits
  const std::uint16_t* zero = nullptr;
  int in = 0, in_pad = 0, group_size = 64;
  long long groups = 0;
  QORACLE_HD Raw load(int row, int i0) const {
    Raw raw;
    const std::uint8_t* p = codes + (static_cast<long long>(row) * in_pad + i0) / kPerByte;
    raw.codes = kLaneInputs / kPerByte == 16 ? load_streamed(p) : load_streamed8(p);
    for (int s = 0; s < kRuns; ++s) {
      // Padding (inputs past `in`, rows past `out`) reads the last group: finite, times x = 0.
      const int i = i0 + 16 * s < in ? i0 + 16 * s : in - 1;
      long long g = (static_cast<long long>(row) * in + i) / group_size;
      g = g < groups ? g : groups - 1;
      raw.scale[s] = bits_to_float(scale[g], Tag{});
      raw.zero[s] = bits_to_float(zero[g], Tag{});
    }
    return raw;
  }
  QORACLE_HD float code(const Raw& raw, int c) const {
    return static_cast<float>((raw.codes.byte(c / kPerByte) >> (NBITS * (c % kPerByte))) & ((1u << NBITS) - 1u));
  }
  QORACLE_HD float value(const Raw& raw, int, int, int c) const {
    const int s = c / 16;
    return round_to(round_to(code(raw, c) - raw.zero[s], Tag{}) * raw.scale[s], Tag{});
  }
  // value() for inputs c and c + 1 (c even, one group), two at a time: Q - z in float32 as torch
  // computes it, rounded as a pair, then one paired multiply by s.
  QORACLE_HD std::uint32_t pair(const Raw& raw, int, int, int c) const {
    const int s = c / 16;
    return scale_pair(pack_values(code(raw, c) - raw.zero[s], code(raw, c + 1) - raw.zero[s], Tag{}), raw.scale[s], Tag{});
  }
  QORACLE_HD float row_scale(int) const { return 1.0f; }
};

// AQLM with one output per code group and groups of 8 inputs (every published config): C
// codebooks of 2^nbits entries, codes int16 (nbits > 8) or int8, 8 groups (64 inputs) per lane
// run. The codebook sum is rounded to the dtype (as aqlm's kernels sum in it), the scale stays
// outside the sum.
template <class Tag, int C, class Code>
struct AqlmRows {
  static constexpr int kLaneInputs = 64;
  // 8-bit codebooks (C x 256 x 8 floats, 16 KB for 2x8) go to shared memory for the GEMV; 16-bit
  // ones (2 MB) are read through L1/L2.
  static constexpr bool kSharedCodebooks = sizeof(Code) == 1;
  static constexpr int kCodeBytes = 8 * C * static_cast<int>(sizeof(Code));  // 8, 16 or 32
  static constexpr int kChunks = kCodeBytes < 16 ? 1 : kCodeBytes / 16;
  struct Raw {
    Chunk16 c[kChunks];
  };
  const Code* codes = nullptr;       // [rows_pad][in_pad / 8][C]
  const float* codebooks = nullptr;  // [C][2^nbits][8]
  const float* scales = nullptr;     // [rows_pad]
  int in_pad = 0, nbits = 16;
  QORACLE_HD Raw load(int row, int i0) const {
    const Code* p = codes + (static_cast<long long>(row) * in_pad + i0) / 8 * C;
    Raw raw{};
    if constexpr (kCodeBytes < 16) {
      raw.c[0] = load_streamed8(p);
    } else {
      for (int j = 0; j < kChunks; ++j) raw.c[j] = load_streamed(p + j * 16 / static_cast<int>(sizeof(Code)));
    }
    return raw;
  }
  QORACLE_HD float value(const Raw& raw, int, int, int c) const {
    const long long entries = 1ll << nbits;
    float sum = 0.0f;
    for (int k = 0; k < C; ++k) {
      const int at = (c / 8) * C + k;  // the code's index in the run
      const std::uint32_t stored = sizeof(Code) == 2 ? raw.c[at / 8].half_word(at % 8) : raw.c[at / 16].byte(at % 16);
      const long long u = static_cast<long long>(stored) & (entries - 1);
      sum += codebooks[((k * entries + u) * 8) + c % 8];
    }
    return round_to(sum, Tag{});
  }
  // value() for inputs c and c + 1 (c even, one group): each codebook row read two floats at a time.
  QORACLE_HD std::uint32_t pair(const Raw& raw, int, int, int c) const {
    const long long entries = 1ll << nbits;
    float s0 = 0.0f, s1 = 0.0f;
    for (int k = 0; k < C; ++k) {
      const int at = (c / 8) * C + k;
      const std::uint32_t stored = sizeof(Code) == 2 ? raw.c[at / 8].half_word(at % 8) : raw.c[at / 16].byte(at % 16);
      const long long u = static_cast<long long>(stored) & (entries - 1);
      const float* row = codebooks + (k * entries + u) * 8 + c % 8;
#ifdef __CUDA_ARCH__
      const float2 v = *reinterpret_cast<const float2*>(row);  // global or shared (kSharedCodebooks)
      s0 += v.x;
      s1 += v.y;
#else
      s0 += row[0];
      s1 += row[1];
#endif
    }
    return pack_values(s0, s1, Tag{});  // each sum rounded to the dtype
  }
  QORACLE_HD float row_scale(int row) const { return scales[row]; }
  QORACLE_HD int codebook_floats() const { return C * (1 << nbits) * 8; }
};

// Shared memory a layout's codebooks take in the GEMV (0: none there).
template <class Layout>
QORACLE_HD int shared_codebook_bytes(const Layout& w) {
  if constexpr (Layout::kSharedCodebooks)
    return static_cast<int>(sizeof(float)) * w.codebook_floats();
  else
    return 0;
}

}  // namespace qoracle::optimized

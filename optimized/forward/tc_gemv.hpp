#pragma once
// The tensor-core GEMV (1-16 tokens, 16-bit activations), its per-lane code written once for host
// and device. One warp owns 16 weight rows; per K block of 4 x kLaneInputs inputs, lane (g, q)
// (g = lane / 4, q = lane % 4) reads kLaneInputs consecutive inputs of rows g and g + 8 with
// 16-byte loads, dequantizes them in registers and feeds them to mma.m16n8k16 as A (16 rows x 16
// k), with the activations of token g as B (16 k x 8 tokens), float32 accumulators. Tokens 8..15
// take a second mma on the same A. So each stored weight byte is read once for all tokens, and the
// tokens are the mma's N, not a grid dimension.
//
// The k slots of an mma need not be consecutive inputs: the sum is the same in any order, as long
// as A and B agree. Step j of lane q's run uses inputs i0 + 4j + {0,1} for k slots 2q + {0,1} and
// i0 + 4j + {2,3} for k slots 2q + 8 + {0,1}, so a lane's A registers come from its own contiguous
// run (no shuffles) and its B registers are one 8-byte shared-memory load. The fragment layouts are
// the PTX ISA's ("Matrix Fragments for mma.m16n8k16 with floating point type"); mma_on_host
// computes the same product from the 32 lanes' registers, so the host emulation checks this mapping.
#include <cstdint>
#include <cstring>

#include "optimized/device/dtype_bits.hpp"
#include "optimized/device/hd.hpp"
#include "optimized/forward/row_layouts.hpp"

namespace qoracle::optimized {

constexpr int kGemvMaxTokens = 16;  // more tokens take the GEMM path
constexpr int kGemvWarps = 4;        // warps per block: 64 rows
constexpr int kGemvThreads = 32 * kGemvWarps;
constexpr int kGemvBlockRows = kTileRows * kGemvWarps;
static_assert(kRowsPadUnit % kGemvBlockRows == 0, "padded rows are whole row blocks");
constexpr int kGemvStaticShared = 16;  // the split's arrival ticket (4 bytes), aligned as the compiler places it

struct MmaA {
  std::uint32_t r[4];
};
struct MmaB {
  std::uint32_t r[2];
};
struct MmaC {
  float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
};

// A registers of step j for lane q's run starting at input i0 of rows ra (g) and rb (g + 8).
template <class Layout, class Tag>
QORACLE_HD MmaA fragment_a(const Layout& w, const typename Layout::Raw& raw_a, const typename Layout::Raw& raw_b,
                           int ra, int rb, int i0, int j, Tag tag) {
  (void)tag;  // the layout's pair() rounds to its Tag
  const int c = 4 * j;
  return {{w.pair(raw_a, ra, i0, c), w.pair(raw_b, rb, i0, c), w.pair(raw_a, ra, i0, c + 2), w.pair(raw_b, rb, i0, c + 2)}};
}

// B registers of step j: token row `xs_row` of the shared activations (dtype bits), at the lane's
// run offset `at` (4-element aligned); zero for a token past the real ones (its row is not filled).
QORACLE_HD inline MmaB fragment_b(const std::uint16_t* xs_row, int at, int j, bool real) {
  if (!real) return {{0u, 0u}};
  const std::uint16_t* p = xs_row + at + 4 * j;
  return {{static_cast<std::uint32_t>(p[0]) | (static_cast<std::uint32_t>(p[1]) << 16),
           static_cast<std::uint32_t>(p[2]) | (static_cast<std::uint32_t>(p[3]) << 16)}};
}

// The shared activations' row stride in elements: the K slice plus 4, so that the 8-byte loads of
// a quarter warp (4 tokens x 4 lanes) fall in distinct banks.
QORACLE_HD inline int xs_stride(int k_slice) { return k_slice + 4; }

// The mma on the host: C += A B from the 32 lanes' registers, placed by the PTX layouts, summed
// in k order in float32 (the hardware's order is unspecified; the GPU is compared up to it).
template <class Tag>
inline void mma_on_host(const MmaA* a, const MmaB* b, MmaC* c, Tag tag) {
  float A[16][16], B[16][8];
  auto lo = [&](std::uint32_t r) { return bits_to_float(static_cast<std::uint16_t>(r & 0xffffu), tag); };
  auto hi = [&](std::uint32_t r) { return bits_to_float(static_cast<std::uint16_t>(r >> 16), tag); };
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, q = lane & 3;
    A[g][2 * q] = lo(a[lane].r[0]);
    A[g][2 * q + 1] = hi(a[lane].r[0]);
    A[g + 8][2 * q] = lo(a[lane].r[1]);
    A[g + 8][2 * q + 1] = hi(a[lane].r[1]);
    A[g][2 * q + 8] = lo(a[lane].r[2]);
    A[g][2 * q + 9] = hi(a[lane].r[2]);
    A[g + 8][2 * q + 8] = lo(a[lane].r[3]);
    A[g + 8][2 * q + 9] = hi(a[lane].r[3]);
    B[2 * q][g] = lo(b[lane].r[0]);
    B[2 * q + 1][g] = hi(b[lane].r[0]);
    B[2 * q + 8][g] = lo(b[lane].r[1]);
    B[2 * q + 9][g] = hi(b[lane].r[1]);
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, q = lane & 3;
    for (int i = 0; i < 4; ++i) {
      const int row = i < 2 ? g : g + 8, col = 2 * q + (i & 1);
      float s = c[lane].c[i];
      for (int k = 0; k < 16; ++k) s += A[row][k] * B[k][col];
      c[lane].c[i] = s;
    }
  }
}

// Where accumulator i of lane `lane` belongs: row (of the warp's 16) and token (of the mma's 8).
QORACLE_HD inline int accumulator_row(int lane, int i) { return (lane >> 2) + (i < 2 ? 0 : 8); }
QORACLE_HD inline int accumulator_token(int lane, int i) { return 2 * (lane & 3) + (i & 1); }

// How a GEMV launch splits the work: warps own 16 rows; K is split into `splits` slices of
// k_slice inputs (a multiple of the layout's K block) so that the grid fills the device; the last
// block of a row tile to finish sums the slices' partials in slice order (deterministic) and
// writes y.
struct GemvPlan {
  int row_blocks = 0;  // blocks along the rows (kGemvBlockRows each)
  int splits = 1;      // K slices
  int k_slice = 0;     // inputs per slice
  int token_tiles = 1;  // 1 (<= 8 tokens) or 2
  int shared_bytes = 0;  // the activations' slice, then the codebooks (codebook_bytes)
  int codebook_bytes = 0;
};

// rows_pad: the layout's padded rows; k_block: 4 x kLaneInputs; sms: the device's SM count;
// codebook_bytes: shared memory the layout's codebooks take beside the activations' slice.
GemvPlan plan_gemv(int rows_pad, int in_pad, int k_block, int tokens, int sms, int codebook_bytes = 0);

}  // namespace qoracle::optimized

namespace qoracle::optimized {

// The activations' K slice [k_begin, k_begin + k_len) of the `tokens` real token rows into shared
// memory (zero past `in`), row stride `stride`; rows past `tokens` are never read (their B
// fragments are zero). Eight elements per step, 16-byte loads where the rows allow.
QORACLE_HD inline void fill_activation_slice(const std::uint16_t* x, int tokens, int in, int k_begin, int k_len,
                                             int stride, std::uint16_t* xs, int tid, int nthreads) {
  const bool vector = in % 8 == 0 && reinterpret_cast<unsigned long long>(x) % 16 == 0;
  for (int t = 0; t < tokens; ++t) {
    const std::uint16_t* row = x + static_cast<long long>(t) * in + k_begin;
    std::uint16_t* dst = xs + t * stride;
    for (int e = 8 * tid; e < k_len; e += 8 * nthreads) {
      std::uint32_t v[4] = {0, 0, 0, 0};
      if (vector && k_begin + e + 8 <= in) {
        std::memcpy(v, row + e, 16);
      } else {
        for (int c = 0; c < 8; ++c)
          if (k_begin + e + c < in) v[c / 2] |= static_cast<std::uint32_t>(row[e + c]) << (16 * (c % 2));
      }
      std::memcpy(dst + e, v, 8);  // rows are 8-byte aligned (stride = k_slice + 4)
      std::memcpy(dst + e + 4, v + 2, 8);
    }
  }
}

}  // namespace qoracle::optimized

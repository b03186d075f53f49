#pragma once
// OFT's input-centric rotation on tensor cores for the GEMM path (many tokens, one adapter, blocks
// of 16, 32 or 64): x_rot[t][j b + c] = sum_k x[t][j b + k] R_j[k][c], as mma.m16n8k8 in TF32 with
// 16 tokens as M, 8 output features as N and 8 inputs as K. The activations (16-bit values) are
// exact in TF32; R (float32) is split into a TF32 high part and the TF32 rounding of the rest, and
// both are multiplied (A B_hi + A B_lo), which carries R to ~2^-22, float32's own accuracy here,
// before the result is rounded to the activation dtype. Written once for host and device: the host
// emulation builds the 32 lanes' fragments and multiplies them by the PTX layouts
// ("Matrix Fragments for mma.m16n8k8", .tf32), so CI checks the mapping.
#include <cstdint>
#include <cstring>

#include "optimized/device/dtype_bits.hpp"
#include "optimized/device/hd.hpp"
#include "optimized/rotation/rotation_blocks.hpp"

namespace qoracle::optimized {

constexpr int kRotationWarps = 4;  // 64 tokens per block
constexpr int kRotationThreads = 32 * kRotationWarps;
constexpr int kRotationTokens = 16 * kRotationWarps;

// Block sizes the tensor-core rotation takes (one OFT adapter, its unit the block size).
QORACLE_HD inline bool tc_rotation_fits(int rotations, int block_size) {
  return rotations == 1 && (block_size == 16 || block_size == 32 || block_size == 64);
}

// Shared memory rows, padded so fragment loads fall in distinct banks.
QORACLE_HD inline int rotation_x_stride(int b) { return b + 4; }
QORACLE_HD inline int rotation_r_stride(int b) { return b + 8; }
QORACLE_HD inline int tc_rotation_shared_bytes(int b) {
  return static_cast<int>(sizeof(float)) * (kRotationTokens * rotation_x_stride(b) + 2 * b * rotation_r_stride(b));
}

// Blocks of 64 need more than the 48 KB a launch gets without opting in (static shared memory: none).
QORACLE_HD inline bool tc_rotation_needs_opt_in(int b) { return tc_rotation_shared_bytes(b) > 48 * 1024; }

// float32 -> TF32, round to nearest, ties away (cvt.rna.tf32.f32): the low 13 bits cleared.
QORACLE_HD inline float to_tf32(float v) {
#ifdef __CUDA_ARCH__
  std::uint32_t r;
  asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(v));
  return __uint_as_float(r);
#else
  std::uint32_t bits;
  std::memcpy(&bits, &v, 4);
  if ((bits & 0x7f800000u) != 0x7f800000u) bits = (bits + 0x1000u) & ~0x1fffu;  // finite: round the magnitude
  float out;
  std::memcpy(&out, &bits, 4);
  return out;
#endif
}

struct Tf32A {
  float r[4];
};
struct Tf32B {
  float r[2];
};

// Lane (g, q)'s registers for the k-step at k0 and the n-tile at n0, from the shared tiles:
// xs (16 tokens of this warp, stride rotation_x_stride) and r (R_j, stride rotation_r_stride).
QORACLE_HD inline Tf32A rotation_fragment_a(const float* xs, int stride, int lane, int k0) {
  const int g = lane >> 2, q = lane & 3;
  return {{xs[g * stride + k0 + q], xs[(g + 8) * stride + k0 + q], xs[g * stride + k0 + q + 4],
           xs[(g + 8) * stride + k0 + q + 4]}};
}
QORACLE_HD inline Tf32B rotation_fragment_b(const float* r, int stride, int lane, int k0, int n0) {
  const int g = lane >> 2, q = lane & 3;
  return {{r[(k0 + q) * stride + n0 + g], r[(k0 + q + 4) * stride + n0 + g]}};
}

// Block (j, token tile t0)'s shared tiles: R_j split into TF32 high and low parts, and the tile's
// activations widened to float (zero past `tokens`).
template <class Tag>
QORACLE_HD void tc_rotation_fill(const Element<Tag>* x, int tokens, int in, const RotationBlocks& rot, int j, int t0,
                                 float* smem, int tid, int nthreads) {
  const int b = rot.block_size, xsd = rotation_x_stride(b), rsd = rotation_r_stride(b);
  float* xs = smem;
  float* r_hi = xs + kRotationTokens * xsd;
  float* r_lo = r_hi + b * rsd;
  const float* r = rot.block(j);
  for (int e = tid; e < b * b; e += nthreads) {
    const int k = e / b, c = e % b;
    const float hi = to_tf32(r[e]);
    r_hi[k * rsd + c] = hi;
    r_lo[k * rsd + c] = to_tf32(r[e] - hi);
  }
  for (int e = tid; e < kRotationTokens * b; e += nthreads) {
    const int t = e / b, c = e % b;
    xs[t * xsd + c] = t0 + t < tokens ? bits_to_float(x[static_cast<long long>(t0 + t) * in + j * b + c], Tag{}) : 0.0f;
  }
}

// Lane `lane` of warp `warp` stores its accumulators of the n-tile at n0, rounded to the dtype.
template <class Tag>
QORACLE_HD void tc_rotation_store(const float (&c)[4], int tokens, int in, int b, int j, int t0, int warp, int lane,
                                  int n0, Element<Tag>* x_rot) {
  const int g = lane >> 2, q = lane & 3;
  for (int i = 0; i < 4; ++i) {
    const int t = t0 + 16 * warp + g + (i < 2 ? 0 : 8), col = j * b + n0 + 2 * q + (i & 1);
    if (t < tokens) x_rot[static_cast<long long>(t) * in + col] = float_to_bits(c[i], Tag{});
  }
}

// The mma on the host: C (16 x 8, the m16n8k16 accumulator layout) += A (16 x 8) B (8 x 8).
inline void mma_tf32_on_host(const Tf32A* a, const Tf32B* b, float (*c)[4]) {
  float A[16][8], B[8][8];
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, q = lane & 3;
    A[g][q] = a[lane].r[0];
    A[g + 8][q] = a[lane].r[1];
    A[g][q + 4] = a[lane].r[2];
    A[g + 8][q + 4] = a[lane].r[3];
    B[q][g] = b[lane].r[0];
    B[q + 4][g] = b[lane].r[1];
  }
  for (int lane = 0; lane < 32; ++lane) {
    const int g = lane >> 2, q = lane & 3;
    for (int i = 0; i < 4; ++i) {
      const int row = i < 2 ? g : g + 8, col = 2 * q + (i & 1);
      float s = c[lane][i];
      for (int k = 0; k < 8; ++k) s += A[row][k] * B[k][col];
      c[lane][i] = s;
    }
  }
}

}  // namespace qoracle::optimized

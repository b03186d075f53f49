#pragma once
// The adapters' work that every output needs, done once per forward by one small launch before the
// base product (not once per block of outputs): block roles by index,
//   [0, chunks)              OFT: chunk c rotates features [c unit, (c + 1) unit) of one group of
//                            kPrepassTokens tokens (the grid's y) through each adapter in turn
//                            (unit: the block sizes' least common multiple, so a chunk holds whole
//                            blocks of every adapter), in shared memory, and stores x_rot in the
//                            activation dtype;
//   [chunks, chunks + rank)  LoRA (the GEMV's few tokens): u[t][r] = x[t] . A[r], summed over a
//                            tree of the block's threads, in float32 (token group 0 only).
// Written once for host and device; the host runs a block as one thread.
#include <algorithm>

#include "optimized/device/dtype_bits.hpp"
#include "optimized/forward/fused_adapters.hpp"

namespace qoracle::optimized {

constexpr int kPrepassThreads = 256;
constexpr int kPrepassTokens = 16;  // tokens rotated per pass of a chunk
constexpr int kMaxRotationUnit = 256;

// Shared floats a prepass block needs: two token tiles of one chunk, or the u tree.
QORACLE_HD inline int prepass_shared_floats(int unit) {
  const int rotation = 2 * kPrepassTokens * unit;
  return rotation > kPrepassThreads ? rotation : kPrepassThreads;
}

QORACLE_HD inline int prepass_shared_bytes(int unit) { return static_cast<int>(sizeof(float)) * prepass_shared_floats(unit); }

// OFT chunk `chunk` of tokens [t_begin, t_end): x (tokens, in) in dtype In -> x_rot in dtype Out.
template <class InTag, class OutTag, class Sync>
QORACLE_HD void prepass_rotate_chunk(const Element<InTag>* x, int t_begin, int t_end, int in, int unit, int chunk,
                                     const FusedAdapters& a, Element<OutTag>* x_rot, float* smem, int tid, int nthreads,
                                     Sync sync) {
  const int f0 = chunk * unit;
  float* const first = smem;
  float* const second = smem + kPrepassTokens * unit;
  for (int t0 = t_begin; t0 < t_end; t0 += kPrepassTokens) {
    const int nt = t_end - t0 < kPrepassTokens ? t_end - t0 : kPrepassTokens;
    for (int e = tid; e < nt * unit; e += nthreads) {
      const int t = e / unit, c = e % unit;
      first[e] = bits_to_float(x[static_cast<long long>(t0 + t) * in + f0 + c], InTag{});
    }
    sync();
    float* src = first;
    float* dst = second;
    for (int k = 0; k < a.rotations; ++k) {
      rotate_blocks(src, nt, unit, f0, in, rotation_at(a, k), dst, tid, nthreads);
      sync();
      float* done = dst;  // the rotated tile is the next rotation's source
      dst = src;
      src = done;
    }
    for (int e = tid; e < nt * unit; e += nthreads) {
      const int t = e / unit, c = e % unit;
      x_rot[static_cast<long long>(t0 + t) * in + f0 + c] = float_to_bits(src[e], OutTag{});
    }
    sync();  // the next pass overwrites the tiles
  }
}

// LoRA row r: u[t][r] for t < tokens (<= kPrepassTokens). partial: nthreads floats (a power of two).
template <class InTag, class Sync>
QORACLE_HD void prepass_lora_row(const Element<InTag>* x, int tokens, int in, const FusedAdapters& a, int r, float* u,
                                 float* partial, int tid, int nthreads, Sync sync) {
  const float* row = a.lora_a + static_cast<long long>(r) * in;
  for (int t = 0; t < tokens; ++t) {
    float acc = 0.0f;
    for (int i = tid; i < in; i += nthreads) acc += bits_to_float(x[static_cast<long long>(t) * in + i], InTag{}) * row[i];
    partial[tid] = acc;
    sync();
    for (int s = nthreads / 2; s > 0; s /= 2) {
      if (tid < s) partial[tid] += partial[tid + s];
      sync();
    }
    if (tid == 0) u[t * a.rank + r] = partial[0];
    sync();
  }
}

}  // namespace qoracle::optimized

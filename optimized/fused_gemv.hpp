#pragma once
// The fused adapter layer for few tokens (GEMV), written once for host and device:
//   prologue (per token, all threads of a block): u = x * A^T (LoRA) and x_rot = x * R_1 * R_2 ...
//     (OFT, input-centric: the rotated activations live only in shared memory);
//   main loop (one warp per output feature): dot(x_rot, W[o]) with W dequantized from the stored
//     bytes by a weight view (optimized/weight_views.hpp), float32 accumulation;
//   epilogue: g[o] * dot + bias + s * (B[o] . u + b_B[o]), g being DoRA's factor (1 without).
// x is float, half or bfloat16 (X); it is widened to float32 as it is read. A layer has OFT or
// LoRA or neither (both: LoRA reads the unrotated x, as stacking would).
#include "optimized/cayley_block.hpp"
#include "optimized/rotation_blocks.hpp"

namespace qoracle::optimized {

constexpr int kMaxRotations = 4;  // OFT adapters active at once

struct FusedAdapters {
  int rotations = 0;                            // OFT: applied in order, x R_1 R_2 ...
  RotationBlocks rotation[kMaxRotations] = {};  // from batched_cayley, one block per parameter row
  const float* lora_a = nullptr;  // LoRA: A (rank, in), B (out, rank), scaling
  const float* lora_b = nullptr;
  int rank = 0;
  float scaling = 0.0f;
  const float* lora_bias = nullptr;  // (out): lora_B's bias, inside the scaling, or none
  const float* dot_scale = nullptr;  // (out): DoRA's factor on x W^T, or none
  const float* bias = nullptr;       // (out) or none
};

// For each of `rows` rows of n features (stride n) starting at feature f0 (a multiple of b):
// dst[j b + c] = sum_k src[j b + k] R_j[k][c], R_j being block (f0 + j b) / b of `rot`.
// Features at or beyond `in` (a tile's padding) are copied.
template <class Src>
QORACLE_HD void rotate_blocks(const Src* src, int rows, int n, int f0, int in, const RotationBlocks& rot, float* dst,
                              int tid, int nthreads) {
  const int b = rot.block_size;
  for (int e = tid; e < rows * n; e += nthreads) {
    const int t = e / n, c = e % n;
    const Src* row = src + static_cast<long long>(t) * n;
    if (f0 + c >= in) {
      dst[e] = static_cast<float>(row[c]);
      continue;
    }
    const int start = c - c % b, col = c % b;
    const float* r = rot.block((f0 + c) / b);
    float acc = 0.0f;
    for (int k = 0; k < b; ++k) acc += static_cast<float>(row[start + k]) * r[k * b + col];
    dst[e] = acc;
  }
}

// The buffer the first rotation writes: rotations alternate between x_rot and scratch so that the
// last one lands in x_rot.
QORACLE_HD inline bool first_rotation_into_scratch(int rotations) { return rotations % 2 == 0; }

// x: this token's in features. x_rot: in floats; scratch: in floats (two or more rotations);
// u: rank floats.
template <class X, class Sync>
QORACLE_HD void fused_prologue(const X* x, int in, const FusedAdapters& a, float* x_rot, float* scratch, float* u,
                               int tid, int nthreads, Sync sync) {
  for (int e = tid; e < a.rank; e += nthreads) {
    float acc = 0.0f;
    for (int i = 0; i < in; ++i) acc += static_cast<float>(x[i]) * a.lora_a[static_cast<long long>(e) * in + i];
    u[e] = acc;
  }
  if (a.rotations == 0) {
    for (int e = tid; e < in; e += nthreads) x_rot[e] = static_cast<float>(x[e]);
  } else {
    float* dst = first_rotation_into_scratch(a.rotations) ? scratch : x_rot;
    rotate_blocks(x, 1, in, 0, in, a.rotation[0], dst, tid, nthreads);
    for (int k = 1; k < a.rotations; ++k) {
      sync();
      float* src = dst;
      dst = src == x_rot ? scratch : x_rot;
      rotate_blocks(src, 1, in, 0, in, a.rotation[k], dst, tid, nthreads);
    }
  }
  sync();
}

// This lane's share of dot(x_rot, W[o]); the lanes' shares sum to the whole.
template <class View>
QORACLE_HD float fused_dot(const View& w, int o, const float* x_rot, int in, int lane, int lanes) {
  float acc = 0.0f;
  for (int i = lane; i < in; i += lanes) acc += x_rot[i] * w(o, i);
  return acc;
}

QORACLE_HD inline float fused_epilogue(float dot, int o, const FusedAdapters& a, const float* u) {
  float y = a.dot_scale ? a.dot_scale[o] * dot : dot;
  if (a.bias) y += a.bias[o];
  if (a.lora_b) {
    float lora = 0.0f;
    for (int r = 0; r < a.rank; ++r) lora += a.lora_b[static_cast<long long>(o) * a.rank + r] * u[r];
    if (a.lora_bias) lora += a.lora_bias[o];  // PEFT: lora_B(lora_A(x)) * scaling, lora_B with a bias
    y += a.scaling * lora;
  }
  return y;
}

}  // namespace qoracle::optimized

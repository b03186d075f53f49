#pragma once
// A fused layer's adapters as every forward path reads them, and the pieces of arithmetic all
// paths share, written once for host and device:
//   OFT (input-centric): x_rot = x R_1 R_2 ..., each R block diagonal (rotate_blocks), computed by
//     the prepass (optimized/forward/prepass.hpp) before the base product reads it;
//   LoRA: u = x A^T (the prepass, or a GEMM), then in the epilogue
//     y = g[o] * dot + bias + s * (B[o] . u + b_B[o]), g being DoRA's factor (1 without).
// A layer has OFT or LoRA or neither (both: LoRA reads the unrotated x, as stacking would).
#include "optimized/rotation/cayley_block.hpp"
#include "optimized/rotation/rotation_blocks.hpp"

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

// Adapter k's blocks, by constant indices (a switch, so a kernel never indexes its parameter
// array at run time).
QORACLE_HD inline const RotationBlocks& rotation_at(const FusedAdapters& a, int k) {
  static_assert(kMaxRotations == 4, "one case per adapter");
  switch (k) {
    case 0: return a.rotation[0];
    case 1: return a.rotation[1];
    case 2: return a.rotation[2];
    default: return a.rotation[3];
  }
}

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

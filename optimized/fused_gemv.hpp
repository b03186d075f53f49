#pragma once
// The fused adapter layer for few tokens (GEMV), written once for host and device:
//   prologue (per token, all threads of a block): x_rot = x * R_bd (OFT, input-centric: the
//     rotated activations live only in shared memory) and u = x * A^T (LoRA);
//   main loop (one warp per output feature): dot(x_rot, W[o]) with W dequantized from the stored
//     bytes by a weight view (optimized/weight_views.hpp), float32 accumulation;
//   epilogue: + bias + s * (B[o] . u + b_B[o]).
// A layer has OFT or LoRA or neither (both: LoRA reads the unrotated x, as stacking would).
#include "optimized/cayley_block.hpp"

namespace qoracle::optimized {

struct FusedAdapters {
  const float* rotation = nullptr;  // OFT: r blocks of b x b (R per block, from batched_cayley)
  int block_size = 0;
  const float* lora_a = nullptr;  // LoRA: A (rank, in), B (out, rank), scaling
  const float* lora_b = nullptr;
  int rank = 0;
  float scaling = 0.0f;
  const float* lora_bias = nullptr;  // (out): lora_B's bias, inside the scaling, or none
  const float* bias = nullptr;       // (out) or none
};

template <class Sync>
QORACLE_HD void fused_prologue(const float* x, int in, const FusedAdapters& a, float* x_rot, float* u, int tid,
                               int nthreads, Sync sync) {
  const int b = a.block_size;
  for (int e = tid; e < in; e += nthreads) {
    if (!a.rotation) {
      x_rot[e] = x[e];
      continue;
    }
    const int j = e / b, c = e % b;  // x_rot[j b + c] = sum_k x[j b + k] R_j[k][c]
    const float* r = a.rotation + static_cast<long long>(j) * b * b;
    float acc = 0.0f;
    for (int k = 0; k < b; ++k) acc += x[j * b + k] * r[k * b + c];
    x_rot[e] = acc;
  }
  for (int e = tid; e < a.rank; e += nthreads) {
    float acc = 0.0f;
    for (int i = 0; i < in; ++i) acc += x[i] * a.lora_a[static_cast<long long>(e) * in + i];
    u[e] = acc;
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
  float y = dot;
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

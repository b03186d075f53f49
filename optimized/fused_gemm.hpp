#pragma once
// The fused adapter layer for many tokens (GEMM), written once for host and device. A thread
// block owns a tile of kGemmTileOut outputs x kGemmTileTokens tokens and walks the input features
// in steps of gemm_tile_k(unit), unit being the least common multiple of the OFT block sizes:
//   1. the activations' tile is loaded (widened to float32), LoRA's u = x * A^T gathers this
//      step's terms, and the tile is rotated by each OFT adapter's blocks in turn (a step is a
//      whole number of every adapter's blocks, so the input-centric rotation needs nothing outside
//      the tile: x * R_bd never goes back to global memory);
//   2. the weights' tile is dequantized from the stored bytes by a weight view;
//   3. every output of the tile adds this step's dot product (float32, in input order).
// The epilogue (bias, s * B . u) is the GEMV's. Steps 1-3 end at a barrier: the next step
// overwrites the tiles.
#include "optimized/fused_gemv.hpp"

namespace qoracle::optimized {

constexpr int kGemvMaxTokens = 8;  // more tokens take the GEMM
constexpr int kGemmTileOut = 32, kGemmTileTokens = 16, kGemmThreads = 256;
constexpr int kGemmAccumulators = kGemmTileOut * kGemmTileTokens / kGemmThreads;  // per thread

constexpr int kGemmMaxTileK = 256;  // shared memory: 64 * 256 floats of tiles, 64 KB

// Input features per step: at least 64, and a multiple of `unit` (the OFT blocks' least common
// multiple, 1 without OFT). At most kGemmMaxTileK when unit is (check_fused_layer refuses more).
QORACLE_HD inline int gemm_tile_k(int unit) {
  const int b = unit > 1 ? unit : 1;
  return b >= 64 ? b : b * ((64 + b - 1) / b);
}

// Floats of shared memory a block needs: activations and their rotation, weights, u per token.
QORACLE_HD inline int gemm_shared_floats(int tile_k, int rank) {
  return 2 * kGemmTileTokens * tile_k + kGemmTileOut * tile_k + kGemmTileTokens * rank;
}

// Returns the rotated tile: xs itself without OFT, else x_rot or xs (the rotations alternate
// between the two).
template <class X, class Sync>
QORACLE_HD const float* gemm_load_activations(const X* x, int tokens, int in, int t0, int k0, int bk,
                                              const FusedAdapters& a, float* xs, float* x_rot, float* u, int tid,
                                              int nthreads, Sync sync) {
  for (int e = tid; e < kGemmTileTokens * bk; e += nthreads) {
    const int t = e / bk, c = e % bk;
    xs[e] = t0 + t < tokens && k0 + c < in ? static_cast<float>(x[static_cast<long long>(t0 + t) * in + k0 + c]) : 0.0f;
  }
  sync();
  for (int e = tid; e < kGemmTileTokens * a.rank; e += nthreads) {
    const int t = e / a.rank, r = e % a.rank;
    float acc = u[e];
    for (int c = 0; c < bk && k0 + c < in; ++c) acc += xs[t * bk + c] * a.lora_a[static_cast<long long>(r) * in + k0 + c];
    u[e] = acc;
  }
  const float* tile = xs;
  for (int k = 0; k < a.rotations; ++k) {
    if (k > 0) sync();  // the previous rotation's output is complete
    float* dst = tile == xs ? x_rot : xs;
    // k0 is a multiple of every block size
    rotate_blocks(tile, kGemmTileTokens, bk, k0, in, a.rotation[k], dst, tid, nthreads);
    tile = dst;
  }
  sync();
  return tile;
}

template <class View, class Sync>
QORACLE_HD void gemm_load_weights(const View& w, int out, int in, int o0, int k0, int bk, float* ws, int tid,
                                  int nthreads, Sync sync) {
  for (int e = tid; e < kGemmTileOut * bk; e += nthreads) {
    const int m = e / bk, c = e % bk;  // consecutive threads read consecutive inputs of one row
    ws[e] = o0 + m < out && k0 + c < in ? w(o0 + m, k0 + c) : 0.0f;
  }
  sync();
}

// Slots = accumulators per thread: kGemmAccumulators with kGemmThreads threads on the device, the
// whole tile for one thread on the host. Slot i of thread tid is output p = tid + i * nthreads of
// the tile (p = m * kGemmTileTokens + t).
template <int Slots, class Sync>
QORACLE_HD void gemm_accumulate(const float* ws, const float* x_rot, int bk, float* acc, int tid, int nthreads,
                                Sync sync) {
  for (int i = 0; i < Slots; ++i) {
    const int p = tid + i * nthreads, m = p / kGemmTileTokens, t = p % kGemmTileTokens;
    float s = acc[i];
    for (int c = 0; c < bk; ++c) s += ws[m * bk + c] * x_rot[t * bk + c];
    acc[i] = s;
  }
  sync();
}

template <int Slots, class Y>
QORACLE_HD void gemm_epilogue(const float* acc, const FusedAdapters& a, const float* u, int out, int tokens, int o0,
                              int t0, Y* y, int tid, int nthreads) {
  for (int i = 0; i < Slots; ++i) {
    const int p = tid + i * nthreads, m = p / kGemmTileTokens, t = p % kGemmTileTokens;
    if (o0 + m < out && t0 + t < tokens)
      y[static_cast<long long>(t0 + t) * out + o0 + m] = static_cast<Y>(fused_epilogue(acc[i], o0 + m, a, u + t * a.rank));
  }
}

}  // namespace qoracle::optimized

#pragma once
// One OFT adapter's block-diagonal rotation as the kernels read it: the b x b block R_j of input
// block j, row-major. With block_share every block is the same one matrix, so `stride` is 0 and
// nothing is replicated: the batched Cayley's output (one block per parameter row) is read as is,
// wherever it was computed.
#include "optimized/device/hd.hpp"

namespace qoracle::optimized {

struct RotationBlocks {
  const float* r = nullptr;  // rows x b x b (rows: the in / b blocks, or 1 with block_share)
  int block_size = 0;        // b
  long long stride = 0;      // floats from R_j to R_{j+1}: b * b, or 0 with block_share
  QORACLE_HD const float* block(int j) const { return r + static_cast<long long>(j) * stride; }
};

QORACLE_HD inline RotationBlocks rotation_blocks(const float* r, int block_size, bool block_share) {
  return {r, block_size, block_share ? 0 : static_cast<long long>(block_size) * block_size};
}

}  // namespace qoracle::optimized

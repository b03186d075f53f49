// How the tensor-core GEMV splits a layer (optimized/forward/tc_gemv.hpp): a host computation, so
// that CI can check every launch the project makes against the device limits without a GPU.
#include <algorithm>

#include "optimized/forward/tc_gemv.hpp"

namespace qoracle::optimized {

namespace {

constexpr int kBlocksPerSm = 4;                  // 16 warps per SM: enough loads in flight
constexpr int kSharedBudget = 40 * 1024;         // the activations' slice; several blocks share an SM

}  // namespace

GemvPlan plan_gemv(int rows_pad, int in_pad, int k_block, int tokens, int sms, int codebook_bytes) {
  GemvPlan p;
  p.token_tiles = tokens > 8 ? 2 : 1;
  p.row_blocks = (rows_pad + kGemvBlockRows - 1) / kGemvBlockRows;
  const int k_blocks = std::max(1, in_pad / k_block);
  // Enough blocks to fill the device, but no slice shorter than one K block.
  int splits = std::clamp((kBlocksPerSm * std::max(sms, 1) + p.row_blocks - 1) / p.row_blocks, 1, k_blocks);
  int per_split = (k_blocks + splits - 1) / splits;
  // The slice of activations (8 or 16 token rows of dtype values) must fit the shared budget.
  const int row_bytes_per_block = 8 * p.token_tiles * 2 * k_block;
  const int max_per_split =
      std::max(1, (kSharedBudget - codebook_bytes - 8 * p.token_tiles * 2 * 4) / row_bytes_per_block);
  per_split = std::min(per_split, max_per_split);
  p.k_slice = per_split * k_block;
  p.splits = (k_blocks + per_split - 1) / per_split;
  p.codebook_bytes = codebook_bytes;
  p.shared_bytes = 8 * p.token_tiles * xs_stride(p.k_slice) * 2 + codebook_bytes;
  return p;
}

}  // namespace qoracle::optimized

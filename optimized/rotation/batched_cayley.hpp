#pragma once
// Batched Cayley on the GPU: every OFT block's rotation from its parameter row, one thread block
// per OFT block, in float32 (PEFT keeps adapters in float32). The per-block arithmetic is
// optimized/cayley_block.hpp, which the host tests check against the float64 reference.
#include <vector>

namespace qoracle::optimized {

struct CayleyBatch {
  int rows = 0;        // parameter rows (OFT blocks; 1 with block_share, its one block read for all)
  int block_size = 0;  // b, 2..128
  bool neumann = true;
  int terms = 5;       // Neumann terms (PEFT's num_cayley_neumann_terms)
  float coft_radius = 0.0f;  // COFT: project each row onto ||S||_F <= radius first (0: no COFT)
  bool math_series = false;  // Neumann: the math convention's series (cayley_block.hpp), not PEFT's
  bool all_twos = false;     // Neumann: PEFT 0.17's series, every power after I weighted 2
};

// params: rows x b(b-1)/2, row-major. Returns rows x b x b, row-major (R per block; PEFT's
// direction unless math_series). Throws qoracle::Error on a bad size, and "no GPU: ..." without a usable device.
std::vector<float> batched_cayley(const CayleyBatch& batch, const std::vector<float>& params);

// How the batched Cayley launches (host code, so CI checks it against the limits): one block of
// kCayleyThreads per parameter row, its scratch in shared memory when static + dynamic fit the
// device's opt-in maximum (`opt_in_shared`; the attribute is set past 48 KB), else in global memory.
constexpr int kCayleyThreads = 256;
constexpr int kCayleyStaticShared = static_cast<int>(sizeof(float)) * kCayleyThreads;  // COFT's partial sums
struct CayleyLaunch {
  int dynamic_shared = 0;   // bytes (0 with global scratch)
  bool opt_in = false;      // cudaFuncAttributeMaxDynamicSharedMemorySize set to dynamic_shared
  bool global_scratch = false;
};
CayleyLaunch plan_cayley_launch(const CayleyBatch& batch, int opt_in_shared);

// The size checks batched_cayley makes first (with or without CUDA): throws qoracle::Error naming
// block_size, rows, terms or params.
void check_cayley_batch(const CayleyBatch& batch, const std::vector<float>& params);

}  // namespace qoracle::optimized

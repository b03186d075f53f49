#pragma once
// OFT adapter configuration and the r <-> oft_block_size resolution PEFT applies when a
// layer is built (spec peft-oft-lora.md §1.1).
#include <string>

namespace qoracle {

struct OftConfig {
  int r = 0;                  // number of blocks; exactly one of r, oft_block_size is non-zero
  int oft_block_size = 32;    // block size b
  bool coft = false;          // constrained OFT: project each block's skew matrix into a Frobenius ball
  double eps = 6e-5;          // COFT radius before the 1/sqrt(#rows) scaling
  bool block_share = false;   // one parameter row shared by all blocks
  bool use_cayley_neumann = true;  // PEFT's default (its docstring says False; the code says True)
  int num_cayley_neumann_terms = 5;
};

// What a layer with `in_features` inputs actually builds.
struct OftBlocks {
  int r = 0;           // blocks along the input features
  int block_size = 0;  // b; r * b == in_features
  bool adjusted = false;  // PEFT changed the requested value (it only warns)
  int param_rows = 0;  // rows of the parameter: r, or 1 with block_share
  int n_elements = 0;  // b(b-1)/2 parameters per row
};

// The divisor of n nearest to p (ties go to the lower one); p >= n gives n. PEFT's rule.
int adjust_oft_factor(int n, int p);

// Throws Error when both or neither of r and oft_block_size are set, when either is negative,
// or when in_features < 1.
OftBlocks resolve_oft_blocks(int in_features, const OftConfig& config);

std::string describe(const OftConfig& config);

}  // namespace qoracle

#pragma once
// One OFT adapter resolved against a layer's in_features: parameters -> (COFT) -> skew blocks
// -> rotations -> block-diagonal R. The forward is input-centric: z = x * R_bd.
#include <vector>

#include "reference/convention.hpp"
#include "reference/matrix.hpp"
#include "reference/oft_config.hpp"

namespace qoracle {

class OftAdapter {
 public:
  // weight: (r or 1 with block_share, b(b-1)/2). Throws Error on a wrong shape or non-finite values.
  OftAdapter(int in_features, OftConfig config, Matrix weight, Convention convention);

  const OftConfig& config() const { return config_; }
  const OftBlocks& blocks() const { return blocks_; }
  const Matrix& weight() const { return weight_; }

  Matrix effective_weight() const;               // after the COFT projection when enabled
  std::vector<Matrix> block_rotations() const;   // one per block (copies with block_share)
  Matrix rotation_matrix() const;                // R_bd, (in, in); what merges use
  Matrix rotate(const Matrix& x) const;          // x * R_bd for x (tokens, in)
  // Block by block, never forming the (in, in) R_bd, on every core (the float64 merges):
  Matrix rotate_transposed(const Matrix& x) const;    // x * R_bd^T (W R^T: a merge)
  Matrix unrotate_transposed(const Matrix& x) const;  // x * R_bd^-T (its inverse: an unmerge), by LU per block

 private:
  OftConfig config_;
  OftBlocks blocks_;
  Matrix weight_;
  Convention convention_;
};

}  // namespace qoracle

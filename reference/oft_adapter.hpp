#pragma once
// One OFT adapter resolved against a layer's in_features: parameters -> (COFT) -> skew blocks
// -> rotations -> block-diagonal R. The forward is input-centric: z = x * R_bd.
#include <vector>

#include "reference/cayley.hpp"
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

  // PEFT's Neumann series of the producing release (peft_release.hpp); Math ignores it.
  void set_peft_neumann_series(PeftNeumannSeries series) { series_ = series; }
  PeftNeumannSeries peft_neumann_series() const { return series_; }

  // Backward of rotate (training.md §4), in float64: given x and dL/dz, dL/dx = dL/dz R_bd^T and
  // dL/d(weight as stored). COFT: Peft takes the gradient at the projected value, which PEFT has
  // written back into the parameter (no Jacobian); Math applies the projection's Jacobian.
  struct RotateGradients {
    Matrix grad_x;
    Matrix grad_weight;
    bool peft_grad_none = false;  // Peft with one Neumann term: R = I does not depend on the weight
  };
  RotateGradients rotate_backward(const Matrix& x, const Matrix& grad_z) const;

 private:
  template <class BlockMap>
  Matrix map_blocks(const Matrix& x, BlockMap block) const;  // block(z_j, x_j, R_j) writes column block j of z
  OftConfig config_;
  OftBlocks blocks_;
  Matrix weight_;
  Convention convention_;
  PeftNeumannSeries series_ = PeftNeumannSeries::TrailingOne;
};

}  // namespace qoracle

#include "reference/oft_adapter.hpp"

#include <algorithm>
#include <cmath>

#include "reference/cayley.hpp"
#include "reference/coft.hpp"
#include "reference/error.hpp"
#include "reference/float64_products.hpp"
#include "reference/skew.hpp"
#include "reference/validate.hpp"

namespace qoracle {

OftAdapter::OftAdapter(int in_features, OftConfig config, Matrix weight, Convention convention)
    : config_(config), blocks_(resolve_oft_blocks(in_features, config)), weight_(std::move(weight)),
      convention_(convention) {
  require_shape(weight_, blocks_.param_rows, blocks_.n_elements, "weight");
  require_finite(weight_, "weight");
  if (config_.coft && !(std::isfinite(config_.eps) && config_.eps >= 0))
    throw Error("eps: expected a finite value >= 0 for coft, got " + std::to_string(config_.eps));
  if (config_.use_cayley_neumann && convention_ == Convention::Math && config_.num_cayley_neumann_terms < 1)
    throw Error("num_cayley_neumann_terms: expected >= 1, got " + std::to_string(config_.num_cayley_neumann_terms));
}

Matrix OftAdapter::effective_weight() const {
  return config_.coft ? coft_project(weight_, config_.eps, convention_) : weight_;
}

std::vector<Matrix> OftAdapter::block_rotations() const {
  const Matrix w = effective_weight();
  std::vector<Matrix> rotations;
  rotations.reserve(static_cast<std::size_t>(blocks_.r));
  for (int j = 0; j < blocks_.r; ++j) {
    if (config_.block_share && j > 0) {
      rotations.push_back(rotations.front());
      continue;
    }
    const Matrix s = skew_from_params(w.row(j).transpose(), blocks_.block_size);
    rotations.push_back(config_.use_cayley_neumann
                            ? cayley_neumann(s, config_.num_cayley_neumann_terms, convention_, series_)
                            : cayley_exact(s));
  }
  return rotations;
}

Matrix OftAdapter::rotation_matrix() const {
  const int b = blocks_.block_size;
  Matrix r = Matrix::Zero(static_cast<Eigen::Index>(blocks_.r) * b, static_cast<Eigen::Index>(blocks_.r) * b);
  const auto rotations = block_rotations();
  for (int j = 0; j < blocks_.r; ++j) r.block(j * b, j * b, b, b) = rotations[static_cast<std::size_t>(j)];
  return r;
}

// z = x with each b-wide column block j written by block(z_j, x_j, R_j): the three block maps
// below, on every core once there is enough work (a forward of many tokens).
template <class BlockMap>
Matrix OftAdapter::map_blocks(const Matrix& x, BlockMap block) const {
  const int b = blocks_.block_size;
  require_shape(x, x.rows(), static_cast<Eigen::Index>(blocks_.r) * b, "x");
  const auto rotations = block_rotations();
  Matrix z(x.rows(), x.cols());
  parallel_for(blocks_.r, std::max<std::ptrdiff_t>(1, (1 << 18) / std::max<Eigen::Index>(x.rows() * b * b, 1)),
               [&](std::ptrdiff_t j0, std::ptrdiff_t j1) {
                 for (auto j = j0; j < j1; ++j)
                   block(z.middleCols(j * b, b), x.middleCols(j * b, b), rotations[static_cast<std::size_t>(j)]);
               });
  return z;
}

Matrix OftAdapter::rotate(const Matrix& x) const {
  return map_blocks(x, [](auto zj, const auto& xj, const Matrix& r) { zj.noalias() = xj * r; });
}

Matrix OftAdapter::rotate_transposed(const Matrix& x) const {
  return map_blocks(x, [](auto zj, const auto& xj, const Matrix& r) { zj.noalias() = xj * r.transpose(); });
}

Matrix OftAdapter::unrotate_transposed(const Matrix& x) const {
  // X R^-T = (R^-1 X^T)^T: solve R Y = X^T per block.
  return map_blocks(x, [](auto zj, const auto& xj, const Matrix& r) { zj = r.partialPivLu().solve(xj.transpose()).transpose(); });
}

// ---- backward (training.md §4) ----

OftAdapter::RotateGradients OftAdapter::rotate_backward(const Matrix& x, const Matrix& grad_z) const {
  const int b = blocks_.block_size;
  require_shape(x, x.rows(), static_cast<Eigen::Index>(blocks_.r) * b, "x");
  require_shape(grad_z, x.rows(), x.cols(), "grad_z");
  const Matrix w = effective_weight();
  const auto rotations = block_rotations();
  RotateGradients out;
  out.grad_x.resize(x.rows(), x.cols());
  Matrix grad_eff = Matrix::Zero(w.rows(), w.cols());
  for (int j = 0; j < blocks_.r; ++j) {
    const Matrix& r = rotations[static_cast<std::size_t>(j)];
    out.grad_x.middleCols(j * b, b) = grad_z.middleCols(j * b, b) * r.transpose();
    // dL/dR_j = x_j^T dL/dz_j summed over tokens; with block_share every block feeds row 0.
    const Matrix grad_r = x.middleCols(j * b, b).transpose() * grad_z.middleCols(j * b, b);
    const int row = config_.block_share ? 0 : j;
    const Matrix s = skew_from_params(w.row(row).transpose(), b);
    Matrix grad_s;
    if (!config_.use_cayley_neumann) {
      grad_s = cayley_exact_backward(s, grad_r);
    } else {
      const auto c = neumann_coefficients(config_.num_cayley_neumann_terms, convention_, series_);
      if (c.size() == 1) out.peft_grad_none = true;
      grad_s = cayley_polynomial_backward(s, c, grad_r);
    }
    grad_eff.row(row) += skew_params_gradient(grad_s).transpose();
  }
  out.grad_weight = config_.coft && convention_ == Convention::Math
                        ? coft_project_backward(weight_, config_.eps, convention_, grad_eff)
                        : grad_eff;
  return out;
}

}  // namespace qoracle

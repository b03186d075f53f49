#include "reference/coft.hpp"

#include <cmath>

namespace qoracle {

double coft_radius(double eps, int param_rows, Convention convention) {
  if (convention == Convention::Math) return eps / std::sqrt(static_cast<double>(param_rows));
  // PEFT writes `eps * 1 / torch.sqrt(torch.tensor(rows))`: a Python float divided by a float32
  // tensor is the tensor's reciprocal times the scalar (rounded to float32), two roundings.
  const float reciprocal = 1.0f / std::sqrt(static_cast<float>(param_rows));
  return static_cast<double>(reciprocal * static_cast<float>(eps));
}

Matrix coft_project(const Matrix& weight, double eps, Convention convention) {
  const double radius = coft_radius(eps, static_cast<int>(weight.rows()), convention);
  Matrix projected = weight;
  for (Eigen::Index i = 0; i < weight.rows(); ++i) {
    const double frob = std::sqrt(2.0) * weight.row(i).norm();  // ||S_i||_F
    if (frob > radius) projected.row(i) *= radius / frob;
  }
  return projected;
}

}  // namespace qoracle

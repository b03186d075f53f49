#include "reference/coft.hpp"

#include <cmath>

namespace qoracle {

double coft_radius(double eps, int param_rows, Convention convention) {
  if (convention == Convention::Math) return eps / std::sqrt(static_cast<double>(param_rows));
  const float root = std::sqrt(static_cast<float>(param_rows));
  return static_cast<double>(static_cast<float>(eps) / root);
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

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

Matrix coft_project_backward(const Matrix& weight, double eps, Convention convention, const Matrix& grad_projected) {
  const double radius = coft_radius(eps, static_cast<int>(weight.rows()), convention);
  Matrix grad = grad_projected;
  for (Eigen::Index i = 0; i < weight.rows(); ++i) {
    const double norm = weight.row(i).norm();
    const double frob = std::sqrt(2.0) * norm;
    if (!(frob > radius)) continue;
    const Vector v_hat = weight.row(i).transpose() / norm;
    const Vector g = grad_projected.row(i).transpose();
    grad.row(i) = ((radius / frob) * (g - v_hat * v_hat.dot(g))).transpose();
  }
  return grad;
}

}  // namespace qoracle

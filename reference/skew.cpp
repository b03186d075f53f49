#include "reference/skew.hpp"

#include "reference/error.hpp"

namespace qoracle {

int skew_param_count(int block_size) { return block_size * (block_size - 1) / 2; }

Matrix skew_from_params(const Vector& params, int block_size) {
  if (params.size() != skew_param_count(block_size))
    throw Error("skew parameters: expected " + std::to_string(skew_param_count(block_size)) +
                " values for block size " + std::to_string(block_size) + ", got " + std::to_string(params.size()));
  Matrix s = Matrix::Zero(block_size, block_size);
  Eigen::Index k = 0;
  for (int p = 0; p < block_size; ++p) {
    for (int q = p + 1; q < block_size; ++q, ++k) {
      s(p, q) = params(k);
      s(q, p) = -params(k);
    }
  }
  return s;
}

Vector params_from_skew(const Matrix& skew) {
  const auto b = static_cast<int>(skew.rows());
  Vector v(skew_param_count(b));
  Eigen::Index k = 0;
  for (int p = 0; p < b; ++p)
    for (int q = p + 1; q < b; ++q) v(k++) = skew(p, q);
  return v;
}

Vector skew_params_gradient(const Matrix& grad_skew) {
  const auto b = static_cast<int>(grad_skew.rows());
  Vector v(skew_param_count(b));
  Eigen::Index k = 0;
  for (int p = 0; p < b; ++p)
    for (int q = p + 1; q < b; ++q) v(k++) = grad_skew(p, q) - grad_skew(q, p);
  return v;
}

}  // namespace qoracle

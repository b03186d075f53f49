#include "reference/dense_linear.hpp"

#include "reference/error.hpp"
#include "reference/validate.hpp"

namespace qoracle {

DenseLinear::DenseLinear(Matrix w, std::optional<Vector> b) : weight(std::move(w)), bias(std::move(b)) {
  if (weight.rows() < 1 || weight.cols() < 1)
    throw Error("base.weight: expected a non-empty (out, in) matrix, got " + shape_string(weight));
  require_finite(weight, "base.weight");
  if (bias) {
    require_size(*bias, weight.rows(), "base.bias");
    require_finite(*bias, "base.bias");
  }
}

Matrix DenseLinear::forward(const Matrix& x) const {
  require_input(x, in_features());
  Matrix y = x * weight.transpose();
  if (bias) y.rowwise() += bias->transpose();
  return y;
}

void require_input(const Matrix& x, int in_features) {
  if (x.cols() != in_features)
    throw Error("x: expected last dimension " + std::to_string(in_features) + " (in_features), got " +
                std::to_string(x.cols()));
  require_finite(x, "x");
}

void require_finite_result(const Matrix& m, const std::string& what) {
  if (!m.allFinite()) throw Error(what + ": the result overflowed to a non-finite value (inputs were finite)");
}

}  // namespace qoracle

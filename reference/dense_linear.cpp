#include "reference/dense_linear.hpp"

#include "reference/error.hpp"
#include "reference/float64_products.hpp"
#include "reference/validate.hpp"

namespace qoracle {

DenseLinear::DenseLinear(Matrix w, std::optional<Vector> b) : weight_(std::move(w)), bias_(std::move(b)) {
  if (weight_.rows() < 1 || weight_.cols() < 1)
    throw Error("base.weight: expected a non-empty (out, in) matrix, got " + shape_string(weight_));
  require_finite(weight_, "base.weight");
  if (bias_) {
    require_size(*bias_, weight_.rows(), "base.bias");
    require_finite(*bias_, "base.bias");
  }
}

Matrix DenseLinear::forward(const Matrix& x, Dtype dtype) const {
  require_input(x, in_features());
  // The exact math on every core; the emulated dtypes keep Eigen's product (pinned bit for bit).
  Matrix y = dtype == Dtype::Float64 ? times_transposed(x, weight_) : Matrix(x * weight_.transpose());
  if (bias_) y.rowwise() += bias_->transpose();
  return round_to(dtype, y);
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

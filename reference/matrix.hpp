#pragma once
// All reference arithmetic is IEEE double. Activations are rows: x is (tokens, in).
#include <Eigen/Dense>
#include <string>
#include <vector>

namespace qoracle {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;

// "[rows, cols]" for error messages.
inline std::string shape_string(Eigen::Index rows, Eigen::Index cols) {
  return "[" + std::to_string(rows) + ", " + std::to_string(cols) + "]";
}
inline std::string shape_string(const Matrix& m) { return shape_string(m.rows(), m.cols()); }

}  // namespace qoracle

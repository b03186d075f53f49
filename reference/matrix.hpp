#pragma once
// All reference arithmetic is IEEE double. Activations are rows: x is (tokens, in).
#include <Eigen/Dense>
#include <string>
#include <vector>

namespace qoracle {

using Matrix = Eigen::MatrixXd;
using Vector = Eigen::VectorXd;

// "[rows, cols]" for error messages.
// (Appended piece by piece: "[" + std::to_string(...) trips GCC 12's -Wrestrict at -O3, bug 105329.)
inline std::string shape_string(Eigen::Index rows, Eigen::Index cols) {
  std::string s = "[";
  s += std::to_string(rows);
  s += ", ";
  s += std::to_string(cols);
  s += "]";
  return s;
}
inline std::string shape_string(const Matrix& m) { return shape_string(m.rows(), m.cols()); }

}  // namespace qoracle

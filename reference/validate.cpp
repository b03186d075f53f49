#include "reference/validate.hpp"

#include <cmath>

#include "reference/convention.hpp"
#include "reference/error.hpp"

namespace qoracle {

namespace {
template <class Dense>
void require_finite_impl(const Dense& m, const std::string& field) {
  for (Eigen::Index i = 0; i < m.size(); ++i) {
    const double v = m.data()[i];
    if (!std::isfinite(v)) {
      // Column-major storage: report the (row, col) the user would look for.
      const Eigen::Index row = i % m.rows(), col = i / m.rows();
      throw Error(field + ": expected finite values, found " + std::to_string(v) + " at [" + std::to_string(row) +
                  ", " + std::to_string(col) + "]");
    }
  }
}
}  // namespace

void require_finite(const Matrix& m, const std::string& field) { require_finite_impl(m, field); }
void require_finite(const Vector& v, const std::string& field) { require_finite_impl(v, field); }

void require_shape(const Matrix& m, Eigen::Index rows, Eigen::Index cols, const std::string& field) {
  if (m.rows() != rows || m.cols() != cols)
    throw Error(field + ": expected shape " + shape_string(rows, cols) + ", got " + shape_string(m));
}

void require_size(const Vector& v, Eigen::Index size, const std::string& field) {
  if (v.size() != size)
    throw Error(field + ": expected length " + std::to_string(size) + ", got " + std::to_string(v.size()));
}

void require_positive(long long value, const std::string& field) {
  if (value <= 0) throw Error(field + ": expected a positive value, got " + std::to_string(value));
}

Convention parse_convention(const std::string& name) {
  if (name == "math") return Convention::Math;
  if (name == "peft") return Convention::Peft;
  throw Error("convention: expected 'math' or 'peft', got '" + name + "'");
}

}  // namespace qoracle

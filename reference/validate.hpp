#pragma once
// Input checks shared by every layer: each throws Error naming the field and what was expected.
#include <string>

#include "reference/matrix.hpp"

namespace qoracle {

void require_finite(const Matrix& m, const std::string& field);
void require_finite(const Vector& v, const std::string& field);
void require_shape(const Matrix& m, Eigen::Index rows, Eigen::Index cols, const std::string& field);
void require_size(const Vector& v, Eigen::Index size, const std::string& field);
void require_positive(long long value, const std::string& field);

}  // namespace qoracle

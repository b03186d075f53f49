#pragma once
// OFT parameter vector <-> skew-symmetric block. PEFT fills the strict upper triangle in
// row-major order ((0,1), (0,2), ..., (b-2,b-1)) and sets S = M - M^T, with no 1/2 factor.
#include "reference/matrix.hpp"

namespace qoracle {

int skew_param_count(int block_size);  // b(b-1)/2
Matrix skew_from_params(const Vector& params, int block_size);
Vector params_from_skew(const Matrix& skew);  // the strict upper triangle, row-major
// Backward of skew_from_params: dL/dv_k = dL/dS[p_k, q_k] - dL/dS[q_k, p_k].
Vector skew_params_gradient(const Matrix& grad_skew);

}  // namespace qoracle

#pragma once
// Constrained OFT: each block's skew matrix is projected into the Frobenius ball of radius
// eps' = eps / sqrt(#parameter rows). PEFT writes the projected values back into the
// parameter on every forward and merge; the projection is idempotent, so recomputing it from
// the stored parameters gives the same result.
#include "reference/convention.hpp"
#include "reference/matrix.hpp"

namespace qoracle {

// Math: eps' in double. Peft: eps' = fl32(fl32(1 / fl32(sqrt(#rows))) * fl32(eps)), as torch
// evaluates PEFT's `eps * 1 / torch.sqrt(torch.tensor(rows))` (a float32 tensor; scalar / tensor
// is reciprocal, then multiply). A float64 layer keeps that float32 radius (a 0-d tensor).
double coft_radius(double eps, int param_rows, Convention convention);

// weight: (#rows, b(b-1)/2). Rows whose ||S||_F = sqrt(2)*||v|| exceeds eps' are scaled onto the ball.
Matrix coft_project(const Matrix& weight, double eps, Convention convention);

// Backward of coft_project at `weight`: J_proj^T grad_projected per row, with
// J_proj = (eps'/(sqrt(2)||v||)) (I - v_hat v_hat^T) on projected rows and I elsewhere (symmetric).
Matrix coft_project_backward(const Matrix& weight, double eps, Convention convention, const Matrix& grad_projected);

}  // namespace qoracle

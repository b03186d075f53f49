#pragma once
// Rotation of one OFT block from its skew-symmetric matrix S, and its derivative.
#include <vector>

#include "reference/convention.hpp"
#include "reference/matrix.hpp"

namespace qoracle {

// PEFT's Cayley-Neumann polynomial changed in 0.18 (spec training.md §4, peft_release.hpp):
// 0.17 weights every power after the first 2 (I + 2S + ... + 2S^(n-1)); 0.18 and later give the
// last power weight 1 and make n = 3 the same as n = 4.
enum class PeftNeumannSeries { TrailingOne, AllTwos };

// R = (I - S)(I + S)^-1, the orientation PEFT's exact path uses. Orthogonal for skew S
// (I + S is always invertible: its eigenvalues are 1 + i*lambda).
Matrix cayley_exact(const Matrix& skew);

// Truncated Neumann series for the inverse in the Cayley transform.
//  Math: (I - S) * sum_{k=0}^{terms-1} (-S)^k, which approximates cayley_exact(S) with
//        spectral-norm error exactly rho(S)^terms (S is normal). terms >= 1.
//  Peft: PEFT's polynomial, I + 2S + 2S^2 + ... + 2S^(n-2) + S^(n-1) for n >= 4, with
//        n = 1 -> I, n = 2 -> I + 2S and n = 3 == n = 4. It approximates (I + S)(I - S)^-1,
//        the TRANSPOSE of the exact path: the same weights rotate the opposite way.
Matrix cayley_neumann(const Matrix& skew, int terms, Convention convention,
                      PeftNeumannSeries series = PeftNeumannSeries::TrailingOne);

// The Neumann rotation as a polynomial R = sum_k c[k] S^k (c[0] for I). Math: c_0 = 1,
// c_k = 2(-1)^k for 1 <= k < n, c_n = (-1)^n. Peft: the release's series as above.
std::vector<double> neumann_coefficients(int terms, Convention convention,
                                         PeftNeumannSeries series = PeftNeumannSeries::TrailingOne);
Matrix cayley_polynomial(const Matrix& skew, const std::vector<double>& coefficients);

// Backward: dL/dS given dL/dR (grad_r), for L a function of R(S), with S treated as a free
// matrix (skew_params_gradient packs it into the parameters).
// Exact Cayley R = (I - S)(I + S)^-1: dL/dS = -(I + R)^T grad_r (I + S)^-T.
Matrix cayley_exact_backward(const Matrix& skew, const Matrix& grad_r);
// R = sum_k c_k S^k: dL/dS = sum_k c_k sum_{i<k} (S^T)^i grad_r (S^T)^(k-1-i).
Matrix cayley_polynomial_backward(const Matrix& skew, const std::vector<double>& coefficients, const Matrix& grad_r);

}  // namespace qoracle

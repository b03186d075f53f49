#pragma once
// Rotation of one OFT block from its skew-symmetric matrix S.
#include "reference/convention.hpp"
#include "reference/matrix.hpp"

namespace qoracle {

// R = (I - S)(I + S)^-1, the orientation PEFT's exact path uses. Orthogonal for skew S
// (I + S is always invertible: its eigenvalues are 1 + i*lambda).
Matrix cayley_exact(const Matrix& skew);

// Truncated Neumann series for the inverse in the Cayley transform.
//  Math: (I - S) * sum_{k=0}^{terms-1} (-S)^k, which approximates cayley_exact(S) with
//        spectral-norm error exactly rho(S)^terms (S is normal). terms >= 1.
//  Peft: PEFT's polynomial, I + 2S + 2S^2 + ... + 2S^(n-2) + S^(n-1) for n >= 4, with
//        n = 1 -> I, n = 2 -> I + 2S and n = 3 == n = 4. It approximates (I + S)(I - S)^-1,
//        the TRANSPOSE of the exact path: the same weights rotate the opposite way.
Matrix cayley_neumann(const Matrix& skew, int terms, Convention convention);

}  // namespace qoracle

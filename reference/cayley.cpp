#include "reference/cayley.hpp"

#include "reference/error.hpp"

namespace qoracle {

Matrix cayley_exact(const Matrix& skew) {
  const Matrix id = Matrix::Identity(skew.rows(), skew.cols());
  // (I - S) and (I + S)^-1 commute, so solving (I + S) X = (I - S) gives the same R.
  return (id + skew).partialPivLu().solve(id - skew);
}

namespace {

Matrix neumann_math(const Matrix& s, int terms) {
  if (terms < 1)
    throw Error("num_cayley_neumann_terms: expected >= 1, got " + std::to_string(terms));
  const Matrix id = Matrix::Identity(s.rows(), s.cols());
  Matrix series = id, power = id;
  for (int k = 1; k < terms; ++k) {
    power = -(power * s);
    series += power;
  }
  return (id - s) * series;
}

// PEFT's accumulation, in its order, including the trailing weight-1 term.
Matrix neumann_peft(const Matrix& s, int terms) {
  Matrix r = Matrix::Identity(s.rows(), s.cols());
  if (terms > 1) r += 2.0 * s;
  if (terms > 2) {
    Matrix power = s * s;
    r += 2.0 * power;
    for (int k = 3; k < terms - 1; ++k) {
      power = power * s;
      r += 2.0 * power;
    }
    power = power * s;
    r += power;
  }
  return r;
}

}  // namespace

Matrix cayley_neumann(const Matrix& skew, int terms, Convention convention) {
  return convention == Convention::Math ? neumann_math(skew, terms) : neumann_peft(skew, terms);
}

}  // namespace qoracle

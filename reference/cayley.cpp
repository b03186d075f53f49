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

}  // namespace

std::vector<double> neumann_coefficients(int terms, Convention convention, PeftNeumannSeries series) {
  if (convention == Convention::Math) {
    if (terms < 1) throw Error("num_cayley_neumann_terms: expected >= 1, got " + std::to_string(terms));
    std::vector<double> c(static_cast<std::size_t>(terms) + 1, 0.0);
    c[0] = 1.0;
    for (int k = 1; k < terms; ++k) c[static_cast<std::size_t>(k)] = k % 2 == 0 ? 2.0 : -2.0;
    c[static_cast<std::size_t>(terms)] = terms % 2 == 0 ? 1.0 : -1.0;
    return c;
  }
  if (terms <= 1) return {1.0};  // PEFT's loop adds nothing to I
  if (terms == 2) return {1.0, 2.0};
  if (series == PeftNeumannSeries::AllTwos) {
    std::vector<double> c(static_cast<std::size_t>(terms), 2.0);
    c[0] = 1.0;
    return c;
  }
  const int n = terms == 3 ? 4 : terms;  // PEFT's loop always adds S^2 before the last power
  std::vector<double> c(static_cast<std::size_t>(n), 2.0);
  c.front() = 1.0;
  c.back() = 1.0;
  return c;
}

// Accumulated in PEFT's order: I, then each power by one more multiplication by S.
Matrix cayley_polynomial(const Matrix& s, const std::vector<double>& c) {
  Matrix r = c.at(0) * Matrix::Identity(s.rows(), s.cols());
  Matrix power;
  for (std::size_t k = 1; k < c.size(); ++k) {
    power = k == 1 ? s : Matrix(power * s);
    if (c[k] != 0.0) r += c[k] * power;
  }
  return r;
}

Matrix cayley_neumann(const Matrix& skew, int terms, Convention convention, PeftNeumannSeries series) {
  return convention == Convention::Math ? neumann_math(skew, terms)
                                        : cayley_polynomial(skew, neumann_coefficients(terms, convention, series));
}

Matrix cayley_exact_backward(const Matrix& skew, const Matrix& grad_r) {
  const Matrix id = Matrix::Identity(skew.rows(), skew.cols());
  const Matrix r = cayley_exact(skew);
  // X (I + S)^-T = Y  <=>  (I + S) X^T = Y^T
  const Matrix y = -((id + r).transpose() * grad_r);
  return (id + skew).partialPivLu().solve(y.transpose()).transpose();
}

Matrix cayley_polynomial_backward(const Matrix& skew, const std::vector<double>& c, const Matrix& grad_r) {
  const Eigen::Index b = skew.rows();
  const Matrix st = skew.transpose();
  std::vector<Matrix> powers{Matrix::Identity(b, b)};  // (S^T)^i
  for (std::size_t i = 1; i < c.size(); ++i) powers.push_back(powers.back() * st);
  Matrix grad = Matrix::Zero(b, b);
  for (std::size_t k = 1; k < c.size(); ++k) {
    if (c[k] == 0.0) continue;
    for (std::size_t i = 0; i < k; ++i) grad += c[k] * (powers[i] * grad_r * powers[k - 1 - i]);
  }
  return grad;
}

}  // namespace qoracle

#include "reference/seeded_random.hpp"

#include <cmath>
#include <numbers>

namespace qoracle {

std::uint64_t SeededRandom::next_u64() {
  std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

double SeededRandom::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

double SeededRandom::normal() {
  const double u1 = 1.0 - uniform();  // (0, 1]
  const double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

Matrix SeededRandom::normal(Eigen::Index rows, Eigen::Index cols, double stddev) {
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = stddev * normal();
  return m;
}

Matrix SeededRandom::uniform(Eigen::Index rows, Eigen::Index cols, double lo, double hi) {
  Matrix m(rows, cols);
  for (Eigen::Index i = 0; i < rows; ++i)
    for (Eigen::Index j = 0; j < cols; ++j) m(i, j) = lo + (hi - lo) * uniform();
  return m;
}

}  // namespace qoracle

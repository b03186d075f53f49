#pragma once
// Seeded, platform-independent random inputs (SplitMix64 + Box-Muller): the same seed gives the
// same tensors with any standard library, so a printed seed replays a failure anywhere.
#include <cstdint>

#include "reference/matrix.hpp"

namespace qoracle {

class SeededRandom {
 public:
  explicit SeededRandom(std::uint64_t seed) : state_(seed) {}
  std::uint64_t next_u64();
  double uniform();                 // [0, 1)
  double normal();                  // N(0, 1)
  Matrix normal(Eigen::Index rows, Eigen::Index cols, double stddev);
  Matrix uniform(Eigen::Index rows, Eigen::Index cols, double lo, double hi);

 private:
  std::uint64_t state_;
};

}  // namespace qoracle

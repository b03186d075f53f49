#pragma once
// torch.nn.Linear: y = x W^T + b with W (out, in).
#include <optional>

#include "reference/matrix.hpp"

namespace qoracle {

struct DenseLinear {
  Matrix weight;
  std::optional<Vector> bias;

  DenseLinear(Matrix w, std::optional<Vector> b);  // throws Error on a bad shape or non-finite values
  int in_features() const { return static_cast<int>(weight.cols()); }
  int out_features() const { return static_cast<int>(weight.rows()); }
  Matrix forward(const Matrix& x) const;
};

// Checks x is (tokens, in_features) and finite.
void require_input(const Matrix& x, int in_features);
// Throws when a computation on finite inputs overflowed: the reference never returns garbage.
void require_finite_result(const Matrix& m, const std::string& what);

}  // namespace qoracle

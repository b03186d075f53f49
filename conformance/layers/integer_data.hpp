#pragma once
// Integer data (codes, packed words, checkpoint bytes) between fixture tensors and the reference.
#include <cstdint>
#include <string>
#include <vector>

#include "fixtures/format/tensor.hpp"
#include "reference/hqq_format.hpp"  // CodeMatrix
#include "reference/matrix.hpp"

namespace qoracle::fixture_layers {

// The reader hands integer datasets over as exact doubles. A value that is not an integer in
// [lo, hi] cannot come from an integer dataset of that type, and converting it would be
// undefined behaviour, so it is refused by name (`field`).
std::vector<std::int64_t> integer_values(const Tensor& t, std::int64_t lo, std::int64_t hi, const std::string& field);

// Codes as an output tensor (stored as int32).
Tensor codes_tensor(const CodeMatrix& codes);

}  // namespace qoracle::fixture_layers

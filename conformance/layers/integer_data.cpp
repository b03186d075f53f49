#include "conformance/layers/integer_data.hpp"

#include <cmath>

#include "reference/error.hpp"

namespace qoracle::fixture_layers {

std::vector<std::int64_t> integer_values(const Tensor& t, std::int64_t lo, std::int64_t hi, const std::string& field) {
  std::vector<std::int64_t> out;
  out.reserve(t.values.size());
  for (double v : t.values) {
    if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) || v != std::trunc(v))
      throw Error(field + ": value " + std::to_string(v) + " is not an integer in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

Tensor codes_tensor(const CodeMatrix& codes) {
  Tensor t = Tensor::from_matrix(codes.cast<double>(), Dtype::Float64);
  t.stored_type = "int32";
  return t;
}

}  // namespace qoracle::fixture_layers

#include "conformance/layers/dense_base.hpp"

#include "reference/error.hpp"

namespace qoracle::fixture_layers {

std::optional<Vector> base_bias(const FixtureCase& c) {
  if (const Tensor* b = c.base.find("bias")) return b->as_vector("base/bias");
  return std::nullopt;
}

DenseLinear dense_base_from(const FixtureCase& c) {
  const Tensor& weight = c.base.tensor("weight");
  if (weight.shape.size() != 2)
    throw Error("base/weight: expected rank 2 (out, in), got shape " + weight.shape_string());
  return DenseLinear(weight.as_matrix("base/weight"), base_bias(c));
}

void base_outputs(const DenseLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
  if (base.bias()) out[prefix + "_bias"] = Tensor::from_vector(*base.bias(), Dtype::Float64);
}

}  // namespace qoracle::fixture_layers

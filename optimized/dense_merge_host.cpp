// dense_merge's host emulation, and what both paths share.
#include <cstddef>
#include <utility>
#include <variant>

#include "optimized/dense_merge.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "optimized/merged_weight.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

void check_dense_merge(const HostLayer& l) {
  check_fused_layer(l, static_cast<std::size_t>(l.in_features), 1);
  if (!std::holds_alternative<DenseWeights>(l.weights)) throw Error("base: dense_merge needs a plain linear layer");
  check_merge_adapters(l, "dense_merge");
  if (!l.lora_bias.empty() && l.bias.empty())
    throw Error("bias: lora_bias needs a base bias to merge into, and the layer has none (as the reference's merge)");
}

HostLayer dense_merged_layer(const HostLayer& l, std::vector<float> merged_weight) {
  HostLayer out;
  out.out_features = l.out_features;
  out.in_features = l.in_features;
  out.activations = l.activations;
  out.bias = l.bias;
  for (std::size_t o = 0; o < l.lora_bias.size(); ++o) out.bias[o] += l.scaling * l.lora_bias[o];
  out.weights = DenseWeights{std::move(merged_weight)};
  return out;
}

HostLayer dense_merge_on_host(const HostLayer& l) {
  check_dense_merge(l);
  return dense_merged_layer(l, merged_weight_on_host(l));
}

}  // namespace qoracle::optimized

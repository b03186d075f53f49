// dense_merge's host emulation, and what both paths share.
#include <cstddef>
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
  check_lora_bias_target(l);
}

HostLayer dense_merge_on_host(const HostLayer& l) {
  check_dense_merge(l);
  return layer_after_merge(l, DenseWeights{merged_weight_on_host(l)});
}

}  // namespace qoracle::optimized

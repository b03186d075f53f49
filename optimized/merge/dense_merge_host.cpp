// dense_merge's host emulation, and what both paths share.
#include <cstddef>

#include "optimized/merge/dense_merge.hpp"
#include "optimized/merge/merged_weight.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

void check_dense_merge(const HostLayer& l) {
  check_merge_base<DenseWeights>(l, "dense_merge", "a plain linear layer");
  check_lora_bias_target(l);
}

HostLayer dense_merge_on_host(const HostLayer& l) {
  check_dense_merge(l);
  return layer_after_merge(l, DenseWeights{merged_weight_on_host(l)});
}

}  // namespace qoracle::optimized

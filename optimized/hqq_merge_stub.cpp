// Built without CUDA: hqq_merge checks its input, then refuses with the reason.
#include "optimized/device_probe.hpp"
#include "optimized/hqq_merge.hpp"
#include "optimized/hqq_merge_checks.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

HqqMergeResult hqq_merge(const HostLayer& layer) {
  check_hqq_merge(layer);
  throw Error("no GPU: " + probe_device().reason);
}

}  // namespace qoracle::optimized

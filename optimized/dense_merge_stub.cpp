// Built without CUDA: dense_merge checks its input, then refuses with the reason.
#include "optimized/dense_merge.hpp"
#include "optimized/device_probe.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

HostLayer dense_merge(const HostLayer& layer) {
  check_dense_merge(layer);
  throw Error("no GPU: " + probe_device().reason);
}

}  // namespace qoracle::optimized

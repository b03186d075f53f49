// Built without CUDA: eetq_merge checks its input, then refuses with the reason.
#include "optimized/device_probe.hpp"
#include "optimized/eetq_merge.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

HostLayer eetq_merge(const HostLayer& layer) {
  check_eetq_merge(layer);
  throw Error("no GPU: " + probe_device().reason);
}

}  // namespace qoracle::optimized

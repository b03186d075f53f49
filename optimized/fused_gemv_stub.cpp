// Built without CUDA: the fused GEMV checks its input, then refuses with the reason.
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

std::vector<float> fused_gemv(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  throw Error("no GPU: " + probe_device().reason);
}

}  // namespace qoracle::optimized

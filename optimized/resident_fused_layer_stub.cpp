// Built without CUDA: the fused GEMV checks its input, then refuses with the reason.
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

struct ResidentFusedLayer::Impl {};

ResidentFusedLayer::ResidentFusedLayer(const HostLayer& layer) {
  check_fused_layer(layer, static_cast<std::size_t>(layer.in_features), 1);
  throw Error("no GPU: " + probe_device().reason);
}

ResidentFusedLayer::~ResidentFusedLayer() = default;

std::vector<float> ResidentFusedLayer::forward(const std::vector<float>&, int) const {
  throw Error("no GPU: " + probe_device().reason);
}

double ResidentFusedLayer::time_forward(int, int) const { throw Error("no GPU: " + probe_device().reason); }

std::vector<float> fused_forward(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  throw Error("no GPU: " + probe_device().reason);
}

}  // namespace qoracle::optimized

// Built without CUDA: the fused GEMV checks its input, then refuses with the reason.
#include "optimized/device_probe.hpp"
#include "optimized/fused_gemv_checks.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

struct FusedGemvLayer::Impl {};

FusedGemvLayer::FusedGemvLayer(const HostLayer& layer) {
  check_fused_layer(layer, static_cast<std::size_t>(layer.in_features), 1);
  throw Error("no GPU: " + probe_device().reason);
}

FusedGemvLayer::~FusedGemvLayer() = default;

std::vector<float> FusedGemvLayer::forward(const std::vector<float>&, int) const {
  throw Error("no GPU: " + probe_device().reason);
}

double FusedGemvLayer::time_forward(int, int) const { throw Error("no GPU: " + probe_device().reason); }

std::vector<float> fused_gemv(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  throw Error("no GPU: " + probe_device().reason);
}

}  // namespace qoracle::optimized

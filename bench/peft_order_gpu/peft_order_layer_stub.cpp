// Built without CUDA or cuBLAS: the baseline checks the layer, then refuses with the reason.
#include "bench/peft_order_gpu/peft_order_layer.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/layer/layer_checks.hpp"
#include "reference/error.hpp"

namespace qoracle::bench {

struct PeftOrderGpuLayer::Impl {};

namespace {
[[noreturn]] void refuse() {
  const auto device = optimized::probe_device();
  throw Error("no GPU: " + (device.available ? "this build has no cuBLAS (the PEFT-order baseline needs it)" : device.reason));
}
}  // namespace

PeftOrderGpuLayer::PeftOrderGpuLayer(const optimized::HostLayer& layer) {
  optimized::check_fused_layer(layer, static_cast<std::size_t>(layer.in_features), 1);
  refuse();
}
PeftOrderGpuLayer::~PeftOrderGpuLayer() = default;
std::vector<float> PeftOrderGpuLayer::forward(const std::vector<float>&, int) const { refuse(); }
optimized::ForwardTiming PeftOrderGpuLayer::time_forward(int, int) const { refuse(); }

}  // namespace qoracle::bench

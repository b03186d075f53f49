// Built without CUDA (no nvcc, or QORACLE_ENABLE_CUDA=OFF): every GPU entry point checks its input
// as the CUDA build does, then refuses with the reason, as on a machine without a GPU. The one
// place the no-CUDA build differs; the host emulations are the same files in both builds.
#include "optimized/device/copy_bandwidth.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/layer/layer_checks.hpp"
#include "optimized/layer/resident_layer.hpp"
#include "optimized/merge/dense_merge.hpp"
#include "optimized/merge/device_merge.hpp"
#include "optimized/merge/eetq_merge.hpp"
#include "optimized/merge/hqq_merge.hpp"
#include "optimized/merge/hqq_merge_checks.hpp"
#include "optimized/rotation/batched_cayley.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

namespace {

[[noreturn]] void refuse() { throw Error("no GPU: " + probe_device().reason); }

}  // namespace

DeviceStatus probe_device() { return {false, "qoracle was built without CUDA (nvcc not found or disabled)"}; }
void require_device() { refuse(); }

double device_copy_bandwidth(int, int) { refuse(); }

std::vector<float> batched_cayley(const CayleyBatch& batch, const std::vector<float>& params) {
  check_cayley_batch(batch, params);
  refuse();
}

HostLayer dense_merge(const HostLayer& layer) {
  check_dense_merge(layer);
  refuse();
}

HostLayer eetq_merge(const HostLayer& layer) {
  check_eetq_merge(layer);
  refuse();
}

HqqMergeResult hqq_merge(const HostLayer& layer) {
  check_hqq_merge(layer);
  refuse();
}

struct DeviceMerge::Impl {};
DeviceMerge::DeviceMerge(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
DeviceMerge::DeviceMerge(DeviceMerge&&) noexcept = default;
DeviceMerge::~DeviceMerge() = default;
HostLayer DeviceMerge::layer() const { refuse(); }
int DeviceMerge::steps() const { refuse(); }
void DeviceMerge::wait() const { refuse(); }
DeviceMerge merge_on_device(const ResidentFusedLayer&) { refuse(); }

struct ResidentFusedLayer::Impl {};

ResidentFusedLayer::ResidentFusedLayer(const HostLayer& layer) {
  check_fused_layer(layer, static_cast<std::size_t>(layer.in_features), 1);
  refuse();
}
ResidentFusedLayer::~ResidentFusedLayer() = default;
int ResidentFusedLayer::in_features() const { refuse(); }
int ResidentFusedLayer::out_features() const { refuse(); }
Activations ResidentFusedLayer::activations() const { refuse(); }
std::string ResidentFusedLayer::path(int) const { refuse(); }
double ResidentFusedLayer::base_bytes() const { refuse(); }
void ResidentFusedLayer::reserve(int) { refuse(); }
std::vector<float> ResidentFusedLayer::forward(const std::vector<float>&, int) { refuse(); }
void ResidentFusedLayer::forward_on_device(const void*, void*, int, void*) { refuse(); }
ForwardTiming ResidentFusedLayer::time_forward(int, int, bool, bool) { refuse(); }
const ResidentTensors& ResidentFusedLayer::tensors() const { refuse(); }

std::vector<float> fused_forward(const HostLayer& layer, const std::vector<float>& x, int tokens) {
  check_fused_layer(layer, x.size(), tokens);
  refuse();
}

}  // namespace qoracle::optimized

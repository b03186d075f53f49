#include <cstddef>

#include "optimized/merge/dense_merge.hpp"
#include "optimized/device/device_probe.hpp"
#include "optimized/merge/merged_weight_launch.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

HostLayer dense_merge(const HostLayer& l) {
  check_dense_merge(l);
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);
  Uploads keep;
  const float* merged = merged_weight_on_device(l, keep);
  return layer_after_merge(l, DenseWeights{download(merged, static_cast<std::size_t>(l.out_features) * l.in_features)});
}

}  // namespace qoracle::optimized

#include "optimized/device_probe.hpp"

namespace qoracle::optimized {

DeviceStatus probe_device() { return {false, "qoracle was built without CUDA (nvcc not found or disabled)"}; }

}  // namespace qoracle::optimized

// Built without CUDA: no device to measure.
#include "optimized/copy_bandwidth.hpp"
#include "optimized/device_probe.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

double device_copy_bandwidth(int, int) { throw Error("no GPU: " + probe_device().reason); }

}  // namespace qoracle::optimized

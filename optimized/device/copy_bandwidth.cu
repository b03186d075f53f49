#include <cuda_runtime.h>

#include "optimized/device/copy_bandwidth.hpp"
#include "optimized/device/device_buffer.hpp"
#include "optimized/device/device_probe.hpp"

namespace qoracle::optimized {

double device_copy_bandwidth(int megabytes, int repeats) {
  require_device();
  const size_t bytes = static_cast<size_t>(megabytes) << 20;
  DeviceBuffer<char> from(bytes), to(bytes);
  check_cuda(cudaMemset(from.get(), 1, bytes), "cudaMemset");
  float best_ms = 0;
  for (int i = 0; i <= repeats; ++i) {  // the first copy warms up and is not counted
    const float ms = device_milliseconds([&] {
      check_cuda(cudaMemcpy(to.get(), from.get(), bytes, cudaMemcpyDeviceToDevice), "cudaMemcpy device to device");
    });
    if (i > 0 && (best_ms == 0 || ms < best_ms)) best_ms = ms;
  }
  return 2.0 * static_cast<double>(bytes) / (best_ms * 1e-3);
}

}  // namespace qoracle::optimized

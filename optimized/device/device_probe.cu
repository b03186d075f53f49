#include <cuda_runtime.h>

#include "optimized/device/device_probe.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

DeviceStatus probe_device() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    // e.g. cudaErrorInsufficientDriver on machines with the toolkit but no driver.
    return {false, std::string("CUDA runtime unavailable: ") + cudaGetErrorString(err)};
  }
  if (count == 0) return {false, "no CUDA device present"};
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) return {false, "cannot query CUDA device 0"};
  return {true, prop.name};
}

void require_device() {
  const DeviceStatus device = probe_device();
  if (!device.available) throw Error("no GPU: " + device.reason);
}

}  // namespace qoracle::optimized

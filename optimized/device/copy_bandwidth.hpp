#pragma once
// The device's memory bandwidth as a device-to-device copy achieves it: the floor a forward that
// must read its weights once cannot beat (floor = weight bytes / this). Throws "no GPU: ..."
// without a usable device.
namespace qoracle::optimized {

// Bytes moved (read + written) per second by cudaMemcpy of a `megabytes` buffer, best of `repeats`.
double device_copy_bandwidth(int megabytes = 512, int repeats = 10);

}  // namespace qoracle::optimized

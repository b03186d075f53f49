#pragma once
// Whether a usable CUDA device is present. No driver, no device, or a build without CUDA all
// mean "no GPU": callers skip GPU work with `reason` as the message.
#include <string>

namespace qoracle::optimized {

struct DeviceStatus {
  bool available = false;
  std::string reason;  // why not, or the device name when available
};

DeviceStatus probe_device();
// Throws qoracle::Error("no GPU: <reason>") unless a device is usable: what GPU-only entry points
// call first.
void require_device();

}  // namespace qoracle::optimized

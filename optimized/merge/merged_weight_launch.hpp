#pragma once
// The merged weight computed on the device (CUDA builds only), for the merges that go on from it
// there: hqq_merge requantizes it, dense_merge downloads it.
#include "optimized/device/device_buffer.hpp"
#include "optimized/merge/merged_weight.hpp"

namespace qoracle::optimized {

// (out, in) row-major floats in a buffer `keep` owns: one launch per LoRA stack or OFT adapter,
// the OFT rotations computed on the device and read in place. Asynchronous on the default stream;
// the layer is checked by the caller first.
const float* merged_weight_on_device(const HostLayer& layer, Uploads& keep);

}  // namespace qoracle::optimized

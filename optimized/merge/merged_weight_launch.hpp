#pragma once
// The merged weight computed on the device from a resident layer's stored base and adapters (CUDA
// builds only), for the merges that go on from it there (optimized/merge/device_merge.cu).
#include "optimized/layer/resident_tensors.cuh"
#include "optimized/merge/merged_weight.hpp"

namespace qoracle::optimized {

// (out, in) row-major floats into `merged`: one launch for the LoRA stack, one per OFT adapter
// (`other`: a second (out, in) buffer where there are several). Asynchronous on t.stream.
void launch_merged_weight(const ResidentTensors& t, float* merged, float* other);

}  // namespace qoracle::optimized

#pragma once
// What a resident layer keeps on the device besides its row layout, for the merges
// (optimized/merge/device_merge.hpp): the base as the format stores it, the adapters (rotation
// blocks computed), the stream, and the layer's host-side description without its tensors.
#include <cuda_runtime.h>

#include "optimized/forward/launch.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

struct ResidentTensors {
  HostLayer meta;  // sizes, config, bias, lora_bias, scaling, adapters' counts; no weight tensors
  AnyView view;    // the stored base (device pointers)
  FusedAdapters adapters;
  cudaStream_t stream = nullptr;
};

}  // namespace qoracle::optimized

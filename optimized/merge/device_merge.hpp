#pragma once
// A resident layer's adapters merged into its base on the device: into a plain linear layer (the
// merged float32 weight), into HQQ (requantized with hqq's optimizer) or into EETQ (requantized
// with EETQ's quantizer, the export PEFT refuses). The result stays on the device until layer()
// downloads it: what a user whose layer lives on the GPU waits for is merge_on_device alone.
// dense_merge, hqq_merge and eetq_merge (the other headers of this folder) are this on a
// temporary resident layer, downloaded.
#include <memory>

#include "optimized/layer/host_layer.hpp"
#include "optimized/layer/resident_layer.hpp"

namespace qoracle::optimized {

class DeviceMerge {
 public:
  struct Impl;
  explicit DeviceMerge(std::unique_ptr<Impl> impl);
  DeviceMerge(DeviceMerge&&) noexcept;
  ~DeviceMerge();
  // The merged layer as the merges return it (the base in its stored format, no adapters, the bias
  // with lora_bias folded in); downloads and waits.
  HostLayer layer() const;
  int steps() const;  // HQQ: the optimizer steps that ran (0 otherwise)
  // Waits until the merged tensors are complete on the device (the merge itself only enqueues).
  void wait() const;

 private:
  std::unique_ptr<Impl> impl_;
};

// Throws qoracle::Error naming what does not fit (base, adapters, lora_bias) and "no GPU: ..."
// without a device. Waits only where the merge must know its result (EETQ's float16 range check).
DeviceMerge merge_on_device(const ResidentFusedLayer& layer);

}  // namespace qoracle::optimized

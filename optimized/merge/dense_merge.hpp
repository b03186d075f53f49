#pragma once
// Merging adapters into a plain linear layer (PEFT's nn.Linear merge) on the GPU: the merged
// weight of optimized/merged_weight.hpp, kept as the layer's float32 weight, and lora_bias folded
// into the bias (b + s b_B), so that the merged layer's plain forward is the layer's forward. LoRA
// and DoRA adapters are stacked, OFT adapters applied last first, all in one pass. PEFT writes
// each adapter back in turn, which differs by rounding only, except that it composes several OFT
// adapters in reverse (spec peft-oft-lora.md Q9); this merge keeps the forward, as the math
// convention does.
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

// `layer` must have a dense base and LoRA or OFT adapters, not both, and a bias where it has
// lora_bias. Returns the merged layer: the merged weight and bias, no adapters. Throws
// qoracle::Error naming what does not fit, and "no GPU: ..." without a usable device.
HostLayer dense_merge(const HostLayer& layer);
// The same code run serially on the host.
HostLayer dense_merge_on_host(const HostLayer& layer);

// The checks both make.
void check_dense_merge(const HostLayer& layer);

}  // namespace qoracle::optimized

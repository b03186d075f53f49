#pragma once
// Shared by the fused GEMV's GPU path and its host emulation.
#include <cstddef>
#include <vector>

#include "optimized/fused_gemv.hpp"
#include "optimized/fused_weights.hpp"

namespace qoracle::optimized {

constexpr int kWarpLanes = 32;

// Throws qoracle::Error naming the field whose size or value does not fit.
void check_fused_layer(const HostLayer& layer, std::size_t x_size, int tokens);
// R per OFT block (replicated with block_share), on the host with the kernel's block code, or by
// the batched Cayley kernel (which throws "no GPU: ..." without a device).
std::vector<float> rotation_blocks_on_host(const HostLayer& layer);
std::vector<float> rotation_blocks_on_gpu(const HostLayer& layer);
// The adapter pointers for a layer, given where its tensors live.
FusedAdapters fused_adapters(const HostLayer& layer, const float* rotation, const float* lora_a, const float* lora_b,
                             const float* lora_bias, const float* bias);

}  // namespace qoracle::optimized

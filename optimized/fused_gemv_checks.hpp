#pragma once
// Shared by the fused GEMV's GPU path and its host emulation.
#include <cstddef>
#include <vector>

#include "optimized/batched_cayley.hpp"
#include "optimized/fused_gemv.hpp"
#include "optimized/fused_weights.hpp"

namespace qoracle::optimized {

constexpr int kWarpLanes = 32;

// Throws qoracle::Error naming the field whose size or value does not fit.
void check_fused_layer(const HostLayer& layer, std::size_t x_size, int tokens);
// The batched Cayley's description of one OFT adapter's rotations (one per parameter row).
CayleyBatch cayley_batch(const HostRotation& rotation);
// The least common multiple of the OFT adapters' block sizes (1 without OFT): the GEMM's input
// steps are multiples of it.
int rotation_unit(const HostLayer& layer);
// R per OFT block of one adapter (replicated with block_share), on the host with the kernel's
// block code, or by the batched Cayley kernel (which throws "no GPU: ..." without a device).
std::vector<float> rotation_blocks_on_host(const HostLayer& layer, const HostRotation& rotation);
std::vector<float> rotation_blocks_on_gpu(const HostLayer& layer, const HostRotation& rotation);
// Every adapter's, in the layer's order.
std::vector<std::vector<float>> rotations_on_host(const HostLayer& layer);
std::vector<std::vector<float>> rotations_on_gpu(const HostLayer& layer);

}  // namespace qoracle::optimized

#pragma once
// The checks every forward path makes on a layer (GPU and host alike), and the OFT rotations as
// the host computes them with the kernel's block code.
#include <cstddef>
#include <vector>

#include "optimized/rotation/batched_cayley.hpp"
#include "optimized/forward/fused_adapters.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

constexpr int kWarpLanes = 32;

// Throws qoracle::Error naming the field whose size or value does not fit.
void check_fused_layer(const HostLayer& layer, std::size_t x_size, int tokens);
// The batched Cayley's description of one OFT adapter's rotations (one per parameter row).
CayleyBatch cayley_batch(const HostRotation& rotation);
// The least common multiple of the OFT adapters' block sizes (1 without OFT): the prepass's chunks
// are that wide.
int rotation_unit(const HostLayer& layer);
// One adapter's rotation blocks, one per parameter row (a single block with block_share; see
// optimized/rotation/rotation_blocks.hpp), computed on the host with the kernel's block code. The GPU's
// stay on the device (rotation_blocks_on_device in batched_cayley_launch.hpp).
std::vector<float> rotation_blocks_on_host(const HostRotation& rotation);
// Every adapter's, in the layer's order, and where each one's data is (for fused_adapters).
std::vector<std::vector<float>> rotations_on_host(const HostLayer& layer);
std::vector<const float*> data_of(const std::vector<std::vector<float>>& rotations);

}  // namespace qoracle::optimized

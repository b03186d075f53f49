#pragma once
// The batched Cayley kernel on device pointers (CUDA builds only), for callers that keep R on the
// GPU: batched_cayley uploads and downloads around it; the PEFT-order baseline
// (bench/peft_order_gpu) recomputes R with it every forward, as PEFT does.
#include <cstddef>

#include "optimized/rotation/batched_cayley.hpp"
#include "optimized/device/device_buffer.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

// Floats of global scratch the launch needs (0 when each block's scratch fits in shared memory).
std::size_t cayley_global_scratch_floats(const CayleyBatch& batch);

// d_params: rows x b(b-1)/2; d_out: rows x b x b; d_scratch: cayley_global_scratch_floats(batch)
// floats. Asynchronous on the default stream; the batch is not checked here (check_cayley_batch).
void launch_batched_cayley(const CayleyBatch& batch, const float* d_params, float* d_out, float* d_scratch);

// One OFT adapter's rotation blocks computed on the device and left there (one per parameter row,
// as rotation_blocks_on_host: block_share's one block is not replicated), in buffers `keep` owns.
// Asynchronous; the adapter is checked by check_fused_layer / check_hqq_merge first.
const float* rotation_blocks_on_device(const HostRotation& rotation, Uploads& keep);

}  // namespace qoracle::optimized

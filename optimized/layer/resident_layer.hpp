#pragma once
// A fused adapter layer resident on the GPU: its base repacked into a row layout (or kept as
// stored, for the view path) and uploaded once, its OFT rotations computed on the device by the
// batched Cayley once, its scratch allocated once (reserve). A forward is then only launches on a
// stream: no allocation, no upload, no synchronization, so it can be captured in a CUDA graph.
//   tokens <= kGemvMaxTokens: the adapters' prepass (one launch, when there are adapters), then the
//     tensor-core GEMV (16-bit activations, row layouts) or the view path's GEMV;
//   more tokens: the prepass's rotation (OFT), the weight dequantized into a scratch matrix in the
//     activation dtype (not for a dense base without DoRA), cuBLAS for x W^T, and for LoRA u = x A^T
//     and y += [u 1] [s B  b]^T (bias and lora_bias in the appended column); float32 activations
//     use cuBLAS's float32 GEMM (no TF32).
// Throws qoracle::Error on bad sizes and "no GPU: ..." without a usable device.
#include <string>
#include <vector>

#include "optimized/device/forward_timing.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::optimized {

struct ResidentTensors;  // optimized/layer/resident_tensors.cuh (CUDA builds)

class ResidentFusedLayer {
 public:
  explicit ResidentFusedLayer(const HostLayer& layer);
  ~ResidentFusedLayer();
  ResidentFusedLayer(const ResidentFusedLayer&) = delete;
  ResidentFusedLayer& operator=(const ResidentFusedLayer&) = delete;

  int in_features() const;
  int out_features() const;
  Activations activations() const;
  // Which kernels a forward of `tokens` runs, e.g. "tc-gemv/hqq4", "view-gemv", "gemm/dense".
  std::string path(int tokens) const;
  // The bytes of base weights (codes, scales, zeros, codebooks) a forward reads: the memory floor's.
  double base_bytes() const;

  // Scratch for forwards of up to `tokens` tokens (the first forward past the capacity allocates).
  void reserve(int tokens);
  // y (tokens, out) row-major for x (tokens, in) row-major, copied both ways. x's values must be
  // values of the layer's activation dtype (they are converted to it exactly).
  std::vector<float> forward(const std::vector<float>& x, int tokens);
  // The hot path: x and y are device pointers holding the activation dtype; `stream` is a
  // cudaStream_t (null: the layer's own). Enqueues launches only (reserve first).
  void forward_on_device(const void* x, void* y, int tokens, void* stream);
  // Per forward of `tokens` resident tokens, `iterations` times: plain launches or replayed CUDA
  // graphs (optimized/device/forward_timing.hpp). cold_l2: back to back over copies of the row
  // layout (made on the first call) so the weights come from memory, as in a model too large for
  // the cache; the isolated timing flushes L2 before each forward either way.
  ForwardTiming time_forward(int tokens, int iterations, bool graph, bool cold_l2);
  // The stored tensors and adapters on the device, for the merges (optimized/merge/device_merge.hpp).
  const ResidentTensors& tensors() const;

 private:
  struct Impl;
  Impl* impl_ = nullptr;
};

// One forward with a temporary ResidentFusedLayer.
std::vector<float> fused_forward(const HostLayer& layer, const std::vector<float>& x, int tokens);

}  // namespace qoracle::optimized

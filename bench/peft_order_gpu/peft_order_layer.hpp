#pragma once
// PEFT's forward on the GPU, op by op in PEFT's order and with PEFT's dtypes: the point of
// comparison for the fused kernels in bench_optimized. Debian's libtorch is CPU-only, so the ATen
// ops PEFT's CUDA forward runs are rebuilt here on cuBLAS, each one a launch that reads and writes
// global memory (peft-oft-lora.md gives the dtype flow):
//   x cast to the adapters' float32 (16-bit activations only).
//   OFT, every forward and per adapter: R from the stored parameters (PEFT's _cayley_batch runs
//     each forward; here the batched Cayley kernel), then x <- x R_bd in float32 as one strided
//     batched GEMM over the blocks (PEFT's einsum/bmm); x R rounded to the activation dtype.
//   base: W dequantized into a full (out, in) matrix in the activation dtype every forward (hqq's
//     default backend; a plain linear keeps W resident), then y = x W^T by cuBLAS in that dtype
//     with float32 accumulation.
//   LoRA: u = x A^T and v = u B^T in float32 (two cuBLAS GEMMs).
//   The elementwise tail (DoRA's factor, bias, + s (v + lora_bias), one rounding) is one kernel
//   where PEFT runs several: generous to the baseline.
// Where the real library has a fused kernel of its own (EETQ's w8a16 GEMM, AQLM's few-token
// kernels) PEFT's base forward is faster than this one; reports/gpu marks those rows.
#include <vector>

#include "optimized/device/forward_timing.hpp"
#include "optimized/layer/host_layer.hpp"

namespace qoracle::bench {

class PeftOrderGpuLayer {
 public:
  // Throws qoracle::Error on a bad layer (the fused layer's checks) and "no GPU: ..." without a
  // usable device or in a build without CUDA and cuBLAS.
  explicit PeftOrderGpuLayer(const optimized::HostLayer& layer);
  ~PeftOrderGpuLayer();
  PeftOrderGpuLayer(const PeftOrderGpuLayer&) = delete;
  PeftOrderGpuLayer& operator=(const PeftOrderGpuLayer&) = delete;
  // y (tokens, out) for x (tokens, in), both row-major, x's values in the layer's activation dtype.
  std::vector<float> forward(const std::vector<float>& x, int tokens) const;
  // Per forward on resident activations (CUDA events, no copies), as
  // ResidentFusedLayer::time_forward measures the fused kernels, plain launches on the default
  // stream; one copy of the weights, so back to back they may stay in L2 (the stream time is warm;
  // the isolated time flushes L2 first).
  optimized::ForwardTiming time_forward(int tokens, int iterations) const;

 private:
  struct Impl;
  Impl* impl_ = nullptr;
};

}  // namespace qoracle::bench

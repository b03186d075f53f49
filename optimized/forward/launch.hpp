#pragma once
// The forward's launches on device pointers (CUDA builds only), for the resident layer
// (optimized/layer/resident_layer.cu): each enqueues on `stream` and returns, no allocation, no
// synchronization, so a forward can be captured in a CUDA graph.
#include <cuda_runtime.h>

#include <cstdint>

#include "optimized/forward/fused_adapters.hpp"
#include "optimized/forward/rows_base.hpp"
#include "optimized/forward/tc_gemv.hpp"
#include "optimized/layer/host_layer.hpp"
#include "optimized/layer/weight_views.hpp"

namespace qoracle::optimized {

// Everything a GEMV launch reads and writes besides the weights.
struct GemvIo {
  const void* x = nullptr;  // (tokens, in) in the activation dtype: the input, or the prepass's x_rot
  void* y = nullptr;        // (tokens, out) in the activation dtype
  int tokens = 0, in = 0, out = 0;
  FusedAdapters adapters;   // the epilogue's terms (rotations unused)
  const float* u = nullptr;  // (tokens, rank) from the prepass, or null
  bool x_from_prepass = false;  // x is the prepass's x_rot (OFT)
  float* partials = nullptr;       // (splits, tokens, rows_pad): the K slices' sums
  unsigned* counters = nullptr;    // one per row block, zero between launches (the last block resets it)
};

// The tensor-core GEMV over a row layout with device pointers (16-bit activations, tokens <=
// kGemvMaxTokens); `plan` from plan_gemv for the layout's padded sizes.
// after_prepass: the prepass was launched just before on `stream`; on sm_90 the GEMV then starts
// early (programmatic dependent launch) and waits for its results where it reads them.
void launch_tc_gemv(const AnyRowsLayout& layout, int rows_pad, const GemvPlan& plan, const GemvIo& io, bool after_prepass,
                    cudaStream_t stream);
bool programmatic_launch_available();

// A stored base's view (the view path).
using AnyView = std::variant<DenseView, HqqView, AqlmView, EetqView>;

// The view path's GEMV (any dtype, tokens <= kGemvMaxTokens).
void launch_view_gemv(const AnyView& view, Activations dtype, const GemvIo& io, cudaStream_t stream);

// The adapters' prepass (optimized/forward/prepass.hpp): OFT chunks into x_rot when `rotate`, LoRA
// rows into u when `lora` (tokens <= kPrepassTokens then).
void launch_prepass(Activations dtype, const void* x, int tokens, int in, int unit, const FusedAdapters& adapters,
                    bool rotate, bool lora, void* x_rot, float* u, cudaStream_t stream);

// The GEMM path's OFT rotation on tensor cores (16-bit activations, one adapter, blocks of 16, 32
// or 64: tc_rotation_fits), x_rot in the activation dtype.
void launch_tc_rotation(Activations dtype, const void* x, int tokens, int in, const RotationBlocks& rot, void* x_rot,
                        cudaStream_t stream);

// The GEMM path's weight into scratch (out, ld) (optimized/forward/dequant.hpp).
void launch_dequant_rows(const AnyRowsLayout& layout, int out, const float* dot_scale, void* scratch, int ld,
                         cudaStream_t stream);
void launch_dequant_view(const AnyView& view, Activations dtype, int out, int in, const float* dot_scale, void* scratch,
                         int ld, cudaStream_t stream);

}  // namespace qoracle::optimized

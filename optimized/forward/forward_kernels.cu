// The forward's kernels besides the tensor-core GEMV: the adapters' prepass, the view path's
// GEMV, and the GEMM path's dequantization into scratch.
#include <cuda_runtime.h>

#include "optimized/device/activation_io.hpp"
#include "optimized/device/device_buffer.hpp"
#include "optimized/device/block_sync.cuh"
#include "optimized/forward/dequant.hpp"
#include "optimized/forward/launch.hpp"
#include "optimized/forward/prepass.hpp"
#include "optimized/forward/view_gemv.hpp"

namespace qoracle::optimized {

namespace {

template <class Tag>
__global__ void __launch_bounds__(kPrepassThreads) prepass_kernel(const Element<Tag>* x, int tokens, int in, int unit,
                                                                   int chunks, FusedAdapters a, Element<Tag>* x_rot,
                                                                   float* u) {
  extern __shared__ float smem[];
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");  // the GEMV may start; it waits where it reads us
#endif
  const int role = static_cast<int>(blockIdx.x), tid = static_cast<int>(threadIdx.x);
  const int t_begin = static_cast<int>(blockIdx.y) * kPrepassTokens;
  const int t_end = t_begin + kPrepassTokens < tokens ? t_begin + kPrepassTokens : tokens;
  if (role < chunks)
    prepass_rotate_chunk<Tag, Tag>(x, t_begin, t_end, in, unit, role, a, x_rot, smem, tid, kPrepassThreads, BlockSync{});
  else if (blockIdx.y == 0)
    prepass_lora_row<Tag>(x, tokens, in, a, role - chunks, u, smem, tid, kPrepassThreads, BlockSync{});
}

// One warp per output; every token at once.
template <class View, class Tag>
__global__ void __launch_bounds__(32 * kViewGemvWarps) view_gemv_kernel(View w, GemvIo io) {
  const int lane = static_cast<int>(threadIdx.x) % 32;
  const int o = static_cast<int>(blockIdx.x) * kViewGemvWarps + static_cast<int>(threadIdx.x) / 32;
  if (o >= io.out) return;
  float acc[kGemvMaxTokens];
  view_gemv_lane<View, Tag>(w, o, static_cast<const Element<Tag>*>(io.x), io.tokens, io.in, lane, acc);
#pragma unroll
  for (int t = 0; t < kGemvMaxTokens; ++t) {
    float s = acc[t];
    for (int offset = 16; offset > 0; offset /= 2) s += __shfl_down_sync(0xffffffffu, s, offset);
    if (lane == 0 && t < io.tokens)
      static_cast<Element<Tag>*>(io.y)[static_cast<long long>(t) * io.out + o] =
          float_to_bits(fused_epilogue(s, o, io.adapters, io.u + t * io.adapters.rank), Tag{});
  }
}

template <class Layout, class Tag>
__global__ void dequant_rows_kernel(Layout w, int out, const float* dot_scale, Element<Tag>* scratch, int ld) {
  constexpr int L = Layout::kLaneInputs;
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  const int runs = w.in_pad / L;
  if (e >= static_cast<long long>(out) * runs) return;
  dequant_run<Layout, Tag>(w, static_cast<int>(e / runs), static_cast<int>(e % runs) * L, dot_scale, scratch, ld);
}

template <class View, class Tag>
__global__ void dequant_view_kernel(View w, int out, int in, const float* dot_scale, Element<Tag>* scratch, int ld) {
  const long long e = static_cast<long long>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (e >= static_cast<long long>(out) * in) return;
  dequant_element<View, Tag>(w, static_cast<int>(e / in), static_cast<int>(e % in), dot_scale, scratch, ld);
}


unsigned blocks_for(long long n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace

void launch_prepass(Activations dtype, const void* x, int tokens, int in, int unit, const FusedAdapters& a, bool rotate,
                    bool lora, void* x_rot, float* u, cudaStream_t stream) {
  const int chunks = rotate ? in / unit : 0, rows = lora ? a.rank : 0;
  if (chunks + rows == 0) return;
  with_activation_tag(dtype, [&](auto tag) {
    using Tag = decltype(tag);
    const dim3 grid(static_cast<unsigned>(chunks + rows), static_cast<unsigned>(rotate ? (tokens + kPrepassTokens - 1) / kPrepassTokens : 1));
    prepass_kernel<Tag><<<grid, kPrepassThreads, prepass_shared_bytes(rotate ? unit : 1), stream>>>(
        static_cast<const Element<Tag>*>(x), tokens, in, unit, chunks, a, static_cast<Element<Tag>*>(x_rot), u);
  });
  check_cuda(cudaGetLastError(), "prepass_kernel launch");
}

void launch_view_gemv(const AnyView& view, Activations dtype, const GemvIo& io, cudaStream_t stream) {
  std::visit(
      [&](const auto& w) {
        with_activation_tag(dtype, [&](auto tag) {
          view_gemv_kernel<std::decay_t<decltype(w)>, decltype(tag)>
              <<<blocks_for(io.out, kViewGemvWarps), 32 * kViewGemvWarps, 0, stream>>>(w, io);
        });
      },
      view);
  check_cuda(cudaGetLastError(), "view_gemv_kernel launch");
}

void launch_dequant_rows(const AnyRowsLayout& layout, int out, const float* dot_scale, void* scratch, int ld,
                         cudaStream_t stream) {
  std::visit(
      [&](const auto& by_tag) {
        using ByTag = std::decay_t<decltype(by_tag)>;
        if constexpr (!std::is_same_v<ByTag, std::monostate>) {
          using Tag = std::conditional_t<std::is_same_v<ByTag, RowsLayouts<HalfTag>>, HalfTag, BFloat16Tag>;
          std::visit(
              [&](const auto& w) {
                using Layout = std::decay_t<decltype(w)>;
                const long long runs = static_cast<long long>(out) * (w.in_pad / Layout::kLaneInputs);
                dequant_rows_kernel<Layout, Tag><<<blocks_for(runs, kDequantThreads), kDequantThreads, 0, stream>>>(
                    w, out, dot_scale, static_cast<Element<Tag>*>(scratch), ld);
              },
              by_tag);
        }
      },
      layout);
  check_cuda(cudaGetLastError(), "dequant_rows_kernel launch");
}

void launch_dequant_view(const AnyView& view, Activations dtype, int out, int in, const float* dot_scale, void* scratch,
                         int ld, cudaStream_t stream) {
  std::visit(
      [&](const auto& w) {
        with_activation_tag(dtype, [&](auto tag) {
          using Tag = decltype(tag);
          dequant_view_kernel<std::decay_t<decltype(w)>, Tag>
              <<<blocks_for(static_cast<long long>(out) * in, kDequantThreads), kDequantThreads, 0, stream>>>(
                  w, out, in, dot_scale, static_cast<Element<Tag>*>(scratch), ld);
        });
      },
      view);
  check_cuda(cudaGetLastError(), "dequant_view_kernel launch");
}

}  // namespace qoracle::optimized

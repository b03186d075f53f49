// The tensor-core GEMV kernels (optimized/forward/tc_gemv.hpp) and their launch.
#include <cuda_runtime.h>

#include "optimized/device/device_buffer.hpp"
#include "optimized/forward/launch.hpp"
#include "optimized/forward/tc_gemv.hpp"

namespace qoracle::optimized {

namespace {

__device__ __forceinline__ void mma(MmaC& c, const MmaA& a, const MmaB& b, HalfTag) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c.c[0]), "+f"(c.c[1]), "+f"(c.c[2]), "+f"(c.c[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
}
__device__ __forceinline__ void mma(MmaC& c, const MmaA& a, const MmaB& b, BFloat16Tag) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c.c[0]), "+f"(c.c[1]), "+f"(c.c[2]), "+f"(c.c[3])
      : "r"(a.r[0]), "r"(a.r[1]), "r"(a.r[2]), "r"(a.r[3]), "r"(b.r[0]), "r"(b.r[1]));
}

// B registers from shared memory: one 8-byte load (the run offset and the stride keep it aligned);
// zero for a token past the real ones.
__device__ __forceinline__ MmaB shared_fragment_b(const std::uint16_t* xs_row, int at, int j, bool real) {
  if (!real) return {{0u, 0u}};
  const uint2 v = *reinterpret_cast<const uint2*>(xs_row + at + 4 * j);
  return {{v.x, v.y}};
}

// Programmatic dependent launch (sm_90): this grid may start while the prepass still runs; it
// waits for the prepass's results only where it reads them.
__device__ __forceinline__ void wait_for_prepass() {
#if __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// Grid: (row blocks, K slices); kGemvWarps warps of 16 rows each. TT token tiles of 8.
template <class Layout, class Tag, int TT>
__global__ void __launch_bounds__(kGemvThreads) tc_gemv_kernel(Layout w, GemvIo io, int rows_pad, int k_slice,
                                                                 int in_pad, bool x_from_prepass) {
  extern __shared__ __align__(16) std::uint16_t xs[];
  if constexpr (Layout::kSharedCodebooks) {  // after the activations' slice (16-byte aligned: its size is 16 TT stride)
    float* codebooks = reinterpret_cast<float*>(xs + 8 * TT * xs_stride(k_slice));
    for (int e = static_cast<int>(threadIdx.x); e < w.codebook_floats(); e += kGemvThreads) codebooks[e] = w.codebooks[e];
    w.codebooks = codebooks;  // read after the barrier below
  }
  constexpr int L = Layout::kLaneInputs;
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int split = static_cast<int>(blockIdx.y), splits = static_cast<int>(gridDim.y);
  const int k_begin = split * k_slice, k_end = min(k_begin + k_slice, in_pad);
  const int stride = xs_stride(k_slice);
  const int r0 = (static_cast<int>(blockIdx.x) * kGemvWarps + warp) * kTileRows;
  const int g = lane >> 2, q = lane & 3, ra = r0 + g, rb = r0 + g + 8;
  // Weight loads depend on nothing: the first run's are in flight before the activations are.
  typename Layout::Raw na = w.load(ra, k_begin + L * q), nb = w.load(rb, k_begin + L * q);
  if (x_from_prepass) wait_for_prepass();
  fill_activation_slice(static_cast<const std::uint16_t*>(io.x), io.tokens, io.in, k_begin, k_end - k_begin, stride, xs,
                        tid, kGemvThreads);
  __syncthreads();
  MmaC c[TT];
  for (int kb = k_begin; kb < k_end; kb += 4 * L) {
    const int i0 = kb + L * q;
    const typename Layout::Raw pa = na, pb = nb;
    if (kb + 4 * L < k_end) {  // the next run's loads in flight while this one computes
      na = w.load(ra, i0 + 4 * L);
      nb = w.load(rb, i0 + 4 * L);
    }
#pragma unroll
    for (int j = 0; j < L / 4; ++j) {
      const MmaA a = fragment_a(w, pa, pb, ra, rb, i0, j, Tag{});
#pragma unroll
      for (int tt = 0; tt < TT; ++tt)
        mma(c[tt], a, shared_fragment_b(xs + (tt * 8 + g) * stride, i0 - k_begin, j, tt * 8 + g < io.tokens), Tag{});
    }
  }
  wait_for_prepass();  // the epilogue reads u
  if (splits == 1) {
#pragma unroll
    for (int tt = 0; tt < TT; ++tt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const int row = r0 + accumulator_row(lane, i), t = tt * 8 + accumulator_token(lane, i);
        if (row < io.out && t < io.tokens)
          static_cast<std::uint16_t*>(io.y)[static_cast<long long>(t) * io.out + row] = float_to_bits(
              fused_epilogue(c[tt].c[i] * w.row_scale(row), row, io.adapters, io.u + t * io.adapters.rank), Tag{});
      }
    return;
  }
  // Split K: this slice's sums to the partials; the last block of the row block to finish adds the
  // slices in slice order (the same sum whichever block is last) and writes y.
#pragma unroll
  for (int tt = 0; tt < TT; ++tt)
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      const int row = r0 + accumulator_row(lane, i), t = tt * 8 + accumulator_token(lane, i);
      if (t < io.tokens) io.partials[(static_cast<long long>(split) * io.tokens + t) * rows_pad + row] = c[tt].c[i];
    }
  __threadfence();
  __shared__ unsigned arrived;
  __syncthreads();
  if (tid == 0) arrived = atomicAdd(io.counters + blockIdx.x, 1u);
  __syncthreads();
  if (arrived != static_cast<unsigned>(splits - 1)) return;
  __threadfence();
  const int block_row0 = static_cast<int>(blockIdx.x) * kGemvBlockRows;
  for (int e = tid; e < kGemvBlockRows * io.tokens; e += kGemvThreads) {
    const int t = e / kGemvBlockRows, row = block_row0 + e % kGemvBlockRows;
    if (row >= io.out) continue;
    const volatile float* p = io.partials + static_cast<long long>(t) * rows_pad + row;
    float sum = p[0];
    for (int s = 1; s < splits; ++s) sum += p[static_cast<long long>(s) * io.tokens * rows_pad];
    static_cast<std::uint16_t*>(io.y)[static_cast<long long>(t) * io.out + row] =
        float_to_bits(fused_epilogue(sum * w.row_scale(row), row, io.adapters, io.u + t * io.adapters.rank), Tag{});
  }
  if (tid == 0) io.counters[blockIdx.x] = 0;  // ready for the next launch
}

template <class Layout, class Tag>
void launch_layout(const Layout& w, int rows_pad, const GemvPlan& plan, const GemvIo& io, bool after_prepass,
                   cudaStream_t stream) {
  cudaLaunchConfig_t config{};
  config.gridDim = dim3(static_cast<unsigned>(plan.row_blocks), static_cast<unsigned>(plan.splits));
  config.blockDim = dim3(kGemvThreads);
  config.dynamicSmemBytes = static_cast<size_t>(plan.shared_bytes);
  config.stream = stream;
  cudaLaunchAttribute pdl[1];
  if (after_prepass && programmatic_launch_available()) {
    pdl[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
    pdl[0].val.programmaticStreamSerializationAllowed = 1;
    config.attrs = pdl;
    config.numAttrs = 1;
  }
  const bool x_from_prepass = after_prepass && io.x_from_prepass;
  if (plan.token_tiles == 1)
    check_cuda(cudaLaunchKernelEx(&config, tc_gemv_kernel<Layout, Tag, 1>, w, io, rows_pad, plan.k_slice, w.in_pad, x_from_prepass),
               "tc_gemv_kernel launch");
  else
    check_cuda(cudaLaunchKernelEx(&config, tc_gemv_kernel<Layout, Tag, 2>, w, io, rows_pad, plan.k_slice, w.in_pad, x_from_prepass),
               "tc_gemv_kernel launch");
}

}  // namespace

bool programmatic_launch_available() {
  static const bool available = [] {
    int dev = 0, major = 0;
    return cudaGetDevice(&dev) == cudaSuccess &&
           cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) == cudaSuccess && major >= 9;
  }();
  return available;
}

void launch_tc_gemv(const AnyRowsLayout& layout, int rows_pad, const GemvPlan& plan, const GemvIo& io, bool after_prepass,
                    cudaStream_t stream) {
  std::visit(
      [&](const auto& by_tag) {
        using ByTag = std::decay_t<decltype(by_tag)>;
        if constexpr (std::is_same_v<ByTag, std::monostate>) {
          throw Error("launch_tc_gemv: the layer has no row layout");
        } else {
          using Tag = std::conditional_t<std::is_same_v<ByTag, RowsLayouts<HalfTag>>, HalfTag, BFloat16Tag>;
          std::visit(
              [&](const auto& w) { launch_layout<std::decay_t<decltype(w)>, Tag>(w, rows_pad, plan, io, after_prepass, stream); },
                     by_tag);
        }
      },
      layout);
}

}  // namespace qoracle::optimized

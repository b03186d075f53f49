// The GEMM path's OFT rotation on tensor cores (optimized/forward/tc_rotation.hpp).
#include <cuda_runtime.h>

#include "optimized/device/device_buffer.hpp"
#include "optimized/forward/launch.hpp"
#include "optimized/forward/tc_rotation.hpp"

namespace qoracle::optimized {

namespace {

__device__ __forceinline__ void mma_tf32(float (&c)[4], const Tf32A& a, const Tf32B& b) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};"
      : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
      : "r"(__float_as_uint(a.r[0])), "r"(__float_as_uint(a.r[1])), "r"(__float_as_uint(a.r[2])),
        "r"(__float_as_uint(a.r[3])), "r"(__float_as_uint(b.r[0])), "r"(__float_as_uint(b.r[1])));
}

// Grid: (OFT blocks, token tiles of kRotationTokens); each warp 16 tokens.
template <class Tag>
__global__ void __launch_bounds__(kRotationThreads) tc_rotation_kernel(const Element<Tag>* x, int tokens, int in,
                                                                        RotationBlocks rot, Element<Tag>* x_rot) {
  extern __shared__ float smem[];
  const int tid = static_cast<int>(threadIdx.x), warp = tid / 32, lane = tid % 32;
  const int b = rot.block_size, j = static_cast<int>(blockIdx.x), t0 = static_cast<int>(blockIdx.y) * kRotationTokens;
  tc_rotation_fill<Tag>(x, tokens, in, rot, j, t0, smem, tid, kRotationThreads);
  __syncthreads();
  const int xsd = rotation_x_stride(b), rsd = rotation_r_stride(b);
  const float* xs = smem + 16 * warp * xsd;
  const float* r_hi = smem + kRotationTokens * xsd;
  const float* r_lo = r_hi + b * rsd;
  for (int n0 = 0; n0 < b; n0 += 8) {
    float c[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    for (int k0 = 0; k0 < b; k0 += 8) {
      const Tf32A a = rotation_fragment_a(xs, xsd, lane, k0);
      mma_tf32(c, a, rotation_fragment_b(r_hi, rsd, lane, k0, n0));
      mma_tf32(c, a, rotation_fragment_b(r_lo, rsd, lane, k0, n0));
    }
    tc_rotation_store<Tag>(c, tokens, in, b, j, t0, warp, lane, n0, x_rot);
  }
}

}  // namespace

void launch_tc_rotation(Activations dtype, const void* x, int tokens, int in, const RotationBlocks& rot, void* x_rot,
                        cudaStream_t stream) {
  const dim3 grid(static_cast<unsigned>(in / rot.block_size), static_cast<unsigned>((tokens + kRotationTokens - 1) / kRotationTokens));
  const int bytes = tc_rotation_shared_bytes(rot.block_size);
  if (tc_rotation_needs_opt_in(rot.block_size)) {  // blocks of 64: past the default 48 KB, set once per dtype
    static const bool set = [bytes] {
      check_cuda(cudaFuncSetAttribute(tc_rotation_kernel<HalfTag>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
                 "tc_rotation_kernel: opting in to more shared memory");
      check_cuda(cudaFuncSetAttribute(tc_rotation_kernel<BFloat16Tag>, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes),
                 "tc_rotation_kernel: opting in to more shared memory");
      return true;
    }();
    (void)set;
  }
  if (dtype == Activations::Float16)
    tc_rotation_kernel<HalfTag><<<grid, kRotationThreads, bytes, stream>>>(static_cast<const std::uint16_t*>(x), tokens, in,
                                                                            rot, static_cast<std::uint16_t*>(x_rot));
  else
    tc_rotation_kernel<BFloat16Tag><<<grid, kRotationThreads, bytes, stream>>>(static_cast<const std::uint16_t*>(x), tokens,
                                                                                in, rot, static_cast<std::uint16_t*>(x_rot));
  check_cuda(cudaGetLastError(), "tc_rotation_kernel launch");
}

}  // namespace qoracle::optimized

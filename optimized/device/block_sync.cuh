#pragma once
// __syncthreads as a functor for the shared host/device block code (optimized/cayley_block.hpp).
// Host-callable so that __host__ __device__ templates may take it; it only syncs on the device.
namespace qoracle::optimized {

struct BlockSync {
  __host__ __device__ void operator()() const {
#ifdef __CUDA_ARCH__
    __syncthreads();
#endif
  }
};

}  // namespace qoracle::optimized

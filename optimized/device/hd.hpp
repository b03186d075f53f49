#pragma once
// QORACLE_HD marks code written once for host and device: nvcc compiles it for both, the host
// compiler (builds without CUDA, the host emulations) as plain C++. The host tests run it against
// the float64 reference, so only launches and indexing are left for a GPU to verify.
#if defined(__CUDACC__)
#define QORACLE_HD __host__ __device__
#else
#define QORACLE_HD
#endif

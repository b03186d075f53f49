#pragma once
// The launch shape of the one-thread-per-element kernels (the merges): blocks of a fixed size,
// enough of them to cover n elements; each thread returns past the end.
namespace qoracle::optimized {

constexpr int kElementwiseThreads = 256;

inline unsigned elementwise_blocks(long long n) {
  return static_cast<unsigned>((n + kElementwiseThreads - 1) / kElementwiseThreads);
}

}  // namespace qoracle::optimized

#pragma once
// Evicts the L2 cache by reading a 256 MiB buffer (5x the H200's L2) on `stream` (a
// cudaStream_t): the lines it leaves are clean, so the next kernel's reads do not pay write-backs
// (a memset would leave the cache dirty). For timing a forward with its weights in memory.
namespace qoracle::optimized {

void flush_l2(void* stream);

}  // namespace qoracle::optimized

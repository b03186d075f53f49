#pragma once
// torch's CPU float32 sum, addition for addition (ATen's cascade_sum in SumKernel.cpp, one
// thread): float32 accumulators in cascade levels of 16, four interleaved partial sums, vector
// lanes summed last. hqq's CPU quantizer takes its means with it, and near a rounding boundary
// the order decides a code (reports/peft-deviations.md H7), so the reference repeats it.
// `lanes` is Vectorized<float>::size() of the kernel that runs: 8 (torch registers its sum kernel
// for AVX2 and the default build only, so an AVX512 machine runs the AVX2 one too; checked
// bit for bit against torch 2.15 on 342 shapes, both axes). Exact for one thread; torch splits
// tensors of 32768+ elements across threads when it has several.
#include <cstdint>
#include <vector>

namespace qoracle {

inline constexpr int kTorchSumLanes = 8;

// A row-major [rows, cols] float32 array summed over each row (dim 1, contiguous): rows values.
std::vector<float> torch_cpu_sum_inner(const std::vector<float>& data, std::int64_t rows, std::int64_t cols, int lanes);
// The same array summed over each column (dim 0, strided): cols values.
std::vector<float> torch_cpu_sum_outer(const std::vector<float>& data, std::int64_t rows, std::int64_t cols, int lanes);
// Every element (a contiguous tensor reduced to one value).
float torch_cpu_sum_all(const std::vector<float>& data, int lanes);

}  // namespace qoracle

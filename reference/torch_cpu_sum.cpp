#include "reference/torch_cpu_sum.hpp"

#include <algorithm>
#include <array>

#include "reference/error.hpp"

namespace qoracle {

namespace {

std::int64_t ceil_log2(std::int64_t x) {  // ATen's utils::CeilLog2
  if (x <= 2) return 1;
  std::int64_t bits = 0;
  for (std::uint64_t v = static_cast<std::uint64_t>(x - 1); v != 0; v >>= 1) ++bits;
  return bits;
}

// Up to four vector accumulators of at most 16 lanes: no allocation per row of the reduction.
using Accumulators = std::array<float, 64>;

// multi_row_sum: `size` rows of `width` float accumulators each (a vector accumulator is `lanes`
// of them), added row by row into level 0; every 16 rows level 0 is carried up the cascade.
template <class Load>
Accumulators multi_row_sum(std::int64_t size, int width, Load load) {
  constexpr int levels = 4;
  const std::int64_t level_power = std::max<std::int64_t>(4, ceil_log2(size) / levels);
  const std::int64_t level_step = std::int64_t{1} << level_power;
  const std::int64_t level_mask = level_step - 1;
  std::array<Accumulators, levels> acc{};
  std::int64_t i = 0;
  while (i + level_step <= size) {
    for (std::int64_t j = 0; j < level_step; ++j, ++i)
      for (int k = 0; k < width; ++k) acc[0][k] += load(i, k);
    for (int j = 1; j < levels; ++j) {
      for (int k = 0; k < width; ++k) {
        acc[j][k] += acc[j - 1][k];
        acc[j - 1][k] = 0.0f;
      }
      if ((i & (level_mask << (j * level_power))) != 0) break;
    }
  }
  for (; i < size; ++i)
    for (int k = 0; k < width; ++k) acc[0][k] += load(i, k);
  for (int j = 1; j < levels; ++j)
    for (int k = 0; k < width; ++k) acc[0][k] += acc[j][k];
  return acc[0];
}

// row_sum: `size` items of `lanes` floats as four interleaved partial sums, the remainder added to
// the first, then the four folded into it (the first `lanes` values hold the result).
template <class Load>
Accumulators row_sum(std::int64_t size, int lanes, Load load) {
  constexpr int ilp = 4;
  const std::int64_t size_ilp = size / ilp;
  Accumulators partial =
      multi_row_sum(size_ilp, ilp * lanes, [&](std::int64_t i, int k) { return load(i * ilp + k / lanes, k % lanes); });
  for (std::int64_t i = size_ilp * ilp; i < size; ++i)
    for (int l = 0; l < lanes; ++l) partial[l] += load(i, l);
  for (int a = 1; a < ilp; ++a)
    for (int l = 0; l < lanes; ++l) partial[l] += partial[a * lanes + l];
  return partial;
}

void require_layout(const std::vector<float>& data, std::int64_t rows, std::int64_t cols, int lanes) {
  if (rows < 0 || cols < 0 || static_cast<std::int64_t>(data.size()) != rows * cols)
    throw Error("torch_cpu_sum: expected rows * cols values");
  if (lanes != 8 && lanes != 16) throw Error("torch_cpu_sum: lanes: expected 8 (AVX2) or 16 (AVX512)");
}

}  // namespace

std::vector<float> torch_cpu_sum_inner(const std::vector<float>& data, std::int64_t rows, std::int64_t cols, int lanes) {
  require_layout(data, rows, cols, lanes);
  std::vector<float> out(static_cast<std::size_t>(rows));
  for (std::int64_t r = 0; r < rows; ++r) {
    const float* row = data.data() + r * cols;
    if (cols < lanes) {  // scalar_inner_sum
      out[r] = row_sum(cols, 1, [&](std::int64_t i, int) { return row[i]; })[0];
      continue;
    }
    // vectorized_inner_sum: whole vectors, then the scalar tail, then the lanes in order
    const std::int64_t vectors = cols / lanes;
    const Accumulators acc = row_sum(vectors, lanes, [&](std::int64_t i, int l) { return row[i * lanes + l]; });
    float total = 0.0f;
    for (std::int64_t k = vectors * lanes; k < cols; ++k) total += row[k];
    for (int l = 0; l < lanes; ++l) total += acc[l];
    out[r] = total;
  }
  return out;
}

std::vector<float> torch_cpu_sum_outer(const std::vector<float>& data, std::int64_t rows, std::int64_t cols, int lanes) {
  require_layout(data, rows, cols, lanes);
  if (cols == 1) return torch_cpu_sum_inner(data, 1, rows, lanes);  // one column is contiguous
  std::vector<float> out(static_cast<std::size_t>(cols));
  auto at = [&](std::int64_t r, std::int64_t c) { return data[r * cols + c]; };
  constexpr int nrows = 4;
  std::int64_t j = 0;
  // vectorized_outer_sum when a row holds a vector, else scalar_outer_sum (lanes of width 1)
  const int width = cols >= lanes ? lanes : 1;
  for (; j + nrows * width <= cols; j += nrows * width) {
    const Accumulators sums = multi_row_sum(rows, nrows * width, [&](std::int64_t i, int k) { return at(i, j + k); });
    std::copy(sums.begin(), sums.begin() + nrows * width, out.begin() + j);
  }
  if (width > 1)
    for (; j + width <= cols; j += width) {
      const Accumulators sums = row_sum(rows, width, [&](std::int64_t i, int l) { return at(i, j + l); });
      std::copy(sums.begin(), sums.begin() + width, out.begin() + j);
    }
  for (; j < cols; ++j) out[j] = row_sum(rows, 1, [&](std::int64_t i, int) { return at(i, j); })[0];
  return out;
}

float torch_cpu_sum_all(const std::vector<float>& data, int lanes) {
  return torch_cpu_sum_inner(data, 1, static_cast<std::int64_t>(data.size()), lanes)[0];
}

}  // namespace qoracle

#pragma once
// The float64 reference's large products, fast: OpenBLAS's dgemm on every core, and weights
// decoded panel by panel on every core (std::thread). Only exact-math (float64) paths use these;
// the emulated float32/16-bit paths keep Eigen's products, whose rounded results the fixtures pin
// bit for bit. Results agree with Eigen's to a few ulps (another summation order).
#include <cstddef>
#include <functional>

#include "reference/matrix.hpp"

namespace qoracle {

// Threads the reference's products and decoding may use (default: std::thread's
// hardware_concurrency). 1 makes every count of instructions deterministic (bench/icount_workload).
void set_reference_threads(int threads);
int reference_threads();

// f(begin, end) over [0, n) in at most reference_threads() contiguous chunks, each at least
// `grain` long; on the calling thread alone when n < 2 grain. The first exception is rethrown.
void parallel_for(std::ptrdiff_t n, std::ptrdiff_t grain, const std::function<void(std::ptrdiff_t, std::ptrdiff_t)>& f);

// a * b^T and a * b (double, OpenBLAS).
Matrix times_transposed(const Matrix& a, const Matrix& b);
Matrix times(const Matrix& a, const Matrix& b);

// w += s * b * a in place, for a rank-r update (w (out, in), b (out, r), a (r, in)): one dgemm with
// beta = 1 on every core, no (out, in) temporary. s b a is not rounded on its own before the sum.
void add_scaled_product(Matrix& w, double s, const Matrix& b, const Matrix& a);
// The row norms of w + s * b * a without forming it: panels of rows on every core.
Vector row_norms_of_sum(const Matrix& w, double s, const Matrix& b, const Matrix& a);

// A (out, in) weight that decodes its rows on demand: rows [begin, end) into `rows_out`, row-major
// ((end - begin) x in doubles).
using RowDecoder = std::function<void(int begin, int end, double* rows_out)>;
// x * W^T for such a weight, without a dense (out, in) Matrix: decoded in parallel into a row-major
// buffer, then one dgemm.
Matrix times_decoded_transposed(const Matrix& x, int out, int in, const RowDecoder& decode);
// W itself, decoded in parallel (what weight() returns).
Matrix decode_all(int out, int in, const RowDecoder& decode);

}  // namespace qoracle

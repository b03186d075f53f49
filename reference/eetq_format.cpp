#include "reference/eetq_format.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <sstream>

#include "reference/error.hpp"
#include "reference/validate.hpp"

namespace qoracle {

namespace {

// Within each 16 rows of B = W^T, stored row t holds logical row kRowPermutation[t] (§2.1 step 1).
constexpr std::array<int, 16> kRowPermutation{0, 1, 8, 9, 2, 3, 10, 11, 4, 5, 12, 13, 6, 7, 14, 15};

// Step 4's byte swizzle: bytes 1 and 2 of every 4-byte word trade places (its own inverse).
std::int64_t swap_middle_bytes(std::int64_t f) { return (f & 3) == 1 || (f & 3) == 2 ? f ^ 3 : f; }

std::int8_t offset_byte(int q) { return static_cast<std::int8_t>(static_cast<std::uint8_t>(q + 128)); }
int from_offset_byte(std::int8_t b) { return static_cast<int>(static_cast<std::uint8_t>(b)) - 128; }

}  // namespace

void require_eetq_codes(const CodeMatrix& q, const std::string& field) {
  if (q.rows() < 1 || q.cols() < 1)
    throw Error(field + ": expected a non-empty [out, in] matrix, got " + shape_string(q.rows(), q.cols()));
  for (Eigen::Index o = 0; o < q.rows(); ++o)
    for (Eigen::Index i = 0; i < q.cols(); ++i)
      if (q(o, i) < -128 || q(o, i) > 127)
        throw Error(field + ": expected int8 codes in [-128, 127], got " + std::to_string(q(o, i)) + " at [" +
                    std::to_string(o) + ", " + std::to_string(i) + "]");
}

const char* eetq_layout_name(EetqLayout l) {
  switch (l) {
    case EetqLayout::Interleaved: return "sm75-sm89";
    case EetqLayout::Volta: return "sm70";
    case EetqLayout::Plain: return "plain";
  }
  return "?";
}

EetqLayout parse_eetq_layout(const std::string& name) {
  if (name == "sm75-sm89" || name == "sm75" || name == "sm80" || name == "sm86" || name == "sm89")
    return EetqLayout::Interleaved;
  if (name == "sm70") return EetqLayout::Volta;
  if (name == "plain") return EetqLayout::Plain;
  throw Error("layout: expected sm75-sm89 (alias sm75, sm80, sm86, sm89), sm70 or plain, got '" + name + "'");
}

void require_eetq_shape(int in_features, int out_features) {
  if (in_features < 64 || in_features % 64 != 0)
    throw Error("in_features: EETQ needs a positive multiple of 64 (its GEMM's k tile; the library's layout "
                "code corrupts the heap otherwise), got " + std::to_string(in_features));
  if (out_features < 64 || out_features % 64 != 0)
    throw Error("out_features: EETQ needs a positive multiple of 64 (its column-interleave tile), got " +
                std::to_string(out_features));
}

EetqQuantized eetq_quantize(const Matrix& w, Dtype weight_dtype) {
  if (weight_dtype != Dtype::Float16 && weight_dtype != Dtype::Float32)
    throw Error(std::string("weight dtype: EETQ's quantizer accepts float16 or float32 weights, got ") +
                dtype_name(weight_dtype));
  if (w.rows() < 1 || w.cols() < 1) throw Error("weight: expected a non-empty [out, in] matrix, got " + shape_string(w));
  require_finite(w, "weight");
  const Matrix stored = round_to(weight_dtype, w);  // the library receives the weight in its dtype
  // A weight beyond the dtype's range arrives as inf, and the library's inf/inf then gives NaN codes:
  // refuse it by name (a merged weight can grow past float16's 65504).
  for (Eigen::Index o = 0; o < w.rows(); ++o)
    for (Eigen::Index i = 0; i < w.cols(); ++i)
      if (!std::isfinite(stored(o, i)))
        throw Error("weight: element [" + std::to_string(o) + ", " + std::to_string(i) + "] = " +
                    (std::ostringstream() << w(o, i)).str() + " does not fit " + dtype_name(weight_dtype) +
                    ", the dtype EETQ's quantizer receives");
  EetqQuantized r{CodeMatrix(w.rows(), w.cols()), Vector(w.rows())};
  for (Eigen::Index o = 0; o < w.rows(); ++o) {
    float amax = 0.0f;
    for (Eigen::Index i = 0; i < w.cols(); ++i) amax = std::max(amax, std::fabs(static_cast<float>(stored(o, i))));
    const float scale32 = amax * (1.0f / 128.0f);  // exact: a power of two
    r.scales(o) = round_to(weight_dtype, static_cast<double>(scale32));
    for (Eigen::Index i = 0; i < w.cols(); ++i) {
      if (scale32 == 0.0f) {  // 0/0 = NaN, which the library's clamp-and-cast turns into 127
        r.q(o, i) = 127;
        continue;
      }
      const float ratio = static_cast<float>(stored(o, i)) / scale32;  // float32 division
      r.q(o, i) = static_cast<int>(std::clamp(std::round(ratio), -128.0f, 127.0f));  // round half away
    }
  }
  return r;
}

Matrix eetq_dequantize(const EetqQuantized& q, bool round_to_fp16) {
  Matrix w(q.q.rows(), q.q.cols());
  for (Eigen::Index o = 0; o < w.rows(); ++o)
    for (Eigen::Index i = 0; i < w.cols(); ++i) {
      const double v = q.q(o, i) * q.scales(o);  // exact in double
      w(o, i) = round_to_fp16 ? round_to(Dtype::Float16, v) : v;
    }
  return w;
}

std::int64_t eetq_interleaved_offset(int o, int i, int k) {
  const int t = i & 15;
  const int b = t < 8 ? 2 * t : 2 * t - 15;
  return static_cast<std::int64_t>(o >> 1) * (2 * static_cast<std::int64_t>(k)) + (i >> 6) * 128 + (o & 1) * 64 +
         ((i >> 4) & 3) * 16 + b;
}

std::vector<std::int8_t> eetq_encode(const CodeMatrix& q, EetqLayout layout) {
  require_eetq_codes(q, "codes");
  const int n = static_cast<int>(q.rows()), k = static_cast<int>(q.cols());
  const std::size_t size = static_cast<std::size_t>(n) * k;
  std::vector<std::int8_t> bytes(size);
  if (layout == EetqLayout::Plain) {  // row-major B = W^T, [in, out]
    for (int i = 0; i < k; ++i)
      for (int o = 0; o < n; ++o) bytes[static_cast<std::size_t>(i) * n + o] = static_cast<std::int8_t>(q(o, i));
    return bytes;
  }
  require_eetq_shape(k, n);
  std::vector<std::int8_t> image(size);
  if (layout == EetqLayout::Volta) {
    for (int i = 0; i < k; ++i)
      for (int o = 0; o < n; ++o) image[static_cast<std::size_t>(i) * n + o] = offset_byte(q(o, i));
  } else {
    // Steps 1-3 in one pass: stored row position p of B1 holds logical row i = 16(p/16) + P[p%16];
    // after the transpose, output channel o's run of 64 k-values of tile j sits at
    // (o/2)*2k + j*128 + (o%2)*64.
    for (int o = 0; o < n; ++o)
      for (int p = 0; p < k; ++p) {
        const int i = 16 * (p / 16) + kRowPermutation[p % 16];
        const std::size_t at = static_cast<std::size_t>(o / 2) * 2 * k + static_cast<std::size_t>(p / 64) * 128 +
                               static_cast<std::size_t>(o % 2) * 64 + p % 64;
        image[at] = offset_byte(q(o, i));
      }
  }
  for (std::size_t f = 0; f < size; ++f) bytes[f] = image[swap_middle_bytes(static_cast<std::int64_t>(f))];
  return bytes;
}

CodeMatrix eetq_decode(const std::vector<std::int8_t>& bytes, int k, int n, EetqLayout layout) {
  if (k < 1 || n < 1)
    throw Error("shape: expected positive in_features and out_features, got " + std::to_string(k) + " and " + std::to_string(n));
  if (layout != EetqLayout::Plain) require_eetq_shape(k, n);
  const std::size_t size = static_cast<std::size_t>(n) * k;
  if (bytes.size() != size)
    throw Error("weight: expected " + std::to_string(size) + " bytes ([" + std::to_string(k) + ", " + std::to_string(n) +
                "] int8), got " + std::to_string(bytes.size()));
  CodeMatrix q(n, k);
  for (std::size_t f = 0; f < size; ++f) {
    if (layout == EetqLayout::Plain) {
      q(static_cast<Eigen::Index>(f % n), static_cast<Eigen::Index>(f / n)) = bytes[f];
      continue;
    }
    const std::int64_t p = swap_middle_bytes(static_cast<std::int64_t>(f));
    const int value = from_offset_byte(bytes[f]);
    if (layout == EetqLayout::Volta) {
      q(p % n, p / n) = value;
      continue;
    }
    const std::int64_t row = p / (2 * static_cast<std::int64_t>(k)), tau = p % (2 * static_cast<std::int64_t>(k));
    const int o = static_cast<int>(2 * row + (tau % 128) / 64);
    const int stored_row = static_cast<int>(64 * (tau / 128) + tau % 64);
    q(o, 16 * (stored_row / 16) + kRowPermutation[stored_row % 16]) = value;
  }
  return q;
}

}  // namespace qoracle

#pragma once
// EETQ's int8 weight-only format (spec eetq.md §2-§3): per-output-channel symmetric int8 codes q
// with an fp16 scale s_o, W[o][i] ~ q[o][i] * s_o, and the byte images a checkpoint's `weight`
// buffer (int8, nominal shape [in, out]) holds for each GPU architecture family.
#include <cstdint>
#include <string>
#include <vector>

#include "reference/dtype.hpp"
#include "reference/hqq_format.hpp"  // CodeMatrix
#include "reference/matrix.hpp"

namespace qoracle {

// Which byte image a checkpoint holds. Nothing in a checkpoint says which; the user must know.
enum class EetqLayout {
  Interleaved,  // sm75-sm89: row permutation, column-major 64x2 tile interleave, +128, bytes 1<->2 swapped
  Volta,        // sm70-sm74: row-major [in, out], +128, bytes 1<->2 swapped
  Plain,        // the unprocessed quantizer output: row-major [in, out] int8, no offset
};
const char* eetq_layout_name(EetqLayout l);  // "sm75-sm89", "sm70", "plain"
EetqLayout parse_eetq_layout(const std::string& name);

// The quantizer's result: codes [out, in] in [-128, 127] and the stored scales (values of the
// weight dtype: float16 for a checkpoint).
struct EetqQuantized {
  CodeMatrix q;
  Vector scales;
};

// As the library quantizes (quant_weights): per output channel, amax in float32, scale
// amax * 2^-7 (a divisor of 128, not 127), q = clamp(round-half-away(float(w) / scale32),
// -128, 127) with the division in float32 by the float32 scale, and the stored scale rounded to
// `weight_dtype` (Float16 or Float32, the only inputs the library accepts). An all-zero channel
// gets q = 127 and scale 0, as the library's 0/0 gives. Non-finite weights are refused, and so are
// weights beyond the dtype's range (the library would turn them into NaN codes).
EetqQuantized eetq_quantize(const Matrix& w, Dtype weight_dtype = Dtype::Float16);

// Dequantized weight: exact q * s in double (the oracle), or as both library kernels do it,
// fp16_rn(q * s) (round_to_fp16 = true).
Matrix eetq_dequantize(const EetqQuantized& q, bool round_to_fp16);

// The byte offset of logical (o, i) in the sm75-sm89 image, closed form (spec §2.2).
std::int64_t eetq_interleaved_offset(int o, int i, int in_features);

// Encode codes [out, in] into the k*n bytes of the layout (as int8 storage) and back. Encoding
// follows the library's four preprocessing steps; decoding inverts the closed form. The
// interleaved and Volta layouts need in and out features that are multiples of 64 (the library
// corrupts its heap otherwise); each throws Error naming the field.
std::vector<std::int8_t> eetq_encode(const CodeMatrix& q, EetqLayout layout);
CodeMatrix eetq_decode(const std::vector<std::int8_t>& bytes, int in_features, int out_features, EetqLayout layout);

// Throws Error naming `field` unless q is non-empty with every value in [-128, 127].
void require_eetq_codes(const CodeMatrix& q, const std::string& field);

// Throws Error unless in_features and out_features are positive multiples of 64.
void require_eetq_shape(int in_features, int out_features);

}  // namespace qoracle

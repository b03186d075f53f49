#pragma once
// The HQQ weight format (hqq 0.2.8.post1; spec hqq.md §1-§4): asymmetric affine quantization by
// groups, W ~ (Q - z) * s, integer codes Q in [0, 2^nbits - 1], a float scale s and float zero z
// per group.
//
// Grouping: W (out, in) is flattened row-major and reshaped row-major into the grouped matrix
// G (R, C). axis = 1: R = N / group_size, C = group_size, a group is a row of G. axis = 0:
// R = group_size, C = N / group_size, a group is a column of G (strided rows of W).
#include <cstdint>
#include <string>
#include <vector>

#include "reference/matrix.hpp"

namespace qoracle {

using CodeMatrix = Eigen::Matrix<int, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

struct HqqConfig {
  int nbits = 4;
  int group_size = 64;
  int axis = 1;
  bool round_zero = false;  // hqq's BaseQuantizeConfig sets it for nbits == 4 only
  bool optimize = true;
  // The proximal optimizer as hqq 0.2.8.post1 runs it: beta stays 10 (kappa unused).
  double lp_norm = 0.7;
  double beta = 10.0;
  int iters = 20;
};

// hqq.core.quantize.BaseQuantizeConfig(nbits, group_size, axis=axis): round_zero iff 4-bit.
HqqConfig hqq_base_quantize_config(int nbits, int group_size, int axis = 1);

struct HqqGrouping {
  int rows = 0;    // R
  int cols = 0;    // C
  int groups = 0;  // C for axis 0, R for axis 1
  int max_code = 0;
};

// Checks the config against a weight shape; throws Error naming the field and what was expected
// (nbits in {1, 2, 3, 4, 8}, axis 0 or 1, group_size dividing out*in, and the row counts that
// 4-, 2- and 1-bit packing need, which hqq itself does not check).
HqqGrouping hqq_grouping(const HqqConfig& config, int out_features, int in_features);

// The grouped view and back. Group g's values are row g (axis 1) or column g (axis 0).
Matrix hqq_grouped(const Matrix& weight, const HqqGrouping& grouping);
Matrix hqq_ungrouped(const Matrix& grouped, int out_features, int in_features);

// Packed codes exactly as hqq stores W_q: uint8 words (8/4/2/1-bit) or int32 words (3-bit).
struct HqqPacked {
  int rows = 0, cols = 0;
  int word_bits = 8;                   // 8 (uint8) or 32 (int32)
  std::vector<std::uint32_t> words;    // row-major, rows * cols
};

const char* hqq_packing_name(int nbits);  // "8bit_u8", "4bit_u8", "3bit_32", "2bit_u8", "1bit_u8"
HqqPacked hqq_pack(const CodeMatrix& codes, int nbits);
// Unpacks and trims the 3-bit padding rows; `rows` is R. Throws on a buffer of the wrong size.
CodeMatrix hqq_unpack(const HqqPacked& packed, int nbits, int rows);

}  // namespace qoracle

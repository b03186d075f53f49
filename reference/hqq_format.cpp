#include "reference/hqq_format.hpp"

#include "reference/error.hpp"

namespace qoracle {

HqqConfig hqq_base_quantize_config(int nbits, int group_size, int axis) {
  HqqConfig c;
  c.nbits = nbits;
  c.group_size = group_size;
  c.axis = axis;
  c.round_zero = nbits == 4;
  return c;
}

namespace {
int codes_per_word(int nbits) {
  switch (nbits) {
    case 8: return 1;
    case 4: return 2;
    case 3: return 10;
    case 2: return 4;
    case 1: return 8;
  }
  throw Error("nbits: expected one of 1, 2, 3, 4, 8, got " + std::to_string(nbits));
}
}  // namespace

const char* hqq_packing_name(int nbits) {
  switch (nbits) {
    case 8: return "8bit_u8";
    case 4: return "4bit_u8";
    case 3: return "3bit_32";
    case 2: return "2bit_u8";
    case 1: return "1bit_u8";
  }
  throw Error("nbits: expected one of 1, 2, 3, 4, 8, got " + std::to_string(nbits));
}

HqqGrouping hqq_grouping(const HqqConfig& c, int out_features, int in_features) {
  const int k = codes_per_word(c.nbits);  // validates nbits
  if (c.axis != 0 && c.axis != 1) throw Error("axis: expected 0 or 1, got " + std::to_string(c.axis));
  if (out_features < 1 || in_features < 1)
    throw Error("shape: expected a non-empty weight, got " + shape_string(out_features, in_features));
  const long long n = static_cast<long long>(out_features) * in_features;
  if (c.group_size < 1 || n % c.group_size != 0)
    throw Error("group_size: expected a positive divisor of out*in = " + std::to_string(n) + ", got " +
                std::to_string(c.group_size));
  HqqGrouping g;
  g.rows = c.axis == 1 ? static_cast<int>(n / c.group_size) : c.group_size;
  g.cols = c.axis == 1 ? c.group_size : static_cast<int>(n / c.group_size);
  g.groups = c.axis == 1 ? g.rows : g.cols;
  g.max_code = (1 << c.nbits) - 1;
  if (c.nbits != 3 && g.rows % k != 0)
    throw Error("group_size: " + std::to_string(c.nbits) + "-bit packing needs the grouped row count R (" +
                (c.axis == 1 ? "out*in/group_size" : "group_size") + " = " + std::to_string(g.rows) +
                ") divisible by " + std::to_string(k) + "; hqq does not check this and silently corrupts such shapes");
  if (c.iters < 0) throw Error("iters: expected >= 0, got " + std::to_string(c.iters));
  return g;
}

Matrix hqq_grouped(const Matrix& weight, const HqqGrouping& grouping) {
  Matrix g(grouping.rows, grouping.cols);
  const Eigen::Index in = weight.cols();
  for (Eigen::Index f = 0; f < weight.size(); ++f) g(f / grouping.cols, f % grouping.cols) = weight(f / in, f % in);
  return g;
}

Matrix hqq_ungrouped(const Matrix& grouped, int out_features, int in_features) {
  Matrix w(out_features, in_features);
  const Eigen::Index cols = grouped.cols();
  for (Eigen::Index f = 0; f < w.size(); ++f) w(f / in_features, f % in_features) = grouped(f / cols, f % cols);
  return w;
}

HqqPacked hqq_pack(const CodeMatrix& codes, int nbits) {
  const int k = codes_per_word(nbits);
  const int rows = static_cast<int>(codes.rows()), cols = static_cast<int>(codes.cols());
  HqqPacked p;
  p.cols = cols;
  p.word_bits = nbits == 3 ? 32 : 8;
  // Rows split into k contiguous slabs; slab j sits in bit field j of each word. 3-bit pads the
  // rows to a multiple of 10 with zeros; the others need R divisible by k (checked by the grouping).
  if (nbits != 3 && rows % k != 0)
    throw Error("codes: " + std::to_string(nbits) + "-bit packing needs a row count divisible by " + std::to_string(k) +
                ", got " + std::to_string(rows));
  p.rows = (rows + k - 1) / k;
  p.words.assign(static_cast<std::size_t>(p.rows) * cols, 0u);
  const int container = nbits == 3 ? 30 : 8;
  for (int r = 0; r < rows; ++r) {
    const int slot = r / p.rows, prow = r % p.rows;
    const int shift = container - nbits * (slot + 1);
    for (int c = 0; c < cols; ++c) {
      const int q = codes(r, c);
      if (q < 0 || q > (1 << nbits) - 1)
        throw Error("codes: value " + std::to_string(q) + " at [" + std::to_string(r) + ", " + std::to_string(c) +
                    "] is outside [0, " + std::to_string((1 << nbits) - 1) + "]");
      p.words[static_cast<std::size_t>(prow) * cols + c] |= static_cast<std::uint32_t>(q) << shift;
    }
  }
  return p;
}

CodeMatrix hqq_unpack(const HqqPacked& packed, int nbits, int rows) {
  const int k = codes_per_word(nbits);
  const int want_rows = (rows + k - 1) / k;
  if (packed.rows != want_rows || packed.words.size() != static_cast<std::size_t>(packed.rows) * packed.cols)
    throw Error("W_q: expected " + std::to_string(want_rows) + " packed rows for " + std::to_string(rows) + " " +
                std::to_string(nbits) + "-bit code rows (" + hqq_packing_name(nbits) + "), got " +
                std::to_string(packed.rows) + " rows holding " + std::to_string(packed.words.size()) + " words");
  const int container = nbits == 3 ? 30 : 8;
  const std::uint32_t mask = (1u << nbits) - 1u;
  CodeMatrix codes(rows, packed.cols);
  for (int r = 0; r < rows; ++r) {
    const int slot = r / packed.rows, prow = r % packed.rows;
    const int shift = container - nbits * (slot + 1);
    for (int c = 0; c < packed.cols; ++c)
      codes(r, c) = static_cast<int>((packed.words[static_cast<std::size_t>(prow) * packed.cols + c] >> shift) & mask);
  }
  return codes;
}

}  // namespace qoracle

#include "reference/oft_config.hpp"

#include <sstream>

#include "reference/error.hpp"

namespace qoracle {

int adjust_oft_factor(int n, int p) {
  if (p >= n) return n;
  int higher = p;
  while (n % higher != 0) ++higher;
  int lower = p;
  while (lower > 1 && n % lower != 0) --lower;
  return (p - lower <= higher - p) ? lower : higher;
}

OftBlocks resolve_oft_blocks(int in_features, const OftConfig& config) {
  if (in_features < 1) throw Error("in_features: expected a positive value, got " + std::to_string(in_features));
  if (config.r < 0) throw Error("r: expected r >= 0, got " + std::to_string(config.r));
  if (config.oft_block_size < 0)
    throw Error("oft_block_size: expected oft_block_size >= 0, got " + std::to_string(config.oft_block_size));
  const bool has_r = config.r != 0, has_b = config.oft_block_size != 0;
  if (has_r == has_b)
    throw Error("r/oft_block_size: expected exactly one of them non-zero, got r=" + std::to_string(config.r) +
                " and oft_block_size=" + std::to_string(config.oft_block_size));
  // PEFT adjusts whichever of the two was given to the nearest divisor, then derives the other.
  OftBlocks blocks;
  int factor = has_b ? config.oft_block_size : config.r;
  if (in_features % factor != 0 || factor > in_features) {
    factor = adjust_oft_factor(in_features, factor);
    blocks.adjusted = true;
  }
  blocks.block_size = has_b ? factor : in_features / factor;
  blocks.r = has_b ? in_features / factor : factor;
  blocks.param_rows = config.block_share ? 1 : blocks.r;
  blocks.n_elements = blocks.block_size * (blocks.block_size - 1) / 2;
  return blocks;
}

std::string describe(const OftConfig& c) {
  std::ostringstream s;
  s << "r=" << c.r << " oft_block_size=" << c.oft_block_size << " coft=" << c.coft << " eps=" << c.eps
    << " block_share=" << c.block_share << " use_cayley_neumann=" << c.use_cayley_neumann
    << " num_cayley_neumann_terms=" << c.num_cayley_neumann_terms;
  return s.str();
}

}  // namespace qoracle

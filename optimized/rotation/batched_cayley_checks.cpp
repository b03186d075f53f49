// batched_cayley's input checks, built with and without CUDA so bad input reads the same either way.
#include <cmath>
#include <string>

#include "optimized/rotation/batched_cayley.hpp"
#include "optimized/rotation/cayley_block.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

void check_cayley_batch(const CayleyBatch& batch, const std::vector<float>& params) {
  const int b = batch.block_size;
  if (b < 2 || b > 128) throw Error("block_size: expected 2..128, got " + std::to_string(b));
  if (batch.rows < 1) throw Error("rows: expected >= 1, got " + std::to_string(batch.rows));
  if (batch.neumann && batch.terms < 1) throw Error("terms: expected >= 1, got " + std::to_string(batch.terms));
  if (!(batch.coft_radius >= 0.0f) || !std::isfinite(batch.coft_radius))
    throw Error("coft_radius: expected a finite value >= 0 (0: no COFT), got " + std::to_string(batch.coft_radius));
  const std::size_t n_el = static_cast<std::size_t>(b) * (b - 1) / 2;
  if (params.size() != static_cast<std::size_t>(batch.rows) * n_el)
    throw Error("params: expected " + std::to_string(batch.rows) + " x " + std::to_string(n_el) + " values, got " +
                std::to_string(params.size()));
}

CayleyLaunch plan_cayley_launch(const CayleyBatch& batch, int opt_in_shared) {
  constexpr int kDefault = 48 * 1024;
  const int scratch = static_cast<int>(sizeof(float)) * rotation_scratch_floats(batch.block_size, batch.neumann);
  CayleyLaunch l;
  if (kCayleyStaticShared + scratch <= kDefault) {
    l.dynamic_shared = scratch;
  } else if (kCayleyStaticShared + scratch <= opt_in_shared) {
    l.dynamic_shared = scratch;
    l.opt_in = true;
  } else {
    l.global_scratch = true;
  }
  return l;
}

}  // namespace qoracle::optimized

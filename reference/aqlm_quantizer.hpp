#pragma once
// A simple, correct additive quantizer that produces valid AQLM tensors from a dense weight, for
// fixtures and for users who want to test a layer without a calibration pipeline (spec aqlm.md §4,
// "fixture quantizer"). It is not AQLM's own quantizer (no calibration data, no beam search, no
// Adam): scales are the out-group norms, then one codebook at a time is fitted by seeded k-means
// (Lloyd) to the residual, codes by nearest centroid. Deterministic for a seed.
#include <cstdint>

#include "reference/aqlm_linear.hpp"

namespace qoracle {

struct AqlmQuantizerOptions {
  int lloyd_iterations = 10;
  std::uint64_t seed = 0;
  Dtype storage = Dtype::Float16;  // codebooks and scales are rounded to it, as checkpoints hold them
};

struct AqlmQuantized {
  std::vector<int> codes;        // [Og, Ig, C] indices in [0, 2^nbits)
  std::vector<double> codebooks; // [C, K, og, ig], in the storage dtype
  Vector scales;                 // [Og], in the storage dtype
  double relative_error = 0;     // ||W_hat - W||_F / ||W||_F from the stored values
};

AqlmQuantized aqlm_quantize(const Matrix& weight, const AqlmConfig& config, const AqlmQuantizerOptions& options);

}  // namespace qoracle

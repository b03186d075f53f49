// Built without CUDA: the batched Cayley refuses with the reason, as on a machine without a GPU.
#include "optimized/batched_cayley.hpp"
#include "optimized/device_probe.hpp"
#include "reference/error.hpp"

namespace qoracle::optimized {

std::vector<float> batched_cayley(const CayleyBatch& batch, const std::vector<float>& params) {
  check_cayley_batch(batch, params);
  throw Error("no GPU: " + probe_device().reason);
}

}  // namespace qoracle::optimized

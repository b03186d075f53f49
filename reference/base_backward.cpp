#include "reference/base_backward.hpp"

namespace qoracle {

std::string base_backward_refusal(const AqlmLinear& base, Convention convention, bool) {
  if (convention != Convention::Peft) return {};
  const AqlmConfig& c = base.config();
  if (c.nbits_per_codebook == 8 && c.out_group_size == 1)
    return "gradients: aqlm 1.1.7's CPU backward for 256-entry codebooks with out_group_size 1 re-transposes the codes "
           "its forward permuted (training.md T10: a shape error or a wrong grad_x), and PEFT's AqlmLoraLinear forward "
           "raises in grad mode (T11); not reproduced without a fixture from the library";
  if (base.kernel() == AqlmKernel::CudaDequantGemm)
    return "gradients: aqlm 1.1.7's CUDA backward for more than 6 rows (the *_dequant_transposed ops) drops the "
           "scales for 2x8/1x8 and adds the layer bias to grad_x (training.md T12, read, not run); not reproduced "
           "without a fixture from the library";
  return {};
}

bool base_has_backward(const EetqLinear&, Convention convention, bool training) {
  return convention != Convention::Peft || training;
}

}  // namespace qoracle

#pragma once
// What a layer's backward returns (spec training.md §1, §10): dL/dx and, per adapter, the
// gradient of each trainable parameter, for L = sum(G ⊙ y) with G the upstream gradient.
#include <map>
#include <optional>
#include <string>

#include "reference/matrix.hpp"

namespace qoracle {

struct AdapterGradients {
  // Shaped as the parameters: lora_A [r, in], lora_B [out, r], lora_B_bias [out] (lora_bias),
  // magnitude [out] (DoRA), weight [r', b(b-1)/2] (OFT).
  std::optional<Matrix> lora_A, lora_B, weight;
  std::optional<Vector> lora_B_bias, magnitude;
  // PEFT leaves .grad None (OFT with one Neumann term, a merged or inactive adapter): the values
  // are zeros, and fixtures mark them with peft_grad_none (fixtures/SCHEMA.md, Gradients).
  bool peft_grad_none = false;
};

struct LayerGradients {
  Matrix grad_x;  // [tokens, in]
  bool grad_x_none = false;  // x.grad is None in PEFT (EETQ in eval with OFT: no graph at all)
  std::map<std::string, AdapterGradients> adapters;  // the active adapters
};

// Per adapter, the dropout noise nu [tokens, in] its forward drew (spec §7): x_d = x ⊙ nu. An
// adapter without an entry sees x (eval, or p = 0).
using DropoutNoise = std::map<std::string, Matrix>;

}  // namespace qoracle

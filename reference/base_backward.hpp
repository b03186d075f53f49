#pragma once
// The frozen bases' backward (spec training.md §5): dL/dx = G W with W as the library
// dequantizes it; no base parameter gets a gradient. Where a library's own backward is wrong,
// the PEFT convention follows it when a fixture can show it (EETQ in eval, T13, through the CPU
// stand-in) and refuses otherwise (aqlm's CPU 2x8/1x8, T10; its CUDA dequant backward, T12).
#include <string>

#include "reference/aqlm_linear.hpp"
#include "reference/convention.hpp"
#include "reference/eetq_linear.hpp"
#include "reference/matrix.hpp"

namespace qoracle {

// G [tokens, out] -> dL/dx [tokens, in].
template <class Base>
Matrix base_grad_input(const Base& base, const Matrix& grad_output) {
  return grad_output * base.weight();
}

// Why the PEFT convention cannot give this base's backward; empty when it can.
template <class Base>
std::string base_backward_refusal(const Base&, Convention, bool /*training*/) {
  return {};
}
std::string base_backward_refusal(const AqlmLinear& base, Convention convention, bool training);

// Whether dL/dx flows through the base at all. EETQ in eval (PEFT convention): the library runs its
// forward under no_grad (T13), so dL/dx lacks G W and nothing before the base gets a gradient.
template <class Base>
bool base_has_backward(const Base&, Convention, bool /*training*/) {
  return true;
}
bool base_has_backward(const EetqLinear& base, Convention convention, bool training);

}  // namespace qoracle

#pragma once
// What PEFT does differently per base-layer type, reproduced in Convention::Peft (and, for dtype
// handling, wherever the reference emulates a deployment dtype).
namespace qoracle {

struct PeftQuirks {
  bool merge_drops_bias = false;  // the merged base layer is rebuilt without its bias (HQQ)
  // LoRA unmerge subtracts the delta cast to the weight dtype first (dense: weight -= delta.to(dtype));
  // the HQQ path subtracts it in float32 before requantizing.
  bool lora_unmerge_rounds_delta = false;
  // LoRA's forward rounds B(A(x)) to the result dtype, then scales, then adds in place (AQLM,
  // EETQ), instead of adding s * B(A(x)) in float32 and rounding once (nn.Linear, HQQ).
  bool lora_rounds_before_scaling = false;
  // The result is cast back to the compute dtype after each adapter's contribution, inside the
  // adapter loop (HqqLoraLinear), instead of once after the loop (nn.Linear): with several adapters
  // in 16 bits each partial sum is rounded.
  bool lora_rounds_after_each_adapter = false;
};

}  // namespace qoracle

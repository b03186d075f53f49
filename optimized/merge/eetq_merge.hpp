#pragma once
// Merging adapters into an EETQ layer on the GPU, the export path PEFT lacks (it refuses EETQ
// merges): the merged weight of optimized/merged_weight.hpp, requantized with EETQ's own quantizer
// (optimized/eetq_requantize.hpp) into the base's byte layout, with float16 scales and a float16
// bias (lora_bias folded in). The GPU twin of the reference's eetq_merge_to_dequantized, which
// requantizes the exact float64 merge: from the same float32 merged weight both give identical
// codes and scales; from the float64 one a code can move by one where the float32 merge sits
// within its rounding of a half step (conformance/TOLERANCES.md).
#include "optimized/layer/host_layer.hpp"
#include "optimized/layer/weight_views.hpp"

namespace qoracle::optimized {

// `layer` must have an EETQ base (any layout) and LoRA or OFT adapters, not both, and a bias where
// it has lora_bias. Returns the merged layer: EETQ weights in the base's layout, no adapters.
// Throws qoracle::Error naming what does not fit (a merged weight beyond float16's range
// included), and "no GPU: ..." without a usable device.
HostLayer eetq_merge(const HostLayer& layer);
// The same code run serially on the host.
HostLayer eetq_merge_on_host(const HostLayer& layer);

// What both paths share: the checks (returning the base), the refusal of a merged weight that
// float16 cannot hold (element `flat` of the (out, in) weight, `value` its float32 value), the
// merged layer around the requantized weights (the bias rounded to float16, as a checkpoint holds
// it), and the layout the codes are written in.
const EetqWeights& check_eetq_merge(const HostLayer& layer);
[[noreturn]] void refuse_unstorable_weight(const HostLayer& layer, long long flat, float value);
HostLayer eetq_merged_layer(const HostLayer& layer, EetqWeights weights);
// The base's byte layout alone (no tensors): where each requantized code goes.
EetqView eetq_layout_of(const HostLayer& layer, const EetqWeights& base);

}  // namespace qoracle::optimized

#pragma once
// Beyond PEFT (which refuses to merge into EETQ layers): dequantize, merge the adapters exactly,
// requantize with EETQ's own quantizer, and say what the requantization cost.
#include <string>
#include <vector>

#include "reference/eetq_linear.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle {

struct EetqMergeExport {
  EetqLinear layer;       // the merged layer as EETQ stores it: codes, fp16 scales, fp16 bias
  Matrix merged_weight;   // the exact merge W' = merge(dequantized base) in double
  double max_abs_error;   // max |deq(layer) - W'|
  double relative_error;  // ||deq(layer) - W'||_F / ||W'||_F
  // How much of the adapter's change survives: 1 - ||(deq(layer) - W) - (W' - W)||_F / ||W' - W||_F
  // with W the exact dequantized base (1: all of it; <= 0: lost in the requantization).
  double adapter_kept;
};

EetqMergeExport eetq_merge_to_dequantized(const OftLayer<EetqLinear>& layer, const std::vector<std::string>& names);
EetqMergeExport eetq_merge_to_dequantized(const LoraLayer<EetqLinear>& layer, const std::vector<std::string>& names);

}  // namespace qoracle

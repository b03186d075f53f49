#pragma once
// What PEFT does differently per base-layer type, reproduced in Convention::Peft.
namespace qoracle {

struct PeftQuirks {
  bool merge_drops_bias = false;          // the merged base layer is rebuilt without its bias
  bool oft_unmerge_by_transpose = false;  // OFT unmerge multiplies by R instead of R^-T
};

}  // namespace qoracle

#pragma once
// What merging an adapter into an HQQ layer costs, which users of quantized merges need and no
// library reports: the merged-and-requantized layer against the unquantized ideal (the quantized
// base with the adapter applied exactly), and the drift after k merge/unmerge cycles (each
// cycle requantizes twice, as PEFT does).
#include <string>
#include <vector>

#include "reference/hqq_linear.hpp"
#include "reference/lora_adapter.hpp"
#include "reference/oft_config.hpp"

namespace qoracle {

struct MergeAdapter {
  std::string kind;  // "lora" or "oft"
  LoraConfig lora;
  Matrix lora_a, lora_b;
  OftConfig oft;
  Matrix oft_weight;
};

struct MergeQuality {
  double merge_weight_error = 0;   // ||W_merged - W_ideal||_F / ||W_ideal||_F
  double adapter_size = 0;         // ||W_ideal - W||_F / ||W_ideal||_F: how much the adapter changes W
  double adapter_lost = 0;         // ||W_merged - W_ideal||_F / ||W_ideal - W||_F: 1 = as if never merged
  double merge_forward_error = 0;  // max|x W_merged^T - x W_ideal^T| / max|x W_ideal^T| on probe inputs
  double codes_changed = 0;        // share of codes that differ from the base after merge (informative)
  std::vector<double> drift;       // after cycle k (1..K): ||W_k - W_0||_F / ||W_0||_F
  double codes_changed_after_cycles = 0;
};

// base: the quantized layer; arithmetic: the requantization's (Float32Cpu = what hqq does).
MergeQuality measure_merge_quality(const HqqLinear& base, const MergeAdapter& adapter, const Matrix& probe_x,
                                   int cycles);

// The standard table over nbits x group_size x axis for a seeded layer (out x in, N(0, 0.02)
// weights like an LLM's) with a LoRA (r 8, alpha 16) and an OFT (block 32) adapter of typical size.
struct MergeQualityRow {
  std::string adapter;
  int nbits = 0, group_size = 0, axis = 0;
  MergeQuality quality;
};
std::vector<MergeQualityRow> merge_quality_table(int out_features, int in_features, int cycles, std::uint64_t seed);

std::string merge_quality_markdown(const std::vector<MergeQualityRow>& rows, const std::string& title);

}  // namespace qoracle

#include "conformance/merge_quality.hpp"

#include <cstdio>

#include "reference/seeded_random.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle {

namespace {

double rel_frobenius(const Matrix& a, const Matrix& b) { return (a - b).norm() / std::max(b.norm(), 1e-300); }

double codes_changed(const HqqLinear& a, const HqqLinear& b) {
  const auto& ca = a.quantized().codes;
  const auto& cb = b.quantized().codes;
  return static_cast<double>((ca.array() != cb.array()).count()) / static_cast<double>(ca.size());
}

template <class Layer>
MergeQuality run(Layer layer, const HqqLinear& base, const Matrix& ideal, const Matrix& probe_x, int cycles) {
  MergeQuality q;
  layer.merge({"a"});
  const Matrix merged = layer.base().weight();
  q.merge_weight_error = rel_frobenius(merged, ideal);
  const Matrix w = base.weight();
  q.adapter_size = (ideal - w).norm() / std::max(ideal.norm(), 1e-300);
  q.adapter_lost = (merged - ideal).norm() / std::max((ideal - w).norm(), 1e-300);
  const Matrix y = probe_x * merged.transpose(), y_ideal = probe_x * ideal.transpose();
  q.merge_forward_error = (y - y_ideal).cwiseAbs().maxCoeff() / std::max(y_ideal.cwiseAbs().maxCoeff(), 1e-300);
  q.codes_changed = codes_changed(layer.base(), base);
  layer.unmerge();
  const Matrix w0 = base.weight();
  q.drift.push_back(rel_frobenius(layer.base().weight(), w0));
  for (int k = 1; k < cycles; ++k) {
    layer.merge({"a"});
    layer.unmerge();
    q.drift.push_back(rel_frobenius(layer.base().weight(), w0));
  }
  q.codes_changed_after_cycles = codes_changed(layer.base(), base);
  return q;
}

}  // namespace

MergeQuality measure_merge_quality(const HqqLinear& base, const MergeAdapter& adapter, const Matrix& probe_x,
                                   int cycles) {
  // The PEFT convention: each merge and unmerge requantizes, as PEFT's HQQ paths do.
  const Matrix w = base.weight();
  if (adapter.kind == "lora") {
    HqqLoraLinear layer(base, Convention::Peft);
    layer.add_adapter("a", adapter.lora, adapter.lora_a, adapter.lora_b);
    return run(layer, base, Matrix(w + layer.delta_weight("a")), probe_x, cycles);
  }
  HqqOftLinear layer(base, Convention::Peft);
  layer.add_adapter("a", adapter.oft, adapter.oft_weight);
  return run(layer, base, Matrix(w * layer.delta_weight("a").transpose()), probe_x, cycles);
}

std::vector<MergeQualityRow> merge_quality_table(int out_features, int in_features, int cycles, std::uint64_t seed) {
  SeededRandom rng(seed);
  const Matrix w = rng.normal(out_features, in_features, 0.02);
  const Matrix x = rng.normal(16, in_features, 1.0);
  MergeAdapter lora;
  lora.kind = "lora";
  lora.lora = LoraConfig{8, 16, false, false, false};
  // A trained LoRA's delta is a few percent of W: A ~ U(+-1/sqrt(in)) (PEFT's init), B small.
  lora.lora_a = rng.uniform(8, in_features, -1.0 / std::sqrt(in_features), 1.0 / std::sqrt(in_features));
  lora.lora_b = rng.normal(out_features, 8, 0.002);
  MergeAdapter oft;
  oft.kind = "oft";
  oft.oft.oft_block_size = 32;
  oft.oft.use_cayley_neumann = false;
  const OftBlocks blocks = resolve_oft_blocks(in_features, oft.oft);
  oft.oft_weight = rng.normal(blocks.param_rows, blocks.n_elements, 0.01);

  std::vector<MergeQualityRow> rows;
  for (const MergeAdapter* adapter : {&lora, &oft})
    for (int nbits : {1, 2, 3, 4, 8})
      for (int group_size : {32, 64, 128})
        for (int axis : {1, 0}) {
          const HqqConfig cfg = hqq_base_quantize_config(nbits, group_size, axis);
          const HqqLinear base =
              HqqLinear::quantize(w, std::nullopt, cfg, Dtype::Float32, HqqArithmetic::Float32Cpu);
          rows.push_back({adapter->kind, nbits, group_size, axis, measure_merge_quality(base, *adapter, x, cycles)});
        }
  return rows;
}

std::string merge_quality_markdown(const std::vector<MergeQualityRow>& rows, const std::string& title) {
  std::string s = "# " + title + "\n\n";
  const std::size_t cycles = rows.empty() ? 0 : rows.front().quality.drift.size();
  s += "Merge error: ||W_merged - W_ideal||_F / ||W_ideal||_F, where W_ideal is the quantized base with the adapter "
       "applied exactly (LoRA: W + s·B·A; OFT: W·Rᵀ) and W_merged is what PEFT's merge leaves (dequantize → apply → "
       "requantize with the same config, hqq's float32 CPU quantizer). Forward error: the largest output difference "
       "on 16 probe inputs, relative to the largest output. Adapter size: ||W_ideal − W||_F / ||W_ideal||_F; adapter "
       "lost: ||W_merged − W_ideal||_F / ||W_ideal − W||_F (1 means the merged layer is as far from the ideal as if the "
       "adapter had never been merged; above 1 the requantization itself adds error). Drift: ||W_k − W_0||_F / ||W_0||_F after k merge/unmerge "
       "cycles (each requantizes twice); codes changed: the share of codes that differ from the original after them.\n\n";
  s += "| adapter | nbits | group | axis | adapter size | merge error | adapter lost | forward error | drift after 1 |";
  if (cycles > 1) s += " drift after " + std::to_string(cycles) + " |";
  s += " codes changed after " + std::to_string(cycles) + " |\n|---|---|---|---|---|---|---|---|---|" +
       std::string(cycles > 1 ? "---|" : "") + "---|\n";
  for (const auto& r : rows) {
    char buf[256];
    std::snprintf(buf, sizeof buf, "| %s | %d | %d | %d | %.2e | %.2e | %.2f | %.2e | %.2e |", r.adapter.c_str(), r.nbits,
                  r.group_size, r.axis, r.quality.adapter_size, r.quality.merge_weight_error, r.quality.adapter_lost,
                  r.quality.merge_forward_error, r.quality.drift.front());
    s += buf;
    if (cycles > 1) {
      std::snprintf(buf, sizeof buf, " %.2e |", r.quality.drift.back());
      s += buf;
    }
    std::snprintf(buf, sizeof buf, " %.2f %% |\n", 100.0 * r.quality.codes_changed_after_cycles);
    s += buf;
  }
  return s;
}

}  // namespace qoracle

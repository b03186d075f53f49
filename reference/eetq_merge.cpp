#include "reference/eetq_merge.hpp"

namespace qoracle {

namespace {

template <class Layer>
EetqMergeExport merge_and_requantize(const Layer& layer, const std::vector<std::string>& names) {
  auto dense = layer.dequantized();  // the same adapters on the exact dequantized base
  const Matrix base = dense.base().weight();
  dense.merge(names);
  const Matrix merged = dense.base().weight();
  std::optional<Vector> bias = dense.base().bias();
  if (bias) bias = round_to(Dtype::Float16, *bias);  // a checkpoint stores the bias in fp16
  EetqLinear requantized(eetq_quantize(merged, Dtype::Float16), bias, EetqKernel::Exact);
  const Matrix stored = requantized.weight();
  const Matrix change = merged - base;
  const double change_norm = change.norm();
  return {std::move(requantized), merged, (stored - merged).cwiseAbs().maxCoeff(),
          merged.norm() > 0 ? (stored - merged).norm() / merged.norm() : 0.0,
          change_norm > 0 ? 1.0 - ((stored - base) - change).norm() / change_norm : 1.0};
}

}  // namespace

EetqMergeExport eetq_merge_to_dequantized(const OftLayer<EetqLinear>& layer, const std::vector<std::string>& names) {
  return merge_and_requantize(layer, names);
}

EetqMergeExport eetq_merge_to_dequantized(const LoraLayer<EetqLinear>& layer, const std::vector<std::string>& names) {
  return merge_and_requantize(layer, names);
}

}  // namespace qoracle

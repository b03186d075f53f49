#include "reference/oft_linear.hpp"


namespace qoracle {

void OftLinear::add_adapter(const std::string& name, const OftConfig& config, Matrix weight) {
  try {
    adapters_.add(name, OftAdapter(base_.in_features(), config, std::move(weight), convention_));
  } catch (const Error& e) {
    throw e.within("adapter '" + name + "'");
  }
}

Matrix OftLinear::rotation(const std::string& name) const {
  const Matrix r = adapters_.get(name).rotation_matrix();
  return dtype_ == Dtype::Float64 ? r : round_to(Dtype::Float32, r);
}

Matrix OftLinear::weight_after_forward(const std::string& name) const {
  const OftAdapter& a = adapters_.get(name);
  return convention_ == Convention::Peft ? a.effective_weight() : a.weight();
}

Matrix OftLinear::forward(const Matrix& x) const {
  require_input(x, base_.in_features());
  if (!adapters_.merged.empty()) return round_to(dtype_, base_.forward(x));
  Matrix z = x;
  for (const auto& name : adapters_.active()) z = z * rotation(name);
  // PEFT casts the rotated activations back to the input dtype before the base layer.
  Matrix y = round_to(dtype_, base_.forward(round_to(dtype_, z)));
  require_finite_result(y, "forward");
  return y;
}

Matrix OftLinear::forward_disabled(const Matrix& x) {
  if (!adapters_.merged.empty()) unmerge();
  return round_to(dtype_, base_.forward(x));
}

void OftLinear::merge(const std::vector<std::string>& names) {
  const auto todo = adapters_.to_merge(names);
  if (todo.empty()) return;
  const int n = base_.in_features();
  Matrix merged = base_.weight;
  if (convention_ == Convention::Math) {
    Matrix composed = Matrix::Identity(n, n);
    for (const auto& name : todo) composed = composed * rotation(name);
    merged = round_to(dtype_, Matrix(merged * composed.transpose()));
  } else {
    // Each merge is written back into the weight, so each rounds to the weight dtype.
    for (const auto& name : todo) merged = round_to(dtype_, Matrix(merged * rotation(name).transpose()));
  }
  require_finite_result(merged, "merge of adapters into base.weight (weights left unchanged)");
  base_.weight = std::move(merged);
  adapters_.merged.insert(adapters_.merged.end(), todo.begin(), todo.end());
}

void OftLinear::unmerge() {
  Matrix w = base_.weight;
  if (convention_ == Convention::Math) {
    // W' = W C^T with C = R_a1 R_a2 ... (merge order), so W^T = C^-1 W'^T.
    const int n = base_.in_features();
    Matrix composed = Matrix::Identity(n, n);
    for (const auto& name : adapters_.merged) composed = composed * rotation(name);
    w = round_to(dtype_, Matrix(composed.partialPivLu().solve(w.transpose()).transpose()));
  } else {
    // PEFT pops the last merged adapter first and casts R to float32 for torch.linalg.inv,
    // even for float64 weights. Inverting the float32 R in double and rounding the inverse to
    // float32 matches it to a few float32 ulps.
    for (auto it = adapters_.merged.rbegin(); it != adapters_.merged.rend(); ++it) {
      const Matrix r32 = round_to(Dtype::Float32, rotation(*it));
      const Matrix inv32 = round_to(Dtype::Float32, Matrix(r32.inverse()));
      w = round_to(dtype_, Matrix((inv32 * w.transpose()).transpose()));
    }
  }
  require_finite_result(w, "unmerge (weights left unchanged)");
  base_.weight = std::move(w);
  adapters_.merged.clear();
}

}  // namespace qoracle

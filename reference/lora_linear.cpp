#include "reference/lora_linear.hpp"

namespace qoracle {

void LoraLinear::add_adapter(const std::string& name, const LoraConfig& config, Matrix a, Matrix b,
                             std::optional<Vector> b_bias, std::optional<Vector> magnitude) {
  try {
    LoraAdapter adapter(base_.in_features(), base_.out_features(), config, std::move(a), std::move(b),
                        std::move(b_bias), std::move(magnitude));
    if (config.use_dora && !adapter.magnitude())
      adapter.set_magnitude((base_.weight + adapter.delta_weight()).rowwise().norm());
    adapters_.add(name, Entry{std::move(adapter), Vector()});
  } catch (const Error& e) {
    throw e.within("adapter '" + name + "'");
  }
}

Vector LoraLinear::dora_scale(const LoraAdapter& adapter, const Matrix& weight) const {
  const Vector norms = (weight + adapter.delta_weight()).rowwise().norm();
  return adapter.magnitude()->cwiseQuotient(norms);
}

Matrix LoraLinear::forward(const Matrix& x) const {
  require_input(x, base_.in_features());
  Matrix y = round_to(dtype_, base_.forward(x));
  if (!adapters_.merged.empty()) return y;
  const Matrix xw = x * base_.weight.transpose();
  for (const auto& name : adapters_.active()) {
    const LoraAdapter& a = adapters_.get(name).adapter;
    if (a.config().use_dora) {
      const Vector g = dora_scale(a, base_.weight);
      const Matrix lora = a.output(x);
      y += (xw + lora) * g.asDiagonal() - xw;
    } else {
      y += a.output(x);
    }
  }
  y = round_to(dtype_, y);
  require_finite_result(y, "forward");
  return y;
}

Matrix LoraLinear::forward_disabled(const Matrix& x) {
  if (!adapters_.merged.empty()) unmerge();
  return round_to(dtype_, base_.forward(x));
}

void LoraLinear::merge(const std::vector<std::string>& names) {
  const auto todo = adapters_.to_merge(names);
  Matrix w = base_.weight;
  std::optional<Vector> bias = base_.bias;
  std::vector<Vector> scales;
  for (const auto& name : todo) {
    const LoraAdapter& a = adapters_.get(name).adapter;
    if (a.config().use_dora) {
      const Vector g = dora_scale(a, w);
      w = round_to(dtype_, Matrix(g.asDiagonal() * (w + a.delta_weight())));
      scales.push_back(g);
    } else {
      w = round_to(dtype_, Matrix(w + a.delta_weight()));
      scales.emplace_back();
    }
    if (const auto db = a.delta_bias()) {
      if (!bias)
        throw Error("merge of adapter '" + name + "': lora_bias needs a base bias to merge into, and base.bias is absent");
      *bias = round_to(dtype_, Vector(*bias + *db));
    }
  }
  require_finite_result(w, "merge of adapters into base.weight (weights left unchanged)");
  if (bias) require_finite_result(*bias, "merge of lora_bias into base.bias (weights left unchanged)");
  base_.weight = std::move(w);
  base_.bias = std::move(bias);
  for (std::size_t i = 0; i < todo.size(); ++i) {
    adapters_.get(todo[i]).dora_scale_at_merge = scales[i];
    adapters_.merged.push_back(todo[i]);
  }
}

void LoraLinear::unmerge() {
  Matrix w = base_.weight;
  std::optional<Vector> bias = base_.bias;
  for (auto it = adapters_.merged.rbegin(); it != adapters_.merged.rend(); ++it) {
    const Entry& e = adapters_.get(*it);
    if (e.adapter.config().use_dora)
      w = round_to(dtype_, Matrix(e.dora_scale_at_merge.cwiseInverse().asDiagonal() * w - e.adapter.delta_weight()));
    else
      w = round_to(dtype_, Matrix(w - round_to(dtype_, e.adapter.delta_weight())));
    if (const auto db = e.adapter.delta_bias()) *bias = round_to(dtype_, Vector(*bias - *db));
  }
  base_.weight = std::move(w);
  base_.bias = std::move(bias);
  adapters_.merged.clear();
}

}  // namespace qoracle

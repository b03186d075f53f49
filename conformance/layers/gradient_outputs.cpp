#include "conformance/layers/gradient_outputs.hpp"

#include <algorithm>

#include "reference/error.hpp"

namespace qoracle::fixture_layers {

namespace {

std::string shape_text(const std::vector<std::int64_t>& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

const AdapterRecord* adapter_record(const FixtureCase& c, const std::string& name) {
  for (const auto& a : c.adapters)
    if (a.name == name) return &a;
  return nullptr;
}

bool is_lora(const AdapterRecord& a) { return a.tensors.count("lora_A") != 0; }

}  // namespace

Matrix grad_output_matrix(const FixtureCase& c, int out_features, bool leading_dimension_added) {
  if (!c.grad_output)
    throw Error("inputs/grad_output: missing; gradient outputs need the upstream gradient G, shaped like the forward");
  std::vector<std::int64_t> want = c.x.shape;
  want.back() = out_features;
  std::vector<std::int64_t> with_leading = want;
  with_leading.insert(with_leading.begin(), 1);
  const auto& got = c.grad_output->shape;
  if (got != want && !(leading_dimension_added && got == with_leading))
    throw Error("inputs/grad_output: expected shape " + shape_text(want) + " (x's shape with the last dimension " +
                std::to_string(out_features) + " = out_features), got " + c.grad_output->shape_string());
  return c.grad_output->as_matrix("inputs/grad_output");
}

DropoutNoise dropout_noise_of(const FixtureCase& c, const Matrix& x) {
  DropoutNoise noise;
  for (const auto& [name, t] : c.dropout_noise) {
    const std::string field = "inputs/dropout_noise/" + name;
    const AdapterRecord* a = adapter_record(c, name);
    if (!a) throw Error(field + ": the case has no adapter '" + name + "'");
    if (!is_lora(*a)) throw Error(field + ": adapter '" + name + "' is not a LoRA adapter; only lora_dropout draws noise");
    if (a->config.has("lora_dropout") && a->config.get_double("lora_dropout") == 0.0)
      throw Error(field + ": adapter '" + name + "' has lora_dropout = 0, so its forward draws no noise; expected no dataset");
    if (!c.training) throw Error(field + ": the case is in eval mode (training = 0), where dropout draws no noise");
    if (t.shape != c.x.shape)
      throw Error(field + ": expected shape " + shape_text(c.x.shape) + " (x's shape), got " + t.shape_string());
    noise[name] = t.as_matrix(field);
  }
  (void)x;
  return noise;
}

std::vector<std::string> gradient_parameters(const AdapterRecord& a) {
  if (!is_lora(a)) return {"weight"};
  std::vector<std::string> p{"lora_A", "lora_B"};
  if (a.tensors.count("lora_B_bias")) p.push_back("lora_B_bias");
  if (a.tensors.count("magnitude") || (a.config.has("use_dora") && a.config.get_bool("use_dora"))) p.push_back("magnitude");
  return p;
}

void gradient_outputs(const LayerGradients& grads, const FixtureCase& c, const std::vector<std::string>& names,
                      std::map<std::string, Tensor>& out) {
  for (const auto& name : names) {
    if (name == "grad_x") {
      out[name] = Tensor::from_matrix(grads.grad_x, Dtype::Float64, c.x.shape);
      continue;
    }
    if (name.rfind("grad/", 0) != 0) continue;
    const std::string rest = name.substr(5);
    const auto slash = rest.find('/');
    const std::string field = "expected/" + name;
    if (slash == std::string::npos) throw Error(field + ": expected grad/<adapter>/<parameter>");
    const std::string adapter = rest.substr(0, slash), param = rest.substr(slash + 1);
    const AdapterRecord* a = adapter_record(c, adapter);
    if (!a) {
      std::string known;
      for (const auto& r : c.adapters) known += (known.empty() ? "" : ", ") + r.name;
      throw Error(field + ": the case has no adapter '" + adapter + "'; its adapters: " + (known.empty() ? "(none)" : known));
    }
    const auto params = gradient_parameters(*a);
    if (std::find(params.begin(), params.end(), param) == params.end()) {
      std::string known;
      for (const auto& p : params) known += (known.empty() ? "" : ", ") + p;
      throw Error(field + ": unknown parameter '" + param + "' for adapter '" + adapter + "'; expected one of " + known);
    }
    const auto it = grads.adapters.find(adapter);
    if (it == grads.adapters.end()) {  // not active: no part in the forward, PEFT's grad is None
      const Tensor& like = a->tensors.count(param) ? a->tensors.at(param) : a->tensors.at("lora_A");
      Tensor zeros = like;
      std::fill(zeros.values.begin(), zeros.values.end(), 0.0);
      zeros.logical_dtype = Dtype::Float64;
      zeros.stored_type.clear();
      zeros.checksum_verified = false;
      out[name] = zeros;
      continue;
    }
    const AdapterGradients& g = it->second;
    if (param == "weight" && g.weight) out[name] = Tensor::from_matrix(*g.weight, Dtype::Float64);
    else if (param == "lora_A" && g.lora_A) out[name] = Tensor::from_matrix(*g.lora_A, Dtype::Float64);
    else if (param == "lora_B" && g.lora_B) out[name] = Tensor::from_matrix(*g.lora_B, Dtype::Float64);
    else if (param == "lora_B_bias" && g.lora_B_bias) out[name] = Tensor::from_vector(*g.lora_B_bias, Dtype::Float64);
    else if (param == "magnitude" && g.magnitude) out[name] = Tensor::from_vector(*g.magnitude, Dtype::Float64);
    else throw Error(field + ": adapter '" + adapter + "' has no trainable '" + param + "' in this layer");
  }
}

}  // namespace qoracle::fixture_layers

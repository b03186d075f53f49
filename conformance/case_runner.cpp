#include "conformance/case_runner.hpp"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <regex>
#include <variant>
#include <type_traits>

#include "conformance/tolerances.hpp"
#include "reference/error.hpp"
#include "reference/peft_release.hpp"

namespace qoracle {

namespace {

// Integer data (codes, packed words, checkpoint bytes) as the reader hands it: exact doubles. A
// value that is not an integer in [lo, hi] cannot come from an integer dataset of that type, and
// converting it would be undefined behaviour, so it is refused by name.
std::vector<std::int64_t> integer_values(const Tensor& t, std::int64_t lo, std::int64_t hi, const std::string& field) {
  std::vector<std::int64_t> out;
  out.reserve(t.values.size());
  for (double v : t.values) {
    if (!(v >= static_cast<double>(lo) && v <= static_cast<double>(hi)) || v != std::trunc(v))
      throw Error(field + ": value " + std::to_string(v) + " is not an integer in [" + std::to_string(lo) + ", " +
                  std::to_string(hi) + "]");
    out.push_back(static_cast<std::int64_t>(v));
  }
  return out;
}

OftConfig oft_config_from(const Attributes& a) {
  OftConfig c;
  c.r = static_cast<int>(a.get_int("r"));
  c.oft_block_size = static_cast<int>(a.get_int("oft_block_size"));
  c.coft = a.get_bool("coft");
  c.eps = a.get_double("eps");
  c.block_share = a.get_bool("block_share");
  c.use_cayley_neumann = a.get_bool("use_cayley_neumann");
  c.num_cayley_neumann_terms = static_cast<int>(a.get_int("num_cayley_neumann_terms"));
  return c;
}

LoraConfig lora_config_from(const Attributes& a) {
  LoraConfig c;
  c.r = static_cast<int>(a.get_int("r"));
  c.lora_alpha = a.get_double("lora_alpha");
  c.use_rslora = a.get_bool("use_rslora");
  c.lora_bias = a.get_bool("lora_bias");
  c.use_dora = a.get_bool("use_dora");
  return c;
}

const Tensor& tensor_of(const AdapterRecord& a, const std::string& name) {
  auto it = a.tensors.find(name);
  if (it == a.tensors.end()) throw Error("adapters/" + a.name + ": missing dataset '" + name + "'");
  return it->second;
}

std::optional<Vector> optional_vector(const AdapterRecord& a, const std::string& name) {
  auto it = a.tensors.find(name);
  if (it == a.tensors.end()) return std::nullopt;
  return it->second.as_vector("adapters/" + a.name + "/" + name);
}

std::optional<Vector> base_bias(const FixtureCase& c) {
  if (const Tensor* b = c.base.find("bias")) return b->as_vector("base/bias");
  return std::nullopt;
}

DenseLinear base_from(const FixtureCase& c) {
  const Tensor& weight = c.base.tensor("weight");
  if (weight.shape.size() != 2)
    throw Error("base/weight: expected rank 2 (out, in), got shape " + weight.shape_string());
  return DenseLinear(weight.as_matrix("base/weight"), base_bias(c));
}

HqqLinear hqq_base_from(const FixtureCase& c) {
  const Attributes& a = c.base.config;
  HqqConfig cfg;
  cfg.nbits = static_cast<int>(a.get_int("nbits"));
  cfg.group_size = static_cast<int>(a.get_int("group_size"));
  cfg.axis = static_cast<int>(a.get_int("axis"));
  cfg.round_zero = a.get_bool("round_zero");
  cfg.optimize = a.get_bool("optimize", true);
  const int out = static_cast<int>(a.get_int("out_features")), in = static_cast<int>(a.get_int("in_features"));
  const Dtype compute = parse_dtype(a.get_string("compute_dtype"));
  HqqArithmetic arith;
  try {
    arith = parse_hqq_arithmetic(a.get_string("quantizer_arithmetic", "float64"));
  } catch (const Error& e) {
    throw e.within("base");
  }
  const HqqGrouping g = hqq_grouping(cfg, out, in);

  const Tensor& wq = c.base.tensor("W_q");
  const std::string want = cfg.nbits == 3 ? "int32" : "uint8";
  if (wq.stored_type != want)
    throw Error("base/W_q: expected " + want + " words for " + hqq_packing_name(cfg.nbits) + ", got " +
                (wq.stored_type.empty() ? "floating-point data" : wq.stored_type));
  if (wq.shape.size() != 2) throw Error("base/W_q: expected rank 2, got shape " + wq.shape_string());
  HqqPacked packed;
  packed.rows = static_cast<int>(wq.shape[0]);
  packed.cols = static_cast<int>(wq.shape[1]);
  packed.word_bits = cfg.nbits == 3 ? 32 : 8;
  const bool int32_words = cfg.nbits == 3;
  for (std::int64_t v : integer_values(wq, int32_words ? INT32_MIN : 0, int32_words ? INT32_MAX : UINT8_MAX, "base/W_q"))
    packed.words.push_back(static_cast<std::uint32_t>(v));  // int32 words keep their bits
  auto per_group = [&](const char* name) {
    const Tensor& t = c.base.tensor(name);
    if (t.element_count() != g.groups)
      throw Error(std::string("base/") + name + ": expected " + std::to_string(g.groups) + " values (one per group), got shape " +
                  t.shape_string());
    return Vector(Eigen::Map<const Vector>(t.values.data(), g.groups));
  };
  return HqqLinear::from_packed(cfg, out, in, packed, per_group("scale"), per_group("zero"), base_bias(c), compute, arith);
}

// dtype: the compute dtype the layer is built for (float64: the oracle, which runs the exact math).
AqlmLinear aqlm_base_from(const FixtureCase& c, Dtype dtype) {
  const Attributes& a = c.base.config;
  AqlmConfig cfg;
  cfg.in_group_size = static_cast<int>(a.get_int("in_group_size"));
  cfg.out_group_size = static_cast<int>(a.get_int("out_group_size"));
  cfg.num_codebooks = static_cast<int>(a.get_int("num_codebooks"));
  cfg.nbits_per_codebook = static_cast<int>(a.get_int("nbits_per_codebook"));
  const int out = static_cast<int>(a.get_int("out_features")), in = static_cast<int>(a.get_int("in_features"));
  const Tensor& codes = c.base.tensor("codes");
  if (codes.stored_type.empty()) throw Error("base/codes: expected integer codes (int8/int16, signed offset), got floats");
  aqlm_geometry(cfg, out, in);  // validates nbits_per_codebook before the shifts below use it
  std::vector<int> indices;
  indices.reserve(codes.values.size());
  for (std::int64_t stored : integer_values(codes, INT32_MIN, INT32_MAX, "base/codes")) {
    const std::int64_t half = std::int64_t{1} << (cfg.nbits_per_codebook - 1);
    if (stored < -half || stored >= 2 * half)
      throw Error("base/codes: stored value " + std::to_string(stored) + " cannot be a " +
                  std::to_string(cfg.nbits_per_codebook) + "-bit code");
    indices.push_back(aqlm_code_index(stored, cfg.nbits_per_codebook));
  }
  const Tensor& scales = c.base.tensor("scales");
  return AqlmLinear(cfg, out, in, std::move(indices), c.base.tensor("codebooks").values,
                    Eigen::Map<const Vector>(scales.values.data(), static_cast<Eigen::Index>(scales.values.size())),
                    base_bias(c), parse_dtype(a.get_string("dtype")),
                    dtype == Dtype::Float64 ? AqlmKernel::Exact : parse_aqlm_kernel(a.get_string("kernel")));
}

EetqLinear eetq_base_from(const FixtureCase& c, Dtype dtype) {
  const Attributes& a = c.base.config;
  const int out = static_cast<int>(a.get_int("out_features")), in = static_cast<int>(a.get_int("in_features"));
  const Tensor& weight = c.base.tensor("weight");
  if (weight.shape != std::vector<std::int64_t>{in, out})
    throw Error("base/weight: expected shape [" + std::to_string(in) + ", " + std::to_string(out) +
                "] ([in, out], as EETQ stores it), got " + weight.shape_string());
  return eetq_from_checkpoint_tensors(weight, c.base.tensor("weight_scales"), base_bias(c),
                                      parse_eetq_layout(a.get_string("layout")),
                                      dtype == Dtype::Float64 ? EetqKernel::Exact : parse_eetq_kernel(a.get_string("kernel")),
                                      "base");
}

Tensor codes_tensor(const CodeMatrix& codes) {
  Tensor t = Tensor::from_matrix(codes.cast<double>(), Dtype::Float64);
  t.stored_type = "int32";
  return t;
}

// What a base layer is after a merge or an unmerge: <prefix>_weight (dequantized for quantized
// bases), <prefix>_bias, and for HQQ its codes, scale and zero.
void base_outputs(const DenseLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
  if (base.bias()) out[prefix + "_bias"] = Tensor::from_vector(*base.bias(), Dtype::Float64);
}

void base_outputs(const HqqLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
  if (base.bias()) out[prefix + "_bias"] = Tensor::from_vector(*base.bias(), Dtype::Float64);
  out[prefix + "_codes"] = codes_tensor(base.quantized().codes);
  out[prefix + "_scale"] = Tensor::from_vector(base.quantized().scale, Dtype::Float64);
  out[prefix + "_zero"] = Tensor::from_vector(base.quantized().zero, Dtype::Float64);
}

void base_outputs(const AqlmLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
}

void base_outputs(const EetqLinear& base, const std::string& prefix, std::map<std::string, Tensor>& out) {
  out[prefix + "_weight"] = Tensor::from_matrix(base.weight(), Dtype::Float64);
}

// The quantizer run on base/weight_float with the base's own config and arithmetic.
template <class Base>
void quantizer_outputs(const Base&, const FixtureCase&, std::map<std::string, Tensor>&) {
  throw Error("expected/quantized_*: this base layer has no quantizer in qoracle");
}

void quantizer_outputs(const HqqLinear& base, const FixtureCase& c, std::map<std::string, Tensor>& out) {
  const Matrix w = c.base.tensor("weight_float").as_matrix("base/weight_float");
  const HqqQuantized q = hqq_quantize(w, base.quantized().config, base.requantize_arithmetic());
  out["quantized_codes"] = codes_tensor(q.codes);
  out["quantized_scale"] = Tensor::from_vector(q.scale, Dtype::Float64);  // as the quantizer returns them,
  out["quantized_zero"] = Tensor::from_vector(q.zero, Dtype::Float64);    // before HQQLinear's cast
}

void quantizer_outputs(const EetqLinear&, const FixtureCase& c, std::map<std::string, Tensor>& out) {
  const Tensor& w = c.base.tensor("weight_float");
  const EetqQuantized q = eetq_quantize(w.as_matrix("base/weight_float"), w.logical_dtype);
  out["quantized_codes"] = codes_tensor(q.q);
  out["quantized_scale"] = Tensor::from_vector(q.scales, w.logical_dtype);
}

// Codes as the base layer holds them after decoding its stored format (EETQ: the checkpoint's bytes).
template <class Base>
Tensor decoded_codes(const Base&) {
  throw Error("expected/decoded_codes: only EETQ layers decode a stored byte layout");
}
Tensor decoded_codes(const EetqLinear& base) { return codes_tensor(base.quantized().q); }

// Outputs shaped like x with the last dimension replaced by out_features.
Tensor activation_tensor(const Matrix& y, const FixtureCase& c) {
  std::vector<std::int64_t> shape = c.x.shape;
  shape.back() = y.cols();
  return Tensor::from_matrix(y, Dtype::Float64, shape);
}

// LoRA layers whose PEFT forward returns [1, out] for a 1-D input (DoRA's broadcast).
template <class Layer>
constexpr bool may_add_leading_dimension = requires(const Layer& l) { l.forward_adds_leading_dimension(); };

template <class Layer>
Tensor forward_tensor(const Layer& layer, const Matrix& y, const FixtureCase& c) {
  Tensor t = activation_tensor(y, c);
  if constexpr (may_add_leading_dimension<Layer>)
    if (c.x.shape.size() == 1 && layer.forward_adds_leading_dimension()) t.shape.insert(t.shape.begin(), 1);
  return t;
}

// OFT layers report their parameter after a forward (COFT may rewrite it); LoRA has no such state.
template <class Layer>
constexpr bool has_parameter_after_forward = requires(const Layer& l) { l.weight_after_forward(std::string()); };

template <class Layer>
std::map<std::string, Tensor> evaluate_layer(Layer layer, const FixtureCase& c, const std::vector<std::string>& outputs) {
  if (c.x.shape.empty()) throw Error("inputs/x: expected rank >= 1, got a scalar");
  const Matrix x = c.x.as_matrix("inputs/x");
  std::map<std::string, Tensor> out;
  bool wants_merge = false;
  for (const auto& name : outputs) {
    if (name == "forward") {
      out[name] = forward_tensor(layer, layer.forward(x), c);
    } else if (name == "forward_disabled") {
      Layer copy = layer;
      out[name] = activation_tensor(copy.forward_disabled(x), c);
    } else if (name.rfind("delta_weight/", 0) == 0) {
      out[name] = Tensor::from_matrix(layer.delta_weight(name.substr(13)), Dtype::Float64);
    } else if (name.rfind("weight_after_forward/", 0) == 0 && has_parameter_after_forward<Layer>) {
      if constexpr (has_parameter_after_forward<Layer>)
        out[name] = Tensor::from_matrix(layer.weight_after_forward(name.substr(21)), Dtype::Float64);
    } else if (name == "dequantized_weight") {
      out[name] = Tensor::from_matrix(layer.base().weight(), Dtype::Float64);
    } else if (name == "decoded_codes") {
      out[name] = decoded_codes(layer.base());
    } else if (name.rfind("quantized_", 0) == 0) {
      quantizer_outputs(layer.base(), c, out);
    } else if (name.rfind("merged_", 0) == 0 || name.rfind("unmerged_", 0) == 0 || name == "forward_merged") {
      wants_merge = true;
    } else {
      throw Error("expected/" + name +
                  ": unknown output; known: forward, forward_disabled, delta_weight/<adapter>, "
                  "weight_after_forward/<adapter> (OFT), dequantized_weight, decoded_codes (EETQ), quantized_{codes,scale,zero}, "
                  "merged_{weight,bias,codes,scale,zero}, forward_merged, unmerged_{weight,bias,codes,scale,zero}");
    }
  }
  if (wants_merge) {
    layer.merge(c.merge_adapters.empty() ? c.active_adapters : c.merge_adapters);
    base_outputs(layer.base(), "merged", out);
    out["forward_merged"] = forward_tensor(layer, layer.forward(x), c);
    layer.unmerge();
    base_outputs(layer.base(), "unmerged", out);
  }
  std::map<std::string, Tensor> requested;
  for (const auto& name : outputs) {
    auto it = out.find(name);
    if (it == out.end()) throw Error("expected/" + name + ": this layer has no such output (no base bias?)");
    requested[name] = it->second;
  }
  return requested;
}

template <class Base>
OftLayer<Base> oft_layer_from(Base base, const FixtureCase& c, Dtype dtype) {
  OftLayer<Base> layer(std::move(base), c.convention);
  layer.set_compute_dtype(dtype);
  for (const AdapterRecord& a : c.adapters) {
    try {
      layer.add_adapter(a.name, oft_config_from(a.config), tensor_of(a, "weight").as_matrix("weight"));
    } catch (const Error& e) {
      throw e.within("adapters/" + a.name);
    }
  }
  layer.set_active_adapters(c.active_adapters);
  return layer;
}

// The PEFT release that produced a case: producer_versions' "peft" entry, or the producer
// "peft-X.Y.Z[+...]"; nullopt when the producer is not PEFT. A PEFT case that names no release (or
// two different ones) is refused: the PEFT convention's rules depend on it (peft_release.hpp).
std::optional<PeftRelease> producing_peft_release(const FixtureCase& c) {
  if (c.producer.rfind("peft", 0) != 0) return std::nullopt;
  std::optional<PeftRelease> from_versions, from_producer;
  std::smatch m;
  static const std::regex peft_entry(R"re("peft"\s*:\s*"([^"]*)")re");
  if (std::regex_search(c.producer_versions, m, peft_entry)) {
    from_versions = parse_peft_release(m[1].str());
    if (!from_versions)
      throw Error("producer_versions: the \"peft\" entry '" + m[1].str() + "' is not a release; expected X.Y.Z");
  }
  if (c.producer.rfind("peft-", 0) == 0) from_producer = parse_peft_release(c.producer.substr(5));
  if (from_versions && from_producer && from_versions->text() != from_producer->text())
    throw Error("producer '" + c.producer + "' and producer_versions' \"peft\": \"" + from_versions->text() +
                "\" name different PEFT releases; expected one");
  if (from_versions) return from_versions;
  if (from_producer) return from_producer;
  throw Error("producer '" + c.producer + "' names no PEFT release, and producer_versions ('" + c.producer_versions +
              "') has no \"peft\" entry; expected producer 'peft-X.Y.Z' or producer_versions {\"peft\": \"X.Y.Z\"} "
              "(the PEFT convention's rules depend on the release)");
}

// The release rules a PEFT-convention case follows: its producer's release, or the newest
// rules for cases qoracle wrote itself.
PeftReleaseRules release_rules(const FixtureCase& c) {
  if (const auto release = producing_peft_release(c)) return peft_release_rules(*release);
  return peft_release_rules(PeftRelease{999, 0, 0});
}

template <class Base>
LoraLayer<Base> lora_layer_from(Base base, const FixtureCase& c, Dtype dtype) {
  LoraLayer<Base> layer(std::move(base), c.convention);
  layer.set_compute_dtype(dtype);
  if (c.convention == Convention::Peft)
    layer.set_dora_norms_on_merged_weight(release_rules(c).dora_norms_on_merged_weight);
  for (const AdapterRecord& a : c.adapters) {
    try {
      const Tensor& lora_a = tensor_of(a, "lora_A");
      layer.add_adapter(a.name, lora_config_from(a.config), lora_a.as_matrix("lora_A"),
                        tensor_of(a, "lora_B").as_matrix("lora_B"), optional_vector(a, "lora_B_bias"),
                        optional_vector(a, "magnitude"));
      // The adapter's recorded dtype (lora_A's logical_dtype, fixtures/SCHEMA.md).
      layer.set_adapter_dtype(a.name, lora_a.logical_dtype);
    } catch (const Error& e) {
      throw e.within("adapters/" + a.name);
    }
  }
  layer.set_active_adapters(c.active_adapters);
  return layer;
}

using LayerBuilder = std::function<FixtureLayer(const FixtureCase&, Dtype)>;

// A layer kind with no adapter (a base's quantizer and forward alone) is a LoRA layer without adapters.
const std::map<std::string, LayerBuilder>& layer_builders() {
  static const std::map<std::string, LayerBuilder> table{
      {"oft/linear", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(base_from(c), c, d)); }},
      {"lora/linear", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(base_from(c), c, d)); }},
      {"oft/hqq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(hqq_base_from(c), c, d)); }},
      {"lora/hqq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(hqq_base_from(c), c, d)); }},
      {"hqq/quantize", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(hqq_base_from(c), c, d)); }},
      {"oft/aqlm", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(aqlm_base_from(c, d), c, d)); }},
      {"lora/aqlm", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(aqlm_base_from(c, d), c, d)); }},
      // e.g. made by qoracle's quantizer and run by the real library
      {"aqlm/quantized", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(aqlm_base_from(c, d), c, d)); }},
      {"oft/eetq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(oft_layer_from(eetq_base_from(c, d), c, d)); }},
      {"lora/eetq", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(eetq_base_from(c, d), c, d)); }},
      {"eetq/quantize", [](const FixtureCase& c, Dtype d) { return FixtureLayer(lora_layer_from(eetq_base_from(c, d), c, d)); }},
  };
  return table;
}

}  // namespace

EetqLinear eetq_from_checkpoint_tensors(const Tensor& weight, const Tensor& scales, std::optional<Vector> bias,
                                        EetqLayout layout, EetqKernel kernel, const std::string& where) {
  if (weight.stored_type != "int8" || weight.shape.size() != 2)
    throw Error(where + "/weight: expected the checkpoint's int8 [in, out] bytes, got " +
                (weight.stored_type.empty() ? std::string("floating-point data") : weight.stored_type) + " of shape " +
                weight.shape_string());
  if (scales.logical_dtype != Dtype::Float16)
    throw Error(where + "/weight_scales: expected float16 (EETQ's scale dtype), got " + dtype_name(scales.logical_dtype));
  std::vector<std::int8_t> bytes;
  for (std::int64_t v : integer_values(weight, INT8_MIN, INT8_MAX, where + "/weight")) bytes.push_back(static_cast<std::int8_t>(v));
  try {
    return EetqLinear::from_checkpoint(bytes, static_cast<int>(weight.shape[0]), static_cast<int>(weight.shape[1]), layout,
                                       scales.as_vector(where + "/weight_scales"), std::move(bias), kernel);
  } catch (const Error& e) {
    throw e.within(where);
  }
}

std::vector<std::string> known_layer_kinds() {
  std::vector<std::string> kinds;
  for (const auto& [k, _] : layer_builders()) kinds.push_back(k);
  return kinds;
}

FixtureLayer fixture_layer(const FixtureCase& c, Dtype dtype) {
  auto it = layer_builders().find(c.layer_kind);
  if (it == layer_builders().end()) {
    std::string known;
    for (const auto& k : known_layer_kinds()) known += (known.empty() ? "" : ", ") + k;
    throw Error(c.where() + ": layer_kind '" + c.layer_kind + "' is unknown; expected one of " + known);
  }
  try {
    return it->second(c, dtype);
  } catch (const Error& e) {
    throw e.within(c.where());
  }
}

std::map<std::string, Tensor> evaluate_case(const FixtureCase& c, const std::vector<std::string>& outputs) {
  FixtureLayer layer = fixture_layer(c, c.dtype);
  try {
    return std::visit([&](auto& l) { return evaluate_layer(std::move(l), c, outputs); }, layer);
  } catch (const Error& e) {
    throw e.within(c.where());
  }
}

const char* status_name(CheckStatus s) {
  switch (s) {
    case CheckStatus::Pass: return "PASS";
    case CheckStatus::Fail: return "FAIL";
    case CheckStatus::Error: return "ERROR";
  }
  return "?";
}

std::string row_detail(const CheckRow& row) {
  if (!row.error.empty()) return row.error;
  return row.referee ? row.referee->message() : row.comparison.message();
}

CheckRow case_row(const FixtureCase& c) {
  CheckRow row;
  row.file = c.file;
  row.case_name = c.name;
  row.layer_kind = c.layer_kind;
  row.dtype = dtype_name(c.dtype);
  row.convention = convention_name(c.convention);
  row.producer = c.producer;
  return row;
}

std::vector<CheckRow> check_case(const FixtureCase& c) {
  CheckRow proto = case_row(c);
  std::vector<std::string> names;
  for (const auto& e : c.expected) names.push_back(e.name);
  std::map<std::string, Tensor> actual, oracle;
  const bool low_precision = c.dtype != Dtype::Float64;
  try {
    actual = evaluate_case(c, names);
    if (low_precision) {
      FixtureCase exact = c;  // the same (already rounded) inputs, no intermediate rounding
      exact.dtype = Dtype::Float64;
      oracle = evaluate_case(exact, names);
    }
  } catch (const Error& e) {
    proto.error = e.what();
    return {proto};
  }
  std::vector<CheckRow> rows;
  for (const auto& e : c.expected) {
    CheckRow row = proto;
    row.output = e.name;
    row.comparison = compare(e.value, actual.at(e.name), e.tolerance);
    row.status = row.comparison.passed ? CheckStatus::Pass : CheckStatus::Fail;
    rows.push_back(row);
    const bool quantizer_state = e.name.ends_with("_codes") || e.name.ends_with("_scale") || e.name.ends_with("_zero");
    if (low_precision && !quantizer_state) {
      // The fp64 referee: our emulation may be at most k times as far from the float64 truth as
      // the producer's own result in this dtype (TOLERANCES.md).
      CheckRow ref = proto;
      ref.output = e.name + "@fp64-referee";
      ref.referee = judge_against_oracle(oracle.at(e.name), e.value, actual.at(e.name), oracle_factor(e.value.logical_dtype),
                                         e.value.logical_dtype);
      ref.status = ref.referee->passed ? CheckStatus::Pass : CheckStatus::Fail;
      rows.push_back(ref);
    }
  }
  return rows;
}

}  // namespace qoracle

#include "case_spec.hpp"

#include <nanobind/stl/string.h>

#include <algorithm>
#include <set>

#include "arrays.hpp"
#include "conformance/tolerances.hpp"
#include "reference/error.hpp"

namespace qoracle::python {

namespace {

const std::set<std::string>& spec_keys() {
  static const std::set<std::string> keys{"name",           "layer_kind",  "dtype",          "convention",
                                          "seed",           "producer",    "producer_versions", "description",
                                          "active_adapters", "merge_adapters", "base",         "adapters",
                                          "x",              "expected",    "tolerances",     "logical_dtypes",
                                          "file",           "schema_version", "training",  "grad_output",
                                          "dropout_noise",  "peft_grad_none"};
  return keys;
}

std::string joined(const std::set<std::string>& items) {
  std::string s;
  for (const auto& i : items) s += (s.empty() ? "" : ", ") + i;
  return s;
}

nb::dict as_dict(nb::handle obj, const std::string& field) {
  if (!nb::isinstance<nb::dict>(obj))
    throw Error(field + ": expected a dict, got " + std::string(nb::type_name(obj.type()).c_str()));
  return nb::borrow<nb::dict>(obj);
}

std::string as_string(nb::handle obj, const std::string& field) {
  if (!nb::isinstance<nb::str>(obj))
    throw Error(field + ": expected a string, got " + std::string(nb::type_name(obj.type()).c_str()));
  return nb::cast<std::string>(obj);
}

std::int64_t as_int(nb::handle obj, const std::string& field) {
  if (nb::isinstance<nb::int_>(obj) && !nb::isinstance<nb::bool_>(obj)) return nb::cast<std::int64_t>(obj);
  throw Error(field + ": expected an integer, got " + std::string(nb::type_name(obj.type()).c_str()));
}

// A list of names, or one comma-separated string (as the file stores it).
std::vector<std::string> as_names(nb::handle obj, const std::string& field) {
  if (nb::isinstance<nb::str>(obj)) return split_list(nb::cast<std::string>(obj));
  if (!nb::isinstance<nb::list>(obj) && !nb::isinstance<nb::tuple>(obj))
    throw Error(field + ": expected a list of adapter names, got " + std::string(nb::type_name(obj.type()).c_str()));
  std::vector<std::string> names;
  for (nb::handle item : obj) names.push_back(as_string(item, field));
  return names;
}

// A Python scalar as an HDF5 attribute: bools become 0/1 (the schema's booleans), numpy scalars
// and 0-d arrays their Python value.
AttrValue attribute_from(nb::handle obj, const std::string& field) {
  if (nb::isinstance<nb::str>(obj)) return nb::cast<std::string>(obj);
  if (nb::isinstance<nb::bool_>(obj)) return std::int64_t{nb::cast<bool>(obj) ? 1 : 0};
  if (nb::isinstance<nb::int_>(obj)) return nb::cast<std::int64_t>(obj);
  if (nb::isinstance<nb::float_>(obj)) return nb::cast<double>(obj);
  const Tensor t = tensor_from_object(obj, field);  // a 0-d array
  if (t.values.size() != 1) throw Error(field + ": expected a scalar, got shape " + t.shape_string());
  if (t.stored_type.empty()) return t.values[0];
  return static_cast<std::int64_t>(t.values[0]);
}

nb::object attribute_to(const AttrValue& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return nb::int_(*i);
  if (const auto* d = std::get_if<double>(&v)) return nb::float_(*d);
  return nb::str(std::get<std::string>(v).c_str());
}

// A group of the spec (base, one adapter): scalars are its attributes, arrays its datasets.
void read_group(nb::handle obj, const std::string& field, Attributes& config, std::map<std::string, Tensor>& tensors) {
  config.where = field;
  for (auto [key, value] : as_dict(obj, field)) {
    const std::string name = as_string(key, field + " key");
    if (name.empty() || name.find('/') != std::string::npos)
      throw Error(field + ": name '" + name + "' expected non-empty and without '/'");
    if (is_scalar(value))
      config.values[name] = attribute_from(value, field + "/" + name);
    else
      tensors[name] = tensor_from_object(value, field + "/" + name);
  }
}

Tolerance tolerance_from(nb::handle obj, const std::string& field) {
  Tolerance t;
  for (auto [key, value] : as_dict(obj, field)) {
    const std::string name = as_string(key, field + " key");
    if (!nb::isinstance<nb::float_>(value) && !(nb::isinstance<nb::int_>(value) && !nb::isinstance<nb::bool_>(value)))
      throw Error(field + "/" + name + ": expected a number");
    const double v = nb::cast<double>(value);
    if (!(v >= 0)) throw Error(field + "/" + name + ": expected >= 0, got " + std::to_string(v));
    if (name == "atol") t.atol = v;
    else if (name == "rtol") t.rtol = v;
    else if (name == "max_mismatch_fraction") t.max_mismatch_fraction = v;
    else throw Error(field + ": unknown key '" + name + "'; expected atol, rtol, max_mismatch_fraction");
  }
  return t;
}

// The tensor a logical_dtypes path names: "x", "base/<name>", "adapters/<adapter>/<name>", "expected/<output>".
Tensor* tensor_at(FixtureCase& c, const std::string& path) {
  if (path == "x" || path == "inputs/x") return &c.x;
  if (path == "grad_output" || path == "inputs/grad_output") return c.grad_output ? &*c.grad_output : nullptr;
  for (const char* prefix : {"dropout_noise/", "inputs/dropout_noise/"})
    if (path.starts_with(prefix)) {
      auto it = c.dropout_noise.find(path.substr(std::string(prefix).size()));
      return it == c.dropout_noise.end() ? nullptr : &it->second;
    }
  if (path.starts_with("base/")) {
    auto it = c.base.tensors.find(path.substr(5));
    return it == c.base.tensors.end() ? nullptr : &it->second;
  }
  if (path.starts_with("adapters/")) {
    const std::string rest = path.substr(9);
    const auto slash = rest.find('/');
    for (AdapterRecord& a : c.adapters)
      if (slash != std::string::npos && a.name == rest.substr(0, slash)) {
        auto it = a.tensors.find(rest.substr(slash + 1));
        return it == a.tensors.end() ? nullptr : &it->second;
      }
    return nullptr;
  }
  if (path.starts_with("expected/"))
    for (ExpectedOutput& e : c.expected)
      if (e.name == path.substr(9)) return &e.value;
  return nullptr;
}

template <class F>
void each_float_tensor(const FixtureCase& c, F f) {
  auto visit = [&](const std::string& path, const Tensor& t) {
    if (t.stored_type.empty()) f(path, t);
  };
  visit("x", c.x);
  if (c.grad_output) visit("grad_output", *c.grad_output);
  for (const auto& [name, t] : c.dropout_noise) visit("dropout_noise/" + name, t);
  for (const auto& [name, t] : c.base.tensors) visit("base/" + name, t);
  for (const AdapterRecord& a : c.adapters)
    for (const auto& [name, t] : a.tensors) visit("adapters/" + a.name + "/" + name, t);
  for (const ExpectedOutput& e : c.expected) visit("expected/" + e.name, e.value);
}

// Gradient cases (fixtures/SCHEMA.md, Gradients): training (the module mode of the forward),
// grad_output (G = dL/dy, [..., out]) and dropout_noise {adapter: nu [..., in]}.
void read_gradient_inputs(const nb::dict& spec, const std::string& where, FixtureCase& c) {
  auto has = [&](const char* key) { return spec.contains(key) && !spec[key].is_none(); };
  if (has("training")) {
    const nb::handle v = spec["training"];
    if (nb::isinstance<nb::bool_>(v)) c.training = nb::cast<bool>(v);
    else {
      const std::int64_t i = as_int(v, where + ": training");
      if (i != 0 && i != 1) throw Error(where + ": training: expected 0 or 1 (or a bool), got " + std::to_string(i));
      c.training = i == 1;
    }
  }
  if (has("grad_output")) c.grad_output = tensor_from_object(spec["grad_output"], where + ": grad_output");
  if (has("dropout_noise"))
    for (auto [key, value] : as_dict(spec["dropout_noise"], where + ": dropout_noise")) {
      const std::string adapter = as_string(key, where + ": dropout_noise key");
      c.dropout_noise[adapter] = tensor_from_object(value, where + ": dropout_noise/" + adapter);
    }
}

}  // namespace

FixtureCase case_from_spec(nb::handle obj) {
  const nb::dict spec = as_dict(obj, "spec");
  for (auto [key, value] : spec) {
    const std::string name = as_string(key, "spec key");
    if (!spec_keys().count(name)) throw Error("spec: unknown key '" + name + "'; expected one of " + joined(spec_keys()));
  }
  auto has = [&](const char* key) { return spec.contains(key) && !spec[key].is_none(); };
  auto string_or = [&](const char* key, const std::string& fallback) {
    return has(key) ? as_string(spec[key], std::string("spec: ") + key) : fallback;
  };
  FixtureCase c;
  c.name = string_or("name", "case");
  c.file = string_or("file", "<python>");
  const std::string where = "spec '" + c.name + "'";
  if (!has("layer_kind")) throw Error(where + ": missing key 'layer_kind' (e.g. \"lora/linear\")");
  c.layer_kind = as_string(spec["layer_kind"], where + ": layer_kind");
  try {
    c.dtype = parse_dtype(string_or("dtype", "float64"));
    c.convention = parse_convention(string_or("convention", "math"));
  } catch (const Error& e) {
    throw e.within(where);
  }
  c.seed = has("seed") ? as_int(spec["seed"], where + ": seed") : 0;
  c.schema_version = has("schema_version") ? as_int(spec["schema_version"], where + ": schema_version") : kSchemaVersion;
  c.producer = string_or("producer", "python");
  c.producer_versions = string_or("producer_versions", "{}");
  c.description = string_or("description", "");

  if (!has("base")) throw Error(where + ": missing key 'base' (the base layer's tensors and configuration)");
  read_group(spec["base"], where + ": base", c.base.config, c.base.tensors);
  if (!has("x")) throw Error(where + ": missing key 'x' (the input, [..., in_features])");
  c.x = tensor_from_object(spec["x"], where + ": x");
  if (has("adapters"))
    for (auto [key, value] : as_dict(spec["adapters"], where + ": adapters")) {
      AdapterRecord a;
      a.name = as_string(key, where + ": adapters key");
      if (a.name.empty() || a.name.find_first_of(",/") != std::string::npos)
        throw Error(where + ": adapter name '" + a.name + "' expected non-empty and without ',' or '/'");
      read_group(value, where + ": adapters/" + a.name, a.config, a.tensors);
      c.adapters.push_back(std::move(a));
    }
  if (has("active_adapters")) {
    c.active_adapters = as_names(spec["active_adapters"], where + ": active_adapters");
  } else {
    for (const AdapterRecord& a : c.adapters) c.active_adapters.push_back(a.name);
  }
  if (has("merge_adapters")) c.merge_adapters = as_names(spec["merge_adapters"], where + ": merge_adapters");

  read_gradient_inputs(spec, where, c);
  if (has("expected"))
    for (auto [key, value] : as_dict(spec["expected"], where + ": expected")) {
      ExpectedOutput e;
      e.name = as_string(key, where + ": expected key");
      e.value = tensor_from_object(value, where + ": expected/" + e.name);
      c.expected.push_back(std::move(e));
    }
  if (has("peft_grad_none"))
    for (const std::string& name : as_names(spec["peft_grad_none"], where + ": peft_grad_none")) {
      auto it = std::find_if(c.expected.begin(), c.expected.end(), [&](const ExpectedOutput& e) { return e.name == name; });
      if (it == c.expected.end()) throw Error(where + ": peft_grad_none/" + name + ": no such expected output");
      it->peft_grad_none = true;
    }
  if (has("logical_dtypes"))
    for (auto [key, value] : as_dict(spec["logical_dtypes"], where + ": logical_dtypes")) {
      const std::string path = as_string(key, where + ": logical_dtypes key");
      Tensor* t = tensor_at(c, path);
      if (!t || !t->stored_type.empty())
        throw Error(where + ": logical_dtypes/" + path + ": expected the path of a float tensor of the spec (x, base/<name>, "
                    "adapters/<adapter>/<name>, expected/<output>)");
      try {
        t->logical_dtype = parse_dtype(as_string(value, where + ": logical_dtypes/" + path));
      } catch (const Error& e) {
        throw e.within(where + ": logical_dtypes/" + path);
      }
    }
  const nb::dict tolerances = has("tolerances") ? as_dict(spec["tolerances"], where + ": tolerances") : nb::dict();
  for (auto [key, value] : tolerances) {
    const std::string name = as_string(key, where + ": tolerances key");
    if (std::none_of(c.expected.begin(), c.expected.end(), [&](const ExpectedOutput& e) { return e.name == name; }))
      throw Error(where + ": tolerances/" + name + ": no such expected output");
  }
  const int group_size = static_cast<int>(c.base.config.get_int("group_size", 0));
  for (ExpectedOutput& e : c.expected) {
    if (tolerances.contains(e.name.c_str())) {
      e.tolerance = tolerance_from(tolerances[e.name.c_str()], where + ": tolerances/" + e.name);
    } else {
      const Dtype value_dtype = e.value.stored_type.empty() ? e.value.logical_dtype : c.dtype;
      e.tolerance = tolerance_for_output(c.layer_kind, value_dtype, e.name, c.convention, group_size);
    }
  }
  return c;
}

nb::dict group_dict(const Attributes& config, const std::map<std::string, Tensor>& tensors) {
  nb::dict d;
  for (const auto& [key, value] : config.values) d[key.c_str()] = attribute_to(value);
  for (const auto& [key, t] : tensors) d[key.c_str()] = array_from_tensor(t);
  return d;
}

nb::dict adapters_dict(const FixtureCase& c) {
  nb::dict d;
  for (const AdapterRecord& a : c.adapters) d[a.name.c_str()] = group_dict(a.config, a.tensors);
  return d;
}

nb::dict expected_dict(const FixtureCase& c) {
  nb::dict d;
  for (const ExpectedOutput& e : c.expected) d[e.name.c_str()] = array_from_tensor(e.value);
  return d;
}

nb::dict dropout_noise_dict(const FixtureCase& c) {
  nb::dict d;
  for (const auto& [name, t] : c.dropout_noise) d[name.c_str()] = array_from_tensor(t);
  return d;
}

nb::list peft_grad_none_list(const FixtureCase& c) {
  nb::list l;
  for (const ExpectedOutput& e : c.expected)
    if (e.peft_grad_none) l.append(e.name);
  return l;
}

nb::dict tolerances_dict(const FixtureCase& c) {
  nb::dict d;
  for (const ExpectedOutput& e : c.expected) {
    nb::dict t;
    t["atol"] = e.tolerance.atol;
    t["rtol"] = e.tolerance.rtol;
    t["max_mismatch_fraction"] = e.tolerance.max_mismatch_fraction;
    d[e.name.c_str()] = t;
  }
  return d;
}

nb::dict logical_dtypes_dict(const FixtureCase& c) {
  nb::dict d;
  each_float_tensor(c, [&](const std::string& path, const Tensor& t) { d[path.c_str()] = dtype_name(t.logical_dtype); });
  return d;
}

nb::dict case_to_spec(const FixtureCase& c) {
  nb::dict d;
  d["name"] = c.name;
  d["file"] = c.file;
  d["schema_version"] = c.schema_version;
  d["layer_kind"] = c.layer_kind;
  d["dtype"] = dtype_name(c.dtype);
  d["convention"] = convention_name(c.convention);
  d["seed"] = c.seed;
  d["producer"] = c.producer;
  d["producer_versions"] = c.producer_versions;
  d["description"] = c.description;
  nb::list active, merge;
  for (const auto& a : c.active_adapters) active.append(a);
  for (const auto& a : c.merge_adapters) merge.append(a);
  d["active_adapters"] = active;
  d["merge_adapters"] = merge;
  d["base"] = group_dict(c.base.config, c.base.tensors);
  d["adapters"] = adapters_dict(c);
  d["x"] = array_from_tensor(c.x);
  d["expected"] = expected_dict(c);
  d["training"] = c.training;
  if (c.grad_output) d["grad_output"] = array_from_tensor(*c.grad_output);
  d["dropout_noise"] = dropout_noise_dict(c);
  d["peft_grad_none"] = peft_grad_none_list(c);
  d["tolerances"] = tolerances_dict(c);
  d["logical_dtypes"] = logical_dtypes_dict(c);
  return d;
}

}  // namespace qoracle::python

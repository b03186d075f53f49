#include "conformance/case_table.hpp"

#include <cmath>
#include <sstream>

#include "conformance/case_runner.hpp"
#include "reference/seeded_random.hpp"
#include "conformance/tolerances.hpp"
#include "reference/error.hpp"
#include "reference/skew.hpp"

namespace qoracle {

namespace {

std::string number(double v) {
  std::ostringstream s;
  s << v;
  std::string t = s.str();
  for (char& ch : t)
    if (ch == '.') ch = 'p';
    else if (ch == '-') ch = 'm';
  return t;
}

std::string adapter_token(const AdapterSpec& a) {
  std::ostringstream s;
  if (a.oft) {
    const OftConfig& c = *a.oft;
    s << (c.r ? "r" + std::to_string(c.r) : "b" + std::to_string(c.oft_block_size));
    s << (c.use_cayley_neumann ? "_neumann" + std::to_string(c.num_cayley_neumann_terms) : "_exact");
    if (c.coft) s << "_coft" << number(c.eps);
    if (c.block_share) s << "_share";
  } else {
    const LoraConfig& c = *a.lora;
    s << "r" << c.r << "_alpha" << number(c.lora_alpha);
    if (c.use_rslora) s << "_rslora";
    if (c.lora_bias) s << "_lorabias";
    if (c.use_dora) s << "_dora";
  }
  return s.str();
}

AdapterSpec oft(const std::string& name, int r, int b, bool neumann, int terms, bool coft = false, double eps = 6e-5,
                bool share = false) {
  OftConfig c;
  c.r = r;
  c.oft_block_size = b;
  c.use_cayley_neumann = neumann;
  c.num_cayley_neumann_terms = terms;
  c.coft = coft;
  c.eps = eps;
  c.block_share = share;
  return AdapterSpec{name, c, std::nullopt, 0.1};
}

AdapterSpec lora(const std::string& name, int r, double alpha, bool rslora = false, bool lora_bias = false,
                 bool dora = false) {
  return AdapterSpec{name, std::nullopt, LoraConfig{r, alpha, rslora, lora_bias, dora}, 0.1};
}

CaseSpec make(const std::string& kind, int in, int out, std::vector<std::int64_t> lead, bool bias,
              std::vector<AdapterSpec> adapters, std::uint64_t seed) {
  return CaseSpec{kind, in, out, std::move(lead), bias, std::move(adapters), Convention::Math, seed};
}

// A row with the gradient outputs (and LoRA dropout noise with p > 0).
CaseSpec grad(CaseSpec spec, double lora_dropout = 0.0, Convention convention = Convention::Math) {
  spec.gradients = true;
  spec.lora_dropout = lora_dropout;
  spec.convention = convention;
  return spec;
}

}  // namespace

std::string CaseSpec::name() const {
  std::ostringstream s;
  s << (layer_kind == "oft/linear" ? "oft_linear" : layer_kind == "lora/linear" ? "lora_linear" : "layer");
  s << "_in" << in_features << "_out" << out_features << "_x";
  for (std::size_t i = 0; i < leading_dims.size(); ++i) s << (i ? "x" : "") << leading_dims[i];
  if (leading_dims.empty()) s << "vec";
  s << (bias ? "_bias" : "_nobias");
  for (const auto& a : adapters) s << "__" << a.name << "_" << adapter_token(a);
  if (gradients) s << "__grad_train" << (lora_dropout > 0 ? "_dropout" + number(lora_dropout) : "");
  s << "__" << convention_name(convention) << "_seed" << seed;
  return s.str();
}

std::vector<CaseSpec> standard_cases() {
  const std::string O = "oft/linear", L = "lora/linear";
  std::vector<CaseSpec> oft_cases = {
      make(O, 16, 12, {2, 3}, true, {oft("default", 0, 4, false, 5)}, 101),
      make(O, 16, 12, {2, 3}, true, {oft("default", 0, 4, true, 5)}, 102),
      make(O, 16, 16, {4}, false, {oft("default", 4, 0, true, 3)}, 103),
      make(O, 16, 16, {4}, false, {oft("default", 4, 0, true, 4)}, 103),
      make(O, 16, 16, {4}, false, {oft("default", 4, 0, true, 1)}, 103),
      make(O, 16, 16, {4}, false, {oft("default", 4, 0, true, 2)}, 103),
      make(O, 10, 7, {3}, false, {oft("default", 0, 4, false, 5)}, 104),      // b 4 -> 5
      make(O, 12, 9, {2, 2}, true, {oft("default", 0, 5, true, 7)}, 105),     // b 5 -> 4
      make(O, 7, 5, {2}, true, {oft("default", 0, 3, false, 5)}, 106),        // prime: b -> 1, no parameters
      make(O, 16, 8, {3}, true, {oft("default", 0, 4, false, 5, true, 1e-2)}, 107),
      make(O, 16, 8, {3}, true, {oft("default", 0, 4, false, 5, false, 6e-5, true)}, 108),
      make(O, 16, 8, {3}, true, {oft("default", 0, 4, true, 5, true, 5e-2, true)}, 109),
      make(O, 8, 6, {2, 3}, true, {oft("first", 0, 2, false, 5), oft("second", 0, 4, true, 5)}, 110),
      make(O, 6, 3, {}, true, {oft("default", 0, 3, false, 5)}, 111),         // x is a single vector
      make(O, 32, 24, {1}, true, {oft("default", 0, 8, false, 5)}, 112),
      // The training path (both conventions): exact, Neumann (n = 5; n = 1 whose PEFT gradient is
      // None), COFT (T4), block_share, two adapters.
      grad(make(O, 16, 12, {2, 3}, true, {oft("default", 0, 4, false, 5)}, 121)),
      grad(make(O, 16, 12, {2, 3}, true, {oft("default", 0, 4, true, 5)}, 122)),
      grad(make(O, 16, 12, {3}, false, {oft("default", 4, 0, true, 1)}, 123)),
      grad(make(O, 16, 8, {3}, true, {oft("default", 0, 4, false, 5, true, 1e-2)}, 124)),
      grad(make(O, 16, 8, {3}, true, {oft("default", 0, 4, true, 5, false, 6e-5, true)}, 125)),
      grad(make(O, 8, 6, {2, 3}, true, {oft("first", 0, 2, false, 5), oft("second", 0, 4, true, 5)}, 126)),
  };
  std::vector<CaseSpec> cases;
  for (const auto& c : oft_cases) {
    cases.push_back(c);
    CaseSpec p = c;
    p.convention = Convention::Peft;
    cases.push_back(p);
  }
  const std::vector<CaseSpec> lora_cases = {
      make(L, 16, 12, {2, 3}, true, {lora("default", 4, 8)}, 201),
      make(L, 16, 12, {2, 3}, true, {lora("default", 4, 8, true)}, 202),
      make(L, 16, 12, {3}, true, {lora("default", 4, 16, false, true)}, 203),
      make(L, 12, 10, {2, 2}, false, {lora("first", 2, 4), lora("second", 3, 6, true)}, 204),
      make(L, 16, 12, {3}, true, {lora("default", 4, 8, false, false, true)}, 205),
      make(L, 5, 3, {1}, false, {lora("default", 1, 1)}, 206),
      // The training path: LoRA, rsLoRA + lora_bias with dropout, DoRA in both conventions (T1)
      // with and without dropout (T5), two adapters with dropout.
      grad(make(L, 16, 12, {2, 3}, true, {lora("default", 4, 8)}, 221)),
      grad(make(L, 16, 12, {2, 3}, true, {lora("default", 4, 8, true, true)}, 222), 0.3),
      grad(make(L, 16, 12, {3}, true, {lora("default", 4, 8, false, false, true)}, 223)),
      grad(make(L, 16, 12, {3}, true, {lora("default", 4, 8, false, false, true)}, 223), 0.0, Convention::Peft),
      grad(make(L, 16, 12, {3}, true, {lora("default", 4, 8, false, false, true)}, 224), 0.25),
      grad(make(L, 16, 12, {3}, true, {lora("default", 4, 8, false, false, true)}, 224), 0.25, Convention::Peft),
      grad(make(L, 12, 10, {2, 2}, true, {lora("first", 2, 4), lora("second", 3, 6, false, false, true)}, 225), 0.1,
           Convention::Peft),
  };
  cases.insert(cases.end(), lora_cases.begin(), lora_cases.end());
  return cases;
}

FixtureCase make_reference_case(const CaseSpec& spec) {
  SeededRandom rng(spec.seed);
  FixtureCase c;
  c.name = spec.name();
  c.layer_kind = spec.layer_kind;
  c.dtype = Dtype::Float64;
  c.seed = static_cast<std::int64_t>(spec.seed);
  c.producer = "qoracle-reference";
  c.producer_versions = std::string("{\"qoracle\": \"") + QORACLE_VERSION + "\", \"eigen\": \"" +
                        std::to_string(EIGEN_WORLD_VERSION) + "." + std::to_string(EIGEN_MAJOR_VERSION) + "." +
                        std::to_string(EIGEN_MINOR_VERSION) + "\"}";
  c.convention = spec.convention;
  c.description = "reference-produced by qoracle generate from the case table";

  const double w_bound = 1.0 / std::sqrt(static_cast<double>(spec.in_features));  // nn.Linear's init range
  c.base.tensors["weight"] = Tensor::from_matrix(rng.uniform(spec.out_features, spec.in_features, -w_bound, w_bound), Dtype::Float64);
  if (spec.bias) c.base.tensors["bias"] = Tensor::from_matrix(rng.uniform(1, spec.out_features, -w_bound, w_bound), Dtype::Float64,
                                                   {spec.out_features});
  std::int64_t tokens = 1;
  for (auto d : spec.leading_dims) tokens *= d;
  std::vector<std::int64_t> x_shape = spec.leading_dims;
  x_shape.push_back(spec.in_features);
  c.x = Tensor::from_matrix(rng.normal(tokens, spec.in_features, 1.0), Dtype::Float64, x_shape);

  for (const AdapterSpec& a : spec.adapters) {
    AdapterRecord rec;
    rec.name = a.name;
    rec.config.where = "adapters/" + a.name;
    if (a.oft) {
      const OftBlocks blocks = resolve_oft_blocks(spec.in_features, *a.oft);
      rec.config.values = {{"r", std::int64_t{a.oft->r}},
                           {"oft_block_size", std::int64_t{a.oft->oft_block_size}},
                           {"coft", std::int64_t{a.oft->coft}},
                           {"eps", a.oft->eps},
                           {"block_share", std::int64_t{a.oft->block_share}},
                           {"use_cayley_neumann", std::int64_t{a.oft->use_cayley_neumann}},
                           {"num_cayley_neumann_terms", std::int64_t{a.oft->num_cayley_neumann_terms}}};
      rec.tensors["weight"] = Tensor::from_matrix(rng.normal(blocks.param_rows, blocks.n_elements, a.param_std), Dtype::Float64);
    } else {
      const LoraConfig& l = *a.lora;
      rec.config.values = {{"r", std::int64_t{l.r}},
                           {"lora_alpha", l.lora_alpha},
                           {"use_rslora", std::int64_t{l.use_rslora}},
                           {"lora_bias", std::int64_t{l.lora_bias}},
                           {"use_dora", std::int64_t{l.use_dora}}};
      rec.tensors["lora_A"] = Tensor::from_matrix(rng.normal(l.r, spec.in_features, a.param_std), Dtype::Float64);
      rec.tensors["lora_B"] = Tensor::from_matrix(rng.normal(spec.out_features, l.r, a.param_std), Dtype::Float64);
      if (l.use_dora) {
        // A trained magnitude differs from the initial row norms; perturb them so g != 1.
        const LoraAdapter plain(spec.in_features, spec.out_features, LoraConfig{l.r, l.lora_alpha, l.use_rslora, false, false},
                                rec.tensors["lora_A"].as_matrix("lora_A"), rec.tensors["lora_B"].as_matrix("lora_B"));
        const Matrix w = c.base.tensor("weight").as_matrix("base/weight") + plain.delta_weight();
        const Vector noise = rng.normal(spec.out_features, 1, 0.1).col(0);
        const Vector m = w.rowwise().norm().cwiseProduct((Vector::Ones(spec.out_features) + noise));
        rec.tensors["magnitude"] = Tensor::from_vector(m, Dtype::Float64);
      }
      if (l.lora_bias)
        rec.tensors["lora_B_bias"] = Tensor::from_matrix(rng.normal(1, spec.out_features, a.param_std), Dtype::Float64,
                                                         {spec.out_features});
    }
    c.active_adapters.push_back(a.name);
    c.adapters.push_back(std::move(rec));
  }

  if (spec.gradients) {
    // Drawn after everything else, so the rows' other inputs are those of the same row without.
    std::vector<std::int64_t> g_shape = x_shape;
    g_shape.back() = spec.out_features;
    c.grad_output = Tensor::from_matrix(rng.normal(tokens, spec.out_features, 1.0), Dtype::Float64, g_shape);
    c.training = true;
    for (auto& rec : c.adapters) {
      if (!rec.tensors.count("lora_A")) continue;
      rec.config.values["lora_dropout"] = spec.lora_dropout;
      if (spec.lora_dropout <= 0) continue;
      // torch's dropout: bernoulli(1 - p), then divided by 1 - p (spec training.md §7).
      Matrix nu(tokens, spec.in_features);
      for (Eigen::Index i = 0; i < nu.size(); ++i) nu(i) = rng.uniform() < spec.lora_dropout ? 0.0 : 1.0 / (1.0 - spec.lora_dropout);
      c.dropout_noise[rec.name] = Tensor::from_matrix(nu, Dtype::Float64, x_shape);
    }
  }

  std::vector<std::string> outputs = {"forward", "forward_disabled", "merged_weight", "forward_merged",
                                      "unmerged_weight"};
  if (spec.bias) outputs.insert(outputs.end(), {"merged_bias", "unmerged_bias"});
  for (const auto& a : spec.adapters) outputs.push_back("delta_weight/" + a.name);
  if (spec.gradients) {
    outputs.push_back("grad_x");
    for (const auto& rec : c.adapters) {
      for (const auto& [param, t] : rec.tensors) outputs.push_back("grad/" + rec.name + "/" + param);
      if (rec.config.has("coft") && rec.config.get_bool("coft")) outputs.push_back("weight_after_forward/" + rec.name);
    }
  }
  const auto values = evaluate_case(c, outputs);
  for (const auto& name : outputs)
    c.expected.push_back(ExpectedOutput{name, values.at(name), tolerance_for(c.dtype, name, c.convention)});
  // PEFT's weight.grad is None with one Neumann term (R = I): zeros, marked (SCHEMA.md, Gradients).
  for (auto& e : c.expected)
    for (const AdapterSpec& a : spec.adapters)
      if (a.oft && a.oft->use_cayley_neumann && a.oft->num_cayley_neumann_terms <= 1 && c.convention == Convention::Peft &&
          e.name == "grad/" + a.name + "/weight")
        e.peft_grad_none = true;
  return c;
}

}  // namespace qoracle

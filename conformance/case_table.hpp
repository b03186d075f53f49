#pragma once
// The one declarative case table: layer kind x adapter config x shapes x convention x seed.
// It drives the parameterized property tests and `qoracle generate` (the reference-produced
// fixtures). A case's name states all its parameters, so a failure names itself.
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "fixtures/format/fixture_case.hpp"
#include "reference/lora_adapter.hpp"
#include "reference/oft_config.hpp"

namespace qoracle {

struct AdapterSpec {
  std::string name;
  std::optional<OftConfig> oft;    // exactly one of oft, lora
  std::optional<LoraConfig> lora;
  double param_std = 0.1;          // N(0, std^2) parameters, like PEFT's init_weights=False
};

struct CaseSpec {
  std::string layer_kind;                 // "oft/linear" | "lora/linear"
  int in_features = 0;
  int out_features = 0;
  std::vector<std::int64_t> leading_dims; // x is leading_dims + [in]; e.g. {2, 3} = batch 2, seq 3
  bool bias = true;
  std::vector<AdapterSpec> adapters;      // all active, in this order
  Convention convention = Convention::Math;
  std::uint64_t seed = 0;
  // The training path (fixtures/SCHEMA.md, Gradients): a seeded G, training = 1, grad_x and every
  // adapter's parameter gradients; LoRA adapters draw dropout noise with this p when it is > 0.
  bool gradients = false;
  double lora_dropout = 0.0;

  std::string name() const;
};

std::vector<CaseSpec> standard_cases();

// gtest prints parameters with PrintTo: show the case name, not the bytes.
inline void PrintTo(const CaseSpec& spec, std::ostream* os) { *os << spec.name(); }

// Seeded inputs for the spec, with every output the layer kind has, computed by the reference
// and tolerances from tolerances.hpp. producer = "qoracle-reference".
FixtureCase make_reference_case(const CaseSpec& spec);

}  // namespace qoracle

#pragma once
// The adapters of a fixture case (adapters/<name>/...) read into the reference's OFT and LoRA
// layers, with the PEFT release rules the producing release follows.
#include <optional>
#include <string>

#include "fixtures/format/fixture_case.hpp"
#include "reference/error.hpp"
#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"
#include "reference/peft_release.hpp"

namespace qoracle::fixture_layers {

OftConfig oft_config_from(const Attributes& a);
LoraConfig lora_config_from(const Attributes& a);

// adapters/<a>/<name>; throws Error naming the dataset when missing (callers add "adapters/<a>").
const Tensor& tensor_of(const AdapterRecord& a, const std::string& name);
std::optional<Vector> optional_vector(const AdapterRecord& a, const std::string& name);

// The PEFT release that produced a case: producer_versions' "peft" entry, or the producer
// "peft-X.Y.Z[+...]"; nullopt when the producer is not PEFT. A PEFT case that names no release (or
// two different ones) is refused: the PEFT convention's rules depend on it (peft_release.hpp).
std::optional<PeftRelease> producing_peft_release(const FixtureCase& c);

// The release rules a PEFT-convention case follows: its producer's release, or the newest
// rules for cases qoracle wrote itself.
PeftReleaseRules release_rules(const FixtureCase& c);
// Empty, or (a case from a PEFT release newer than the newest verified one) whose rules judged it.
std::string release_note(const FixtureCase& c);

template <class Base>
OftLayer<Base> oft_layer_from(Base base, const FixtureCase& c, Dtype dtype) {
  OftLayer<Base> layer(std::move(base), c.convention);
  layer.set_compute_dtype(dtype);
  if (c.convention == Convention::Peft)
    layer.set_unmerge_multiplies_by_rotation(release_rules(c).oft_unmerge_multiplies_by_rotation);
  if (c.convention == Convention::Peft) layer.set_peft_neumann_series(release_rules(c).oft_neumann_series);
  for (const AdapterRecord& a : c.adapters) {
    try {
      const Tensor& weight = tensor_of(a, "weight");
      layer.add_adapter(a.name, oft_config_from(a.config), weight.as_matrix("weight"));
      // The adapter's recorded dtype (weight's logical_dtype): PEFT rounds R to it.
      layer.set_adapter_dtype(a.name, weight.logical_dtype);
    } catch (const Error& e) {
      throw e.within("adapters/" + a.name);
    }
  }
  layer.set_active_adapters(c.active_adapters);
  return layer;
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

}  // namespace qoracle::fixture_layers

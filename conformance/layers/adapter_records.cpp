#include "conformance/layers/adapter_records.hpp"

#include <regex>

namespace qoracle::fixture_layers {

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

PeftReleaseRules release_rules(const FixtureCase& c) {
  if (const auto release = producing_peft_release(c)) return peft_release_rules(*release);
  return peft_release_rules(PeftRelease{999, 0, 0});
}

}  // namespace qoracle::fixture_layers

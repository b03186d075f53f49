#include "conformance/layers/adapter_records.hpp"

#include <cstdint>
#include <regex>

namespace qoracle::fixture_layers {

namespace {

// An integer attribute that must fit an int: 2**40 is refused with its value, not wrapped to 0.
int int_attr(const Attributes& a, const std::string& name) {
  const std::int64_t v = a.get_int(name);
  if (v < INT32_MIN || v > INT32_MAX)
    throw Error(name + ": expected an integer in [" + std::to_string(INT32_MIN) + ", " + std::to_string(INT32_MAX) + "], got " +
                std::to_string(v));
  return static_cast<int>(v);
}

}  // namespace

OftConfig oft_config_from(const Attributes& a) {
  OftConfig c;
  c.r = int_attr(a, "r");
  c.oft_block_size = int_attr(a, "oft_block_size");
  c.coft = a.get_bool("coft");
  c.eps = a.get_double("eps");
  c.block_share = a.get_bool("block_share");
  c.use_cayley_neumann = a.get_bool("use_cayley_neumann");
  c.num_cayley_neumann_terms = int_attr(a, "num_cayley_neumann_terms");
  return c;
}

LoraConfig lora_config_from(const Attributes& a) {
  LoraConfig c;
  c.r = int_attr(a, "r");
  c.lora_alpha = a.get_double("lora_alpha");
  c.use_rslora = a.get_bool("use_rslora");
  c.lora_bias = a.get_bool("lora_bias");
  c.use_dora = a.get_bool("use_dora");
  return c;
}

const Tensor& tensor_of(const AdapterRecord& a, const std::string& name) {
  auto it = a.tensors.find(name);
  if (it == a.tensors.end()) throw Error("missing dataset '" + name + "'");
  return it->second;
}

std::optional<Vector> optional_vector(const AdapterRecord& a, const std::string& name) {
  auto it = a.tensors.find(name);
  if (it == a.tensors.end()) return std::nullopt;
  return it->second.as_vector(name);
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
  if (const auto release = producing_peft_release(c)) {
    // Older releases had another OFT and no OFT on quantized layers: no rule here describes them.
    if (*release < kOldestPeftRelease)
      throw Error("producer: PEFT " + release->text() + " predates qoracle's release table, which starts at " +
                  kOldestPeftRelease.text() + "; expected a PEFT release >= " + kOldestPeftRelease.text());
    return peft_release_rules(*release);
  }
  return peft_release_rules(PeftRelease{999, 0, 0});
}

std::string release_note(const FixtureCase& c) {
  const auto release = producing_peft_release(c);
  if (!release || !(kNewestVerifiedPeftRelease < *release)) return {};
  const std::string newest = kNewestVerifiedPeftRelease.text();
  return "PEFT " + release->text() + " is newer than " + newest + ", the newest release qoracle has verified: judged by " +
         newest + "'s rules";
}

}  // namespace qoracle::fixture_layers

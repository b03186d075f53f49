#pragma once
// The fuzzer's inputs: a mode byte, then what that mode reads (fuzz_fixtures.cpp).
#include <string>

namespace qoracle::fuzz {

enum class Mode : unsigned char { FixtureFile = 0, SerializedCase = 1, Checkpoint = 2 };
inline constexpr unsigned kModes = 3;
inline constexpr const char* kCheckpointPrefix = "model.layers.0.self_attn.q_proj.";

// The seed corpus, from the committed fixtures: for each layer kind its smallest case as a sealed
// file, the same unsealed (write_unsealed_copy: damage there reaches the values), and serialized;
// the EETQ checkpoint sealed and unsealed. Returns an exit status.
int write_seed_corpus(const std::string& dir);

}  // namespace qoracle::fuzz

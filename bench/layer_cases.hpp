#pragma once
// The one table of benchmark cases, shared by the Google Benchmark targets (reference and LibTorch
// baseline), the instruction-count workload and the LibTorch third-opinion test. A case is a
// wrapped layer (adapter x base format) at a size and a token count; its layer is built from a
// fixed seed, so every consumer measures the same weights.
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "reference/lora_linear.hpp"
#include "reference/oft_linear.hpp"

namespace qoracle::bench {

enum class BaseFormat { Linear, Hqq, Aqlm, Eetq };
enum class AdapterKind { Oft, Lora };

const char* base_format_name(BaseFormat f);   // "linear", "hqq", "aqlm", "eetq"
const char* adapter_kind_name(AdapterKind a);  // "oft", "lora"

// A layer's size. Square layers are named "n1024"; others "o11008_i4096" (out, in).
struct LayerShape {
  int out = 0, in = 0;
  LayerShape(int features) : out(features), in(features) {}  // square (implicit: most cases are)
  LayerShape(int out_features, int in_features) : out(out_features), in(in_features) {}
  std::string name() const;
  auto operator<=>(const LayerShape&) const = default;
};

struct LayerCase {
  AdapterKind adapter;
  BaseFormat base;
  LayerShape shape;
  int tokens;
  std::string name() const;  // e.g. "oft/hqq/n1024/t8"
  std::string test_name() const;  // the same with '_' for '/', for gtest
};
// How gtest prints a case (found by argument-dependent lookup).
void PrintTo(const LayerCase& c, std::ostream* os);

// Every forward case: {OFT, LoRA} x {linear, HQQ, AQLM, EETQ} x {256, 1024, 4096} x {1, 8, 128},
// and 4096 at 1024 tokens.
// The CPU benchmarks (reference, LibTorch) run these.
std::vector<LayerCase> forward_cases();
// The GPU's cases: forward_cases, plus LLaMA-7B's MLP shapes (out 11008 x in 4096 and 4096 x
// 11008) at 1, 8, 128 and 2048 tokens, and 4096 x 4096 at 2048 tokens; sizes a float64 CPU
// reference would take minutes per iteration on.
std::vector<LayerCase> device_forward_cases();

// Merge paths at 256 and 1024 (linear and EETQ also 4096), where the layer has one: linear and HQQ merge then unmerge (HQQ requantizes both
// times); EETQ's export (dequantize, merge, requantize). AQLM has no merge (PEFT raises).
struct MergeCase {
  AdapterKind adapter;
  BaseFormat base;
  int features;
  std::string name() const;  // e.g. "lora/hqq/n1024"
};
std::vector<MergeCase> merge_cases();

// Cayley block sizes: 8 to 128.
std::vector<int> cayley_block_sizes();
// The skew parameters of a Cayley case with block size b, b(b-1)/2 values ~ N(0, (0.2/b)^2):
// small enough that rho(S) < 1 and every Neumann series converges.
Vector cayley_params(int block_size);

// The layer formats as benchmarked (one representative configuration each, as users deploy them):
//   linear: float32-representable weights and bias;
//   HQQ:    4-bit, group 64, axis 1 (hqq's common config), random codes, float32 scale and zero;
//   AQLM:   1x16 (one 2^16-entry codebook, in_group 8), random codes, fp16 codebook and scales;
//   EETQ:   int8 per channel from EETQ's quantizer on a random weight, fp16 scales.
// OFT: block size 32, Cayley-Neumann with 5 terms (PEFT's defaults), parameters N(0, 0.01^2).
// LoRA: r 16, alpha 32. Adapters are float32-representable, as PEFT keeps them.
constexpr int kOftBlockSize = 32;
constexpr int kLoraRank = 16;
constexpr std::uint64_t kSeed = 20261123;

// Built once per (format, shape) and kept: HQQ, AQLM and EETQ construction at 4096 is seconds.
template <class Base>
const Base& base_layer(LayerShape shape);
OftConfig bench_oft_config();  // block size 32, Neumann with 5 terms
template <class Base>
OftLayer<Base> oft_layer(LayerShape shape, Convention convention = Convention::Peft, OftConfig config = bench_oft_config());
template <class Base>
LoraLayer<Base> lora_layer(LayerShape shape);
// The activations of a case: N(0, 1), float32-representable, tokens x in_features.
Matrix activations(int tokens, int in_features);

// Calls f.template operator()<Base>() with the base type of a format.
template <class F>
decltype(auto) with_base(BaseFormat format, F&& f) {
  switch (format) {
    case BaseFormat::Linear: return f.template operator()<DenseLinear>();
    case BaseFormat::Hqq: return f.template operator()<HqqLinear>();
    case BaseFormat::Aqlm: return f.template operator()<AqlmLinear>();
    case BaseFormat::Eetq: break;
  }
  return f.template operator()<EetqLinear>();
}

// Bytes of weight storage a forward reads (quantized codes, scales, codebooks; adapters apart).
template <class Base>
double weight_bytes(const Base& base);

}  // namespace qoracle::bench

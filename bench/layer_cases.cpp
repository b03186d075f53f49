#include "bench/layer_cases.hpp"

#include <map>
#include <mutex>

#include "reference/dtype.hpp"
#include "reference/eetq_format.hpp"
#include "reference/hqq_format.hpp"
#include "reference/seeded_random.hpp"
#include "reference/skew.hpp"

namespace qoracle::bench {

const char* base_format_name(BaseFormat f) {
  switch (f) {
    case BaseFormat::Linear: return "linear";
    case BaseFormat::Hqq: return "hqq";
    case BaseFormat::Aqlm: return "aqlm";
    case BaseFormat::Eetq: break;
  }
  return "eetq";
}

const char* adapter_kind_name(AdapterKind a) { return a == AdapterKind::Oft ? "oft" : "lora"; }

std::string LayerShape::name() const {
  return out == in ? "n" + std::to_string(in) : "o" + std::to_string(out) + "_i" + std::to_string(in);
}

std::string LayerCase::name() const {
  return std::string(adapter_kind_name(adapter)) + "/" + base_format_name(base) + "/" + shape.name() + "/t" +
         std::to_string(tokens);
}

std::string LayerCase::test_name() const {
  std::string n = name();
  for (char& ch : n)
    if (ch == '/') ch = '_';
  return n;
}

void PrintTo(const LayerCase& c, std::ostream* os) { *os << c.name(); }

std::vector<LayerCase> forward_cases() {
  std::vector<LayerCase> cases;
  for (AdapterKind a : {AdapterKind::Oft, AdapterKind::Lora})
    for (BaseFormat f : {BaseFormat::Linear, BaseFormat::Hqq, BaseFormat::Aqlm, BaseFormat::Eetq})
      for (int n : {256, 1024, 4096})
        for (int t : {1, 8, 128}) cases.push_back({a, f, n, t});
  // Prefill-sized: the float64 reference against OpenBLAS's dgemm at 1024 tokens (issue 31).
  for (AdapterKind a : {AdapterKind::Oft, AdapterKind::Lora})
    for (BaseFormat f : {BaseFormat::Linear, BaseFormat::Hqq, BaseFormat::Aqlm, BaseFormat::Eetq})
      cases.push_back({a, f, 4096, 1024});
  return cases;
}

std::vector<LayerCase> device_forward_cases() {
  std::vector<LayerCase> cases = forward_cases();
  for (AdapterKind a : {AdapterKind::Oft, AdapterKind::Lora})
    for (BaseFormat f : {BaseFormat::Linear, BaseFormat::Hqq, BaseFormat::Aqlm, BaseFormat::Eetq}) {
      cases.push_back({a, f, 4096, 2048});
      for (LayerShape shape : {LayerShape(11008, 4096), LayerShape(4096, 11008)})
        for (int t : {1, 8, 128, 2048}) cases.push_back({a, f, shape, t});
    }
  return cases;
}

std::string MergeCase::name() const {
  return std::string(adapter_kind_name(adapter)) + "/" + base_format_name(base) + "/n" + std::to_string(features);
}

std::vector<MergeCase> merge_cases() {
  std::vector<MergeCase> cases;
  // 4096 for linear layers and EETQ's export (a float64 merge on the dequantized weight, then one
  // int8 rounding per element: seconds). Not HQQ: requantizing runs hqq's proximal optimizer
  // (here in double, in float32 in the LibTorch baseline), 2 s and 8 s an iteration at 1024 on the
  // shared 2-core VM, and 16 times the work at 4096.
  for (AdapterKind a : {AdapterKind::Oft, AdapterKind::Lora})
    for (BaseFormat f : {BaseFormat::Linear, BaseFormat::Hqq, BaseFormat::Eetq})
      for (int n : {256, 1024}) cases.push_back({a, f, n});
  for (AdapterKind a : {AdapterKind::Oft, AdapterKind::Lora})
    for (BaseFormat f : {BaseFormat::Linear, BaseFormat::Eetq}) cases.push_back({a, f, 4096});
  return cases;
}

std::vector<int> cayley_block_sizes() { return {8, 16, 32, 64, 128}; }

Vector cayley_params(int block_size) {
  SeededRandom rng(kSeed + static_cast<std::uint64_t>(block_size));
  return rng.normal(skew_param_count(block_size), 1, 0.2 / block_size).col(0);
}

namespace {

// Distinct, fixed seeds per tensor role so changing one part of a layer leaves the others alone.
// (A square shape's seeds are what they were before shapes had two sides.)
std::uint64_t seed_for(LayerShape shape, std::uint64_t role) {
  const std::uint64_t out = shape.out == shape.in ? 0 : static_cast<std::uint64_t>(shape.out) << 40;
  return kSeed ^ (static_cast<std::uint64_t>(shape.in) << 8) ^ out ^ role;
}

Vector bias_vector(int n, Dtype dtype) {
  SeededRandom rng(seed_for(n, 1));
  return round_to(dtype, Vector(rng.normal(n, 1, 0.1).col(0)));
}

template <class Base>
Base build_base(LayerShape shape);

template <>
DenseLinear build_base<DenseLinear>(LayerShape s) {
  SeededRandom rng(seed_for(s, 2));
  return DenseLinear(round_to(Dtype::Float32, rng.normal(s.out, s.in, 0.02)), bias_vector(s.out, Dtype::Float32));
}

template <>
HqqLinear build_base<HqqLinear>(LayerShape s) {
  HqqQuantized q;
  q.config = hqq_base_quantize_config(4, 64, 1);
  q.out_features = s.out;
  q.in_features = s.in;
  const HqqGrouping g = hqq_grouping(q.config, s.out, s.in);
  SeededRandom rng(seed_for(s, 3));
  q.codes = (rng.uniform(g.rows, g.cols, 0.0, 16.0).array().floor()).cast<int>().matrix();
  q.scale = round_to(Dtype::Float32, Vector(rng.uniform(g.groups, 1, 0.002, 0.006).col(0)));
  q.zero = Vector(rng.uniform(g.groups, 1, 6.0, 9.0).col(0)).array().round().matrix();  // round_zero (4-bit)
  return HqqLinear(std::move(q), bias_vector(s.out, Dtype::Float32), Dtype::Float64);
}

template <>
AqlmLinear build_base<AqlmLinear>(LayerShape s) {
  const AqlmConfig config{.in_group_size = 8, .out_group_size = 1, .num_codebooks = 1, .nbits_per_codebook = 16};
  const AqlmGeometry geo = aqlm_geometry(config, s.out, s.in);
  SeededRandom rng(seed_for(s, 4));
  std::vector<int> codes(static_cast<std::size_t>(geo.out_groups) * geo.in_groups);
  for (int& c : codes) c = static_cast<int>(rng.next_u64() % static_cast<std::uint64_t>(geo.entries));
  const Matrix cb = round_to(Dtype::Float16, rng.normal(geo.entries, config.in_group_size, 1.0));
  std::vector<double> codebooks(static_cast<std::size_t>(cb.size()));
  for (Eigen::Index k = 0; k < cb.rows(); ++k)
    for (Eigen::Index c = 0; c < cb.cols(); ++c) codebooks[static_cast<std::size_t>(k * cb.cols() + c)] = cb(k, c);
  const Vector scales = round_to(Dtype::Float16, Vector(rng.uniform(s.out, 1, 0.01, 0.03).col(0)));
  return AqlmLinear(config, s.out, s.in, std::move(codes), std::move(codebooks), scales,
                    bias_vector(s.out, Dtype::Float16), Dtype::Float16, AqlmKernel::Exact);
}

template <>
EetqLinear build_base<EetqLinear>(LayerShape s) {
  SeededRandom rng(seed_for(s, 5));
  return EetqLinear(eetq_quantize(rng.normal(s.out, s.in, 0.02), Dtype::Float16), bias_vector(s.out, Dtype::Float16),
                    EetqKernel::Exact);
}

}  // namespace

template <class Base>
const Base& base_layer(LayerShape shape) {
  static std::mutex mutex;
  static std::map<LayerShape, Base> cache;
  std::lock_guard lock(mutex);
  auto it = cache.find(shape);
  if (it == cache.end()) it = cache.emplace(shape, build_base<Base>(shape)).first;
  return it->second;
}

OftConfig bench_oft_config() {
  OftConfig config;
  config.oft_block_size = kOftBlockSize;
  return config;
}

template <class Base>
OftLayer<Base> oft_layer(LayerShape shape, Convention convention, OftConfig config) {
  OftLayer<Base> layer(base_layer<Base>(shape), convention);
  const OftBlocks blocks = resolve_oft_blocks(shape.in, config);
  SeededRandom rng(seed_for(shape, 6));
  layer.add_adapter("default", config,
                    round_to(Dtype::Float32, rng.normal(blocks.param_rows, blocks.n_elements, 0.01)));
  layer.set_active_adapters({"default"});
  return layer;
}

template <class Base>
LoraLayer<Base> lora_layer(LayerShape shape) {
  LoraLayer<Base> layer(base_layer<Base>(shape), Convention::Peft);
  SeededRandom rng(seed_for(shape, 7));
  const LoraConfig config{.r = kLoraRank, .lora_alpha = 2.0 * kLoraRank};
  Matrix a = round_to(Dtype::Float32, rng.normal(kLoraRank, shape.in, 1.0 / std::sqrt(shape.in)));
  Matrix b = round_to(Dtype::Float32, rng.normal(shape.out, kLoraRank, 0.02));
  layer.add_adapter("default", config, std::move(a), std::move(b));
  layer.set_active_adapters({"default"});
  return layer;
}

Matrix activations(int tokens, int in_features) {
  SeededRandom rng(seed_for(in_features, 8) ^ static_cast<std::uint64_t>(tokens));
  return round_to(Dtype::Float32, rng.normal(tokens, in_features, 1.0));
}

template <>
double weight_bytes(const DenseLinear& b) { return 4.0 * b.in_features() * b.out_features(); }  // float32
template <>
double weight_bytes(const HqqLinear& b) {  // packed codes + fp16 scale and zero per group
  const HqqQuantized& q = b.quantized();
  return q.config.nbits / 8.0 * q.in_features * q.out_features + 4.0 * static_cast<double>(q.scale.size());
}
template <>
double weight_bytes(const AqlmLinear& b) {  // int16 codes per input group, fp16 codebooks and scales
  const AqlmConfig& c = b.config();
  const double groups = double(b.out_features()) / c.out_group_size * b.in_features() / c.in_group_size;
  return groups * c.num_codebooks * (c.nbits_per_codebook / 8.0) +
         2.0 * c.num_codebooks * std::ldexp(1.0, c.nbits_per_codebook) * c.in_group_size * c.out_group_size +
         2.0 * b.out_features();
}
template <>
double weight_bytes(const EetqLinear& b) { return 1.0 * b.in_features() * b.out_features() + 2.0 * b.out_features(); }

#define QORACLE_BENCH_INSTANTIATE(Base)                                         \
  template const Base& base_layer<Base>(LayerShape);                          \
  template OftLayer<Base> oft_layer<Base>(LayerShape, Convention, OftConfig);  \
  template LoraLayer<Base> lora_layer<Base>(LayerShape);
QORACLE_BENCH_INSTANTIATE(DenseLinear)
QORACLE_BENCH_INSTANTIATE(HqqLinear)
QORACLE_BENCH_INSTANTIATE(AqlmLinear)
QORACLE_BENCH_INSTANTIATE(EetqLinear)
#undef QORACLE_BENCH_INSTANTIATE

}  // namespace qoracle::bench

// The float64 reference against its own outputs as recorded at commit 7c8ff4a, before the reference
// was made fast (issue 31): every optimization must keep each value within 1e-13 of the largest
// value of its output. The expected values come from data/reference_float64_values.txt, written by
// the code of that commit (QORACLE_RECORD_REFERENCE_VALUES=FILE runs this test in recording mode),
// never by the code under test.
//
// Each output is recorded as its shape, its largest |value|, its sum and 128 values at fixed
// positions (the whole output would be megabytes): a sample value may move by 1e-13 max|v|, the
// sum by that times the element count (each element's own allowance).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "bench/layer_cases.hpp"
#include "reference/eetq_merge.hpp"
#include "reference/seeded_random.hpp"

namespace {

using namespace qoracle;
using namespace qoracle::bench;

constexpr int kSamples = 128;
constexpr double kRelative = 1e-13;

struct Recorded {
  Eigen::Index rows = 0, cols = 0;
  double max_abs = 0, sum = 0;
  std::vector<double> samples;
};

Recorded summarize(const Matrix& m) {
  Recorded r;
  r.rows = m.rows();
  r.cols = m.cols();
  r.max_abs = m.cwiseAbs().maxCoeff();
  r.sum = m.sum();
  const Eigen::Index n = m.size();
  for (int k = 0; k < kSamples && k < n; ++k) {
    const Eigen::Index f = (static_cast<Eigen::Index>(k) * n) / std::min<Eigen::Index>(n, kSamples);
    r.samples.push_back(m(f / m.cols(), f % m.cols()));  // row-major position f
  }
  return r;
}

// name -> the output it names, computed by the reference now.
using Outputs = std::vector<std::pair<std::string, Matrix>>;

LoraConfig dora_config() { return {.r = kLoraRank, .lora_alpha = 2.0 * kLoraRank, .use_dora = true}; }

template <class Base>
LoraLayer<Base> dora_layer(int n) {
  LoraLayer<Base> layer(base_layer<Base>(n), Convention::Math);
  SeededRandom rng(31 + static_cast<std::uint64_t>(n));
  layer.add_adapter("dora", dora_config(), rng.normal(kLoraRank, n, 1.0 / std::sqrt(n)), rng.normal(n, kLoraRank, 0.02));
  layer.set_active_adapters({"dora"});
  return layer;
}

// Two OFT adapters of different block sizes on one layer (merges compose them).
template <class Base>
OftLayer<Base> two_oft_adapters(int n, Convention convention) {
  OftLayer<Base> layer = oft_layer<Base>(n, convention);
  OftConfig c = bench_oft_config();
  c.oft_block_size = 16;
  const OftBlocks blocks = resolve_oft_blocks(n, c);
  SeededRandom rng(47 + static_cast<std::uint64_t>(n));
  layer.add_adapter("second", c, rng.normal(blocks.param_rows, blocks.n_elements, 0.01));
  layer.set_active_adapters({"default", "second"});
  return layer;
}

template <class Layer>
void merge_round_trip(Outputs& out, const std::string& name, Layer layer, const Matrix& x) {
  const auto names = layer.active_adapters();
  layer.merge(names);
  out.emplace_back(name + "/merged_weight", layer.base().weight());
  out.emplace_back(name + "/merged_forward", layer.forward(x));
  layer.unmerge();
  out.emplace_back(name + "/unmerged_weight", layer.base().weight());
}

Outputs compute_all() {
  Outputs out;
  for (int n : {256, 1024}) {
    for (int t : {1, 8}) {
      const Matrix x = activations(t, n);
      const std::string s = "/n" + std::to_string(n) + "/t" + std::to_string(t);
      for (BaseFormat f : {BaseFormat::Linear, BaseFormat::Hqq, BaseFormat::Aqlm, BaseFormat::Eetq})
        with_base(f, [&]<class Base>() {
          const std::string b = base_format_name(f);
          out.emplace_back("forward/oft/" + b + s, oft_layer<Base>(n).forward(x));
          out.emplace_back("forward/oft_math/" + b + s, oft_layer<Base>(n, Convention::Math).forward(x));
          out.emplace_back("forward/oft2_math/" + b + s, two_oft_adapters<Base>(n, Convention::Math).forward(x));
          out.emplace_back("forward/lora/" + b + s, lora_layer<Base>(n).forward(x));
          if constexpr (Base::no_dora == nullptr)
            out.emplace_back("forward/dora/" + b + s, dora_layer<Base>(n).forward(x));
          return 0;
        });
    }
    const Matrix x = activations(8, n);
    const std::string s = "/n" + std::to_string(n);
    for (Convention c : {Convention::Math, Convention::Peft}) {
      const std::string conv = c == Convention::Math ? "math" : "peft";
      merge_round_trip(out, "merge/oft_" + conv + "/linear" + s, oft_layer<DenseLinear>(n, c), x);
      merge_round_trip(out, "merge/oft2_" + conv + "/linear" + s, two_oft_adapters<DenseLinear>(n, c), x);
    }
    merge_round_trip(out, "merge/oft_math/hqq" + s, oft_layer<HqqLinear>(n, Convention::Math), x);
    merge_round_trip(out, "merge/lora/linear" + s, lora_layer<DenseLinear>(n), x);
    merge_round_trip(out, "merge/lora/hqq" + s, lora_layer<HqqLinear>(n), x);
    merge_round_trip(out, "merge/dora/linear" + s, dora_layer<DenseLinear>(n), x);
    out.emplace_back("eetq_export/oft" + s, eetq_merge_to_dequantized(oft_layer<EetqLinear>(n), {"default"}).merged_weight);
    out.emplace_back("eetq_export/lora" + s, eetq_merge_to_dequantized(lora_layer<EetqLinear>(n), {"default"}).merged_weight);
  }
  return out;
}

std::string data_path() { return std::string(QORACLE_SOURCE_DIR) + "/conformance/tests/data/reference_float64_values.txt"; }

std::map<std::string, Recorded> read_recorded(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::map<std::string, Recorded> all;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string name, value;
    Recorded r;
    ls >> name >> r.rows >> r.cols;
    auto next = [&] {
      ls >> value;
      return std::strtod(value.c_str(), nullptr);  // hex floats: exact
    };
    r.max_abs = next();
    r.sum = next();
    while (ls >> value) r.samples.push_back(std::strtod(value.c_str(), nullptr));
    all[name] = r;
  }
  return all;
}

void write_recorded(const std::string& path, const Outputs& outputs) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  ASSERT_NE(f, nullptr) << path;
  std::fprintf(f, "# name rows cols max|v| sum v[0] ... v[%d] (row-major positions k*size/%d), hex floats\n", kSamples - 1,
               kSamples);
  for (const auto& [name, m] : outputs) {
    const Recorded r = summarize(m);
    std::fprintf(f, "%s %ld %ld %a %a", name.c_str(), static_cast<long>(r.rows), static_cast<long>(r.cols), r.max_abs, r.sum);
    for (double v : r.samples) std::fprintf(f, " %a", v);
    std::fprintf(f, "\n");
  }
  std::fclose(f);
}

TEST(ReferenceRegression, Float64OutputsMatchTheRecordedOnes) {
  const Outputs outputs = compute_all();
  if (const char* record = std::getenv("QORACLE_RECORD_REFERENCE_VALUES")) {
    write_recorded(record, outputs);
    GTEST_SKIP() << "recorded " << outputs.size() << " outputs to " << record;
  }
  const auto recorded = read_recorded(data_path());
  EXPECT_EQ(recorded.size(), outputs.size()) << "outputs recorded vs computed";
  for (const auto& [name, m] : outputs) {
    SCOPED_TRACE(name);
    const auto it = recorded.find(name);
    ASSERT_NE(it, recorded.end()) << "not recorded";
    const Recorded& want = it->second;
    const Recorded got = summarize(m);
    ASSERT_EQ(got.rows, want.rows);
    ASSERT_EQ(got.cols, want.cols);
    const double allowed = kRelative * want.max_abs;
    EXPECT_LE(std::abs(got.max_abs - want.max_abs), allowed);
    EXPECT_LE(std::abs(got.sum - want.sum), allowed * static_cast<double>(m.size()));
    ASSERT_EQ(got.samples.size(), want.samples.size());
    int bad = 0;
    for (std::size_t k = 0; k < got.samples.size(); ++k)
      if (!(std::abs(got.samples[k] - want.samples[k]) <= allowed) && bad++ < 3)
        ADD_FAILURE() << "sample " << k << ": recorded " << want.samples[k] << ", now " << got.samples[k]
                      << " (allowed " << allowed << ")";
  }
}

}  // namespace

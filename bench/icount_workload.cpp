// Fixed, short workloads for the instruction-count regression gate (bench/icount_gate.py). Each
// runs one benchmark case a fixed number of times between callgrind client requests, so only the
// measured loop is counted and the count is the same on every run of the same binary.
//   icount_workload --list    the workload names (the benchmark names without the "reference/")
//   icount_workload NAME      run one (under valgrind --tool=callgrind --instr-atstart=no)
#include <valgrind/callgrind.h>

#include <Eigen/Core>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

#include "bench/layer_cases.hpp"
#include "reference/cayley.hpp"
#include "reference/eetq_merge.hpp"
#include "reference/float64_products.hpp"
#include "reference/skew.hpp"

namespace {

using namespace qoracle;
using namespace qoracle::bench;

constexpr int kFeatures = 256, kTokens = 8;

// Setup, then the counted part.
using Workload = std::function<std::function<void()>()>;

template <class Base>
Workload forward(AdapterKind adapter) {
  return [adapter]() -> std::function<void()> {
    const Matrix x = activations(kTokens, kFeatures);
    if (adapter == AdapterKind::Oft)
      return [x, layer = oft_layer<Base>(kFeatures)] { for (int i = 0; i < 3; ++i) layer.forward(x); };
    return [x, layer = lora_layer<Base>(kFeatures)] { for (int i = 0; i < 3; ++i) layer.forward(x); };
  };
}

template <class Layer>
std::function<void()> merge_round_trip(Layer layer) {
  return [layer]() mutable {
    layer.merge({"default"});
    layer.unmerge();
  };
}

Workload cayley(bool neumann) {
  return [neumann]() -> std::function<void()> {
    const Matrix s = skew_from_params(cayley_params(32), 32);
    return [s, neumann] {
      for (int i = 0; i < 20; ++i) neumann ? cayley_neumann(s, 5, Convention::Peft) : cayley_exact(s);
    };
  };
}

std::map<std::string, Workload> workloads() {
  const std::string shape = "/n" + std::to_string(kFeatures) + "/t" + std::to_string(kTokens);
  const std::string n = "/n" + std::to_string(kFeatures);
  std::map<std::string, Workload> w;
  for (AdapterKind a : {AdapterKind::Oft, AdapterKind::Lora}) {
    const std::string prefix = std::string("forward/") + adapter_kind_name(a) + "/";
    w[prefix + "linear" + shape] = forward<DenseLinear>(a);
    w[prefix + "hqq" + shape] = forward<HqqLinear>(a);
    w[prefix + "aqlm" + shape] = forward<AqlmLinear>(a);
    w[prefix + "eetq" + shape] = forward<EetqLinear>(a);
  }
  w["merge/oft/linear" + n] = [] { return merge_round_trip(oft_layer<DenseLinear>(kFeatures, Convention::Math)); };
  w["merge/lora/linear" + n] = [] { return merge_round_trip(lora_layer<DenseLinear>(kFeatures)); };
  w["merge/lora/hqq" + n] = [] { return merge_round_trip(lora_layer<HqqLinear>(kFeatures)); };
  w["merge/oft/eetq" + n] = []() -> std::function<void()> {
    return [layer = oft_layer<EetqLinear>(kFeatures)] { eetq_merge_to_dequantized(layer, {"default"}); };
  };
  w["cayley_exact/b32"] = cayley(false);
  w["cayley_neumann/b32"] = cayley(true);
  return w;
}

}  // namespace

int main(int argc, char** argv) {
  // Eigen picks its GEMM blocking from the CPU's cache sizes; fixing them keeps the instruction
  // count independent of the machine the gate runs on.
  Eigen::setCpuCacheSizes(32 * 1024, 512 * 1024, 32 * 1024 * 1024);
  // One thread (reference decoding and OpenBLAS alike): counts that do not depend on scheduling.
  set_reference_threads(1);
  const auto all = workloads();
  if (argc == 2 && std::string(argv[1]) == "--list") {
    for (const auto& [name, _] : all) std::printf("%s\n", name.c_str());
    return 0;
  }
  if (argc != 2 || !all.count(argv[1])) {
    std::fprintf(stderr, "usage: icount_workload --list | NAME (one of the names --list prints)\n");
    return 2;
  }
  const std::function<void()> counted = all.at(argv[1])();
  CALLGRIND_START_INSTRUMENTATION;
  counted();
  CALLGRIND_STOP_INSTRUMENTATION;
  return 0;
}

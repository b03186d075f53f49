// qoracle aqlm-quantize: AQLM layers made by qoracle's quantizer (reference/aqlm_quantizer.hpp),
// written as fixture cases of kind "aqlm/quantized" so the real aqlm library can load and run
// them (fixtures/export/export_aqlm_roundtrip.py) and qoracle can check what it computes.
#include <iostream>

#include "conformance/case_runner.hpp"
#include "reference/aqlm_quantizer.hpp"
#include "reference/error.hpp"
#include "reference/seeded_random.hpp"
#include "tools/qoracle/commands.hpp"

namespace qoracle::cli {

int aqlm_quantize_command(const std::vector<std::string>& args) {
  std::string out_path;
  std::uint64_t seed = 900;
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--out" && i + 1 < args.size()) out_path = args[++i];
    else if (args[i] == "--seed" && i + 1 < args.size()) seed = std::stoull(args[++i]);
    else throw Error("unknown or incomplete option '" + args[i] + "'");
  }
  if (out_path.empty()) throw Error("--out FILE is required");
  const int out = 64, in = 256;  // 2048 weight vectors: more than a 256-entry codebook holds
  std::vector<FixtureCase> cases;
  for (const AqlmConfig& cfg : {AqlmConfig{8, 1, 2, 8}, AqlmConfig{8, 1, 1, 8}, AqlmConfig{8, 1, 1, 16},
                                AqlmConfig{4, 2, 1, 10}}) {
    SeededRandom rng(++seed);
    const Matrix w = rng.normal(out, in, 0.02);
    AqlmQuantizerOptions opt;
    opt.seed = seed;
    const AqlmQuantized q = aqlm_quantize(w, cfg, opt);
    FixtureCase c;
    c.name = "aqlm_quantized_out64_in256_" + std::to_string(cfg.num_codebooks) + "x" + std::to_string(cfg.nbits_per_codebook) +
             "_ig" + std::to_string(cfg.in_group_size) + "_og" + std::to_string(cfg.out_group_size) + "_seed" + std::to_string(seed);
    c.layer_kind = "aqlm/quantized";
    c.dtype = Dtype::Float32;
    c.seed = static_cast<std::int64_t>(seed);
    c.producer = "qoracle-aqlm-quantizer";
    c.producer_versions = std::string("{\"qoracle\": \"") + QORACLE_VERSION + "\"}";
    c.convention = Convention::Peft;
    char err[64];
    std::snprintf(err, sizeof err, "%.6g", q.relative_error);
    c.description = std::string("qoracle's k-means additive quantizer; relative reconstruction error ") + err;
    const AqlmKernel kernel = aqlm_cpu_kernel(cfg);
    c.base.config.values = {{"in_group_size", std::int64_t{cfg.in_group_size}},
                            {"out_group_size", std::int64_t{cfg.out_group_size}},
                            {"num_codebooks", std::int64_t{cfg.num_codebooks}},
                            {"nbits_per_codebook", std::int64_t{cfg.nbits_per_codebook}},
                            {"out_features", std::int64_t{out}}, {"in_features", std::int64_t{in}},
                            {"dtype", std::string("float32")}, {"kernel", std::string(aqlm_kernel_name(kernel))},
                            {"relative_error", q.relative_error}};
    Tensor codes;
    codes.shape = {out / cfg.out_group_size, in / cfg.in_group_size, cfg.num_codebooks};
    codes.stored_type = cfg.nbits_per_codebook <= 8 ? "int8" : "int16";
    for (int u : q.codes) codes.values.push_back(static_cast<double>(aqlm_stored_code(u, cfg.nbits_per_codebook)));
    c.base.tensors["codes"] = codes;
    Tensor cb;
    cb.shape = {cfg.num_codebooks, std::int64_t{1} << cfg.nbits_per_codebook, cfg.out_group_size, cfg.in_group_size};
    cb.values = q.codebooks;
    cb.logical_dtype = Dtype::Float16;
    c.base.tensors["codebooks"] = cb;
    c.base.tensors["scales"] = Tensor::from_vector(q.scales, Dtype::Float16);
    c.base.tensors["bias"] = Tensor::from_vector(round_to(Dtype::Float16, Vector(rng.normal(out, 1, 0.1).col(0))), Dtype::Float16);
    c.x = Tensor::from_matrix(round_to(Dtype::Float32, rng.normal(3, in, 1.0)), Dtype::Float32);
    const auto values = evaluate_case(c, {"forward", "dequantized_weight"});
    c.expected.push_back({"forward", values.at("forward"), {0.0, 1e-6, 0.0}});
    c.expected.push_back({"dequantized_weight", values.at("dequantized_weight"), {0.0, 1e-6, 0.0}});
    std::cout << c.name << ": relative error " << q.relative_error << "\n";
    cases.push_back(std::move(c));
  }
  write_fixture_file(out_path, cases);
  std::cout << "wrote " << cases.size() << " case(s) to " << out_path << "\n";
  return 0;
}

}  // namespace qoracle::cli

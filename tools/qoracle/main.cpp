// qoracle: recompute fixture cases with the double-precision reference and say whether they hold.
#include <exception>
#include <iostream>
#include <string>
#include <vector>

#include "tools/qoracle/commands.hpp"

namespace {

constexpr const char* kUsage = R"(usage: qoracle <command> [options]

commands:
  check PATH... [--json] [--report FILE | --no-report] [--no-optimized]
      Recompute every case in the given .h5 files or folders (searched recursively) with
      the reference; print one row per case and expected output. Exit 1 on any FAIL or ERROR.
      Each forward also runs through the optimized path (the fused kernels' host emulation,
      and the kernels on a GPU), judged against the float64 oracle; --no-optimized skips it.
      Writes a Markdown conformance report (default reports/conformance.md).
  inspect FILE
      Summarize a fixture file: its cases, producers, adapters, tensors and tolerances.
  deviations PATH... [--report FILE | --no-report]
      Recompute every PEFT-convention case in the math convention and list the expected
      outputs where PEFT differs from the math, largest first (default report
      reports/peft-deviations-measured.md).
  merge-quality [--cycles K] [--shape OUTxIN] [--seed S] [--report FILE | --no-report]
      What merging a LoRA or OFT adapter into an HQQ layer costs, per nbits, group size and
      axis: error against the unquantized ideal and drift after K merge/unmerge cycles
      (default report reports/hqq-merge-quality.md).
  aqlm-quantize --out FILE [--seed S]
      Quantize seeded weights with qoracle's additive (k-means) quantizer into AQLM layers
      (2x8, 1x8, 1x16, out groups of 2) and write them as "aqlm/quantized" fixture cases.
  eetq-decode FILE [--prefix P] [--layout sm75-sm89|sm70|plain] [--out FILE]
      Decode one EETQ layer's checkpoint tensors (datasets P+weight int8 [in, out], P+weight_scales
      fp16, optional P+bias) from their GPU byte layout into codes [out, in] and scales.
  generate --out DIR [--seed-offset N]
      Write the reference-produced fixtures of the case table (one file per layer kind).
  seal PATH... [--check]
      Rewrite .h5 files (folders searched recursively) into the checksummed form of
      fixtures/SCHEMA.md (Integrity), keeping every value bit for bit; idempotent. With
      --check, write nothing and list the files that are not sealed (exit 1 if any).
)";

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "-h" || args[0] == "--help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  const std::string command = args[0];
  args.erase(args.begin());
  try {
    if (command == "check") return qoracle::cli::check_command(args);
    if (command == "inspect") return qoracle::cli::inspect_command(args);
    if (command == "generate") return qoracle::cli::generate_command(args);
    if (command == "deviations") return qoracle::cli::deviations_command(args);
    if (command == "merge-quality") return qoracle::cli::merge_quality_command(args);
    if (command == "aqlm-quantize") return qoracle::cli::aqlm_quantize_command(args);
    if (command == "eetq-decode") return qoracle::cli::eetq_decode_command(args);
    if (command == "seal") return qoracle::cli::seal_command(args);
  } catch (const std::exception& e) {
    std::cerr << "qoracle " << command << ": " << e.what() << "\n";
    return 2;
  }
  std::cerr << "qoracle: unknown command '" << command << "'\n" << kUsage;
  return 2;
}

#include "tools/qoracle/report.hpp"

#include "reference/error.hpp"

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iomanip>
#include <map>
#include <set>
#include <sstream>

namespace qoracle::cli {

namespace {

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", v);
  return buf;
}

std::string json_escape(const std::string& s) {
  std::string o;
  for (char ch : s) {
    switch (ch) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", ch);
          o += buf;
        } else {
          o += ch;
        }
    }
  }
  return o;
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s << std::setprecision(17) << v;
  return s.str();
}

}  // namespace

std::ofstream open_report(const std::string& path) {
  const std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path());
  std::ofstream out(p);
  if (!out) throw Error("cannot write the report to '" + path + "'");
  return out;
}

Tally tally(const std::vector<CheckRow>& rows) {
  Tally t;
  for (const auto& r : rows) {
    if (r.status == CheckStatus::Pass) ++t.passed;
    else if (r.status == CheckStatus::Fail) ++t.failed;
    else ++t.errors;
  }
  return t;
}

void print_table(std::ostream& out, const std::vector<CheckRow>& rows) {
  out << std::left << std::setw(6) << "status" << "  " << std::setw(18) << "output" << std::right << std::setw(10)
      << "max_abs" << std::setw(10) << "rel" << std::setw(10) << "allowed" << "  case\n";
  for (const auto& r : rows) {
    out << std::left << std::setw(6) << status_name(r.status) << "  " << std::setw(18) << r.output;
    if (r.status == CheckStatus::Error) {
      out << "  " << r.file << " :: " << r.case_name << "\n        " << r.error << "\n";
      continue;
    }
    if (r.referee) {
      out << std::right << std::setw(10) << sci(r.referee->result_error) << std::setw(10) << "" << std::setw(10)
          << sci(r.referee->bound) << "  " << r.case_name << "\n";
      if (r.status == CheckStatus::Fail) out << "        " << r.file << ": " << r.referee->message() << "\n";
      continue;
    }
    const Comparison& c = r.comparison;
    out << std::right << std::setw(10) << sci(c.max_abs_error) << std::setw(10)
        << sci(c.expected_max_abs > 0 ? c.max_abs_error / c.expected_max_abs : c.max_abs_error) << std::setw(10)
        << sci(c.bound) << "  " << r.case_name << "\n";
    if (r.status == CheckStatus::Fail) out << "        " << r.file << ": " << c.message() << "\n";
  }
}

void print_json(std::ostream& out, const std::vector<CheckRow>& rows) {
  const Tally t = tally(rows);
  out << "{\n  \"passed\": " << t.passed << ", \"failed\": " << t.failed << ", \"errors\": " << t.errors
      << ",\n  \"rows\": [\n";
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const CheckRow& r = rows[i];
    const Comparison& c = r.comparison;
    out << "    {\"file\": \"" << json_escape(r.file) << "\", \"case\": \"" << json_escape(r.case_name)
        << "\", \"output\": \"" << json_escape(r.output) << "\", \"layer_kind\": \"" << json_escape(r.layer_kind)
        << "\", \"dtype\": \"" << r.dtype << "\", \"convention\": \"" << r.convention << "\", \"producer\": \""
        << json_escape(r.producer) << "\", \"status\": \"" << status_name(r.status) << "\"";
    if (r.status == CheckStatus::Error) {
      out << ", \"error\": \"" << json_escape(r.error) << "\"";
    } else if (r.referee) {
      out << ", \"error_vs_fp64\": " << json_number(r.referee->result_error) << ", \"baseline_error_vs_fp64\": "
          << json_number(r.referee->baseline_error) << ", \"allowed\": " << json_number(r.referee->bound);
    } else {
      out << ", \"max_abs_error\": " << json_number(c.max_abs_error) << ", \"max_rel_error\": "
          << json_number(c.max_rel_error) << ", \"rel_frobenius\": " << json_number(c.rel_frobenius)
          << ", \"allowed\": " << json_number(c.bound) << ", \"atol\": " << json_number(c.tolerance.atol)
          << ", \"rtol\": " << json_number(c.tolerance.rtol) << ", \"mismatched\": " << c.mismatched
          << ", \"total\": " << c.total;
    }
    // A failure says why in words too (a shape mismatch has no error size to show).
    if (r.status == CheckStatus::Fail) out << ", \"message\": \"" << json_escape(row_detail(r)) << "\"";
    if (!r.note.empty()) out << ", \"note\": \"" << json_escape(r.note) << "\"";
    out << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  out << "  ]\n}\n";
}

namespace {

template <class Select>
void write_matrix(std::ostream& out, const std::string& heading, const std::vector<CheckRow>& rows, Select select) {
  std::map<std::string, std::map<std::string, std::pair<int, int>>> matrix;
  std::set<std::string> columns;
  for (const auto& r : rows) {
    if (!select(r)) continue;
    const std::string col = r.producer + " " + r.dtype + " " + r.convention;
    columns.insert(col);
    auto& cell = matrix[r.layer_kind.empty() ? "(unreadable)" : r.layer_kind][col];
    cell.second += 1;
    if (r.status == CheckStatus::Pass) cell.first += 1;
  }
  if (matrix.empty()) return;
  out << heading << "\n\n| layer kind |";
  for (const auto& col : columns) out << " " << col << " |";
  out << "\n|---|";
  for (std::size_t i = 0; i < columns.size(); ++i) out << "---|";
  out << "\n";
  for (const auto& [kind, cells] : matrix) {
    out << "| " << kind << " |";
    for (const auto& col : columns) {
      auto it = cells.find(col);
      if (it == cells.end()) out << " – |";
      else out << " " << it->second.first << " / " << it->second.second << (it->second.first == it->second.second ? " ✅" : " ❌") << " |";
    }
    out << "\n";
  }
  out << "\n";
}

}  // namespace

void write_markdown_report(std::ostream& out, const std::vector<CheckRow>& rows) {
  const Tally t = tally(rows);
  out << "# Conformance report\n\n"
      << "Written by `qoracle check`. Each expected output of each fixture case was recomputed with the "
         "double-precision reference and compared with `max|actual - expected| <= atol + rtol * max|expected|` "
         "(conformance/TOLERANCES.md).\n\n"
      << "**" << t.passed << " passed, " << t.failed << " failed, " << t.errors << " errors** over "
      << rows.size() << " checks.\n\n";

  // Matrices: layer kind x (producer, dtype, convention) -> passed/total; the reference's checks,
  // then the optimized path's (outputs "<output>@optimized-...").
  auto optimized_row = [](const CheckRow& r) { return r.output.find("@optimized") != std::string::npos; };
  write_matrix(out, "## Matrix (passed / checked)", rows, [&](const CheckRow& r) { return !optimized_row(r); });
  write_matrix(out,
               "## Optimized path (passed / checked)\n\nEach case's forward through the fused kernels "
               "(optimized/): their shared code on the host through the GEMV and the GEMM, and the kernels "
               "themselves where a GPU is present, against the float64 oracle (float16/bfloat16: at most twice "
               "as far from it as the producer's own result). Where the producer merged into nn.Linear, also the "
               "layer merged by the GPU merge (optimized/dense_merge), whose forward must be the same "
               "(forward@optimized-dense-merge-...). On EETQ layers, which PEFT refuses to merge, the GPU merge "
               "into EETQ's own format (optimized/eetq_merge) against the reference's export of the exact merge: "
               "codes within one step, scales and bias within one float16 ulp (merged_*@optimized-eetq-merge-...).",
               rows, optimized_row);

  // Quantizer agreement: how often our codes equal the producer's, and how close scales and zeros are.
  struct Agreement {
    std::int64_t codes = 0, codes_off = 0;
    double scale_rel = 0, zero_rel = 0;
  };
  std::map<std::string, Agreement> agreement;  // by stage: quantized, merged, unmerged
  for (const auto& r : rows) {
    if (r.status == CheckStatus::Error || r.referee) continue;
    const auto us = r.output.find('_');
    if (us == std::string::npos) continue;
    const std::string stage = r.output.substr(0, us), what = r.output.substr(us + 1);
    if (stage != "quantized" && stage != "merged" && stage != "unmerged") continue;
    Agreement& a = agreement[stage];
    if (what == "codes") {
      a.codes += r.comparison.total;
      a.codes_off += r.comparison.mismatched;
    } else if (what == "scale") {
      a.scale_rel = std::max(a.scale_rel, r.comparison.max_rel_error);
    } else if (what == "zero") {
      a.zero_rel = std::max(a.zero_rel, r.comparison.max_rel_error);
    }
  }
  if (!agreement.empty()) {
    out << "\n## Quantizer agreement\n\nThe reference's quantizer (in the arithmetic the fixture names) against the "
           "producer's stored codes, scales and zeros: `quantized` = the float weight quantized, `merged`/`unmerged` = "
           "the layer requantized by a merge or an unmerge.\n\n| stage | codes compared | identical | max relative "
           "error, scale | max relative error, zero |\n|---|---|---|---|---|\n";
    for (const auto& [stage, a] : agreement) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "| %s | %lld | %.4f %% | %.2e | %.2e |\n", stage.c_str(),
                    static_cast<long long>(a.codes),
                    a.codes ? 100.0 * static_cast<double>(a.codes - a.codes_off) / static_cast<double>(a.codes) : 0.0,
                    a.scale_rel, a.zero_rel);
      out << buf;
    }
  }

  out << "\n## Cases\n\n| status | case | output | max abs error | relative to max\\|expected\\| | allowed |\n"
      << "|---|---|---|---|---|---|\n";
  for (const auto& r : rows) {
    const Comparison& c = r.comparison;
    out << "| " << status_name(r.status) << " | `" << r.case_name << "` | " << r.output << " | ";
    if (r.status == CheckStatus::Error) {
      out << "error: " << r.error << " | | |\n";
    } else if (r.referee) {
      out << sci(r.referee->result_error) << " vs fp64 (producer's own: " << sci(r.referee->baseline_error) << ") | | "
          << sci(r.referee->bound) << " |\n";
    } else {
      out << sci(c.max_abs_error) << " | " << sci(c.expected_max_abs > 0 ? c.max_abs_error / c.expected_max_abs : 0.0)
          << " | " << sci(c.bound) << " |\n";
    }
  }
}

}  // namespace qoracle::cli

// damage_sweep: seeded damaged copies of fixture files, each checked by `qoracle check`, with the
// outcome counted. A golden file must never take qoracle down: every copy ends in exit 0 (the
// damage hit bytes nothing reads) or a clean non-zero exit whose message names the file, and a
// damaged sealed file is reported as damage, never as a FAIL of the layer. Exit 1 otherwise.
//
//   damage_sweep --qoracle build/qoracle [--copies N] [--seed S] [--timeout SECONDS]
//                [--workdir DIR] [--report FILE] [--list] FILE...
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fixtures/format/file_bytes.hpp"
#include "reference/error.hpp"
#include "tools/damage_sweep/damage.hpp"

namespace fs = std::filesystem;
using namespace qoracle;
using namespace qoracle::damage;

namespace {

// What one damaged copy did to `qoracle check`, best first.
enum class Outcome { Passed, Damaged, Contained, Error, Unchecked, Fail, Unnamed, Crash, Hang };
constexpr Outcome kOutcomes[] = {Outcome::Passed,    Outcome::Damaged, Outcome::Contained,
                                 Outcome::Error,     Outcome::Unchecked, Outcome::Fail,
                                 Outcome::Unnamed,   Outcome::Crash,   Outcome::Hang};

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Passed: return "passed";
    case Outcome::Damaged: return "damaged";
    case Outcome::Contained: return "contained";
    case Outcome::Error: return "error";
    case Outcome::Unchecked: return "unchecked";
    case Outcome::Fail: return "FAIL";
    case Outcome::Unnamed: return "unnamed";
    case Outcome::Crash: return "crash";
    case Outcome::Hang: return "hang";
  }
  return "?";
}

const char* outcome_meaning(Outcome o) {
  switch (o) {
    case Outcome::Passed: return "exit 0: the damage hit bytes nothing reads";
    case Outcome::Damaged: return "clean non-zero exit, the file named and reported damaged (a checksum or HDF5's end-of-file check caught it)";
    case Outcome::Contained: return "clean non-zero exit naming the file: HDF5 crashed or hung in the isolated reader";
    case Outcome::Error: return "clean non-zero exit naming the file (unreadable, refused by HDF5 or the schema)";
    case Outcome::Unchecked: return "a value rewritten through HDF5 (its SHA-256 stale) not reported as damage";
    case Outcome::Fail: return "a numerical FAIL: damaged golden data read as a wrong layer";
    case Outcome::Unnamed: return "non-zero exit whose message does not name the file";
    case Outcome::Crash: return "killed by a signal, or qoracle's own code crashed in the isolated reader";
    case Outcome::Hang: return "no exit within the timeout";
  }
  return "?";
}

bool acceptable(Outcome o) {
  return o == Outcome::Passed || o == Outcome::Damaged || o == Outcome::Contained || o == Outcome::Error;
}

struct Run {
  int status = 0;  // waitpid status
  bool timed_out = false;
  std::string output;
};

Run run_check(const std::string& qoracle, const std::string& file, const std::string& log, double timeout_s) {
  const pid_t pid = fork();
  if (pid < 0) throw Error("damage_sweep: fork failed: " + std::string(std::strerror(errno)));
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    const char* argv[] = {qoracle.c_str(), "check", file.c_str(), "--no-optimized", "--no-report", nullptr};
    execv(qoracle.c_str(), const_cast<char* const*>(argv));
    _exit(127);
  }
  Run r;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (waitpid(pid, &r.status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &r.status, 0);
      r.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  r.output = file_bytes(log);
  return r;
}

Outcome classify(const Run& r, const std::string& file) {
  if (r.timed_out) return Outcome::Hang;
  if (WIFSIGNALED(r.status)) return Outcome::Crash;
  if (!WIFEXITED(r.status)) return Outcome::Crash;
  if (WEXITSTATUS(r.status) == 0) return Outcome::Passed;
  static const std::regex tally(R"(qoracle check: \d+ passed, (\d+) failed)");
  std::smatch m;
  if (std::regex_search(r.output, m, tally) && std::stoi(m[1]) > 0) return Outcome::Fail;
  if (r.output.find(file) == std::string::npos) return Outcome::Unnamed;
  // The phrases of fixtures/format: "<dataset> is damaged (checksum mismatch ...)", and the isolated
  // reader's "HDF5 could not read it (damaged metadata; the library crashed in ...)".
  if (r.output.find("a qoracle bug") != std::string::npos) return Outcome::Crash;  // contained, but ours
  if (r.output.find(" is damaged (") != std::string::npos) return Outcome::Damaged;
  if (r.output.find("HDF5 could not read it") != std::string::npos) return Outcome::Contained;
  return Outcome::Error;
}

}  // namespace

int main(int argc, char** argv) try {
  std::string qoracle, workdir, report;
  bool list = false;  // a line per copy: its damage, outcome and first message
  int copies = 100;
  std::uint64_t seed = 24;
  double timeout_s = 60;
  std::vector<std::string> files;
  const std::vector<std::string> args(argv + 1, argv + argc);
  for (std::size_t i = 0; i < args.size(); ++i) {
    const bool value = i + 1 < args.size();
    if (args[i] == "--qoracle" && value) qoracle = args[++i];
    else if (args[i] == "--copies" && value) copies = std::stoi(args[++i]);
    else if (args[i] == "--seed" && value) seed = std::stoull(args[++i]);
    else if (args[i] == "--timeout" && value) timeout_s = std::stod(args[++i]);
    else if (args[i] == "--workdir" && value) workdir = args[++i];
    else if (args[i] == "--report" && value) report = args[++i];
    else if (args[i] == "--list") list = true;
    else if (args[i].starts_with("--")) throw Error("unknown or incomplete option '" + args[i] + "'");
    else files.push_back(args[i]);
  }
  if (qoracle.empty() || files.empty() || copies < 1)
    throw Error("usage: damage_sweep --qoracle PATH [--copies N] [--seed S] [--timeout S] [--workdir DIR] [--report FILE] [--list] FILE...");
  if (workdir.empty()) workdir = (fs::temp_directory_path() / ("qoracle-damage-" + std::to_string(getpid()))).string();
  fs::create_directories(workdir);
  std::vector<std::string> originals;
  for (const auto& f : files) originals.push_back(file_bytes(f));

  std::cout << "damage_sweep: " << copies << " damaged copies of " << files.size() << " file(s), seed=" << seed
            << ", timeout " << timeout_s << " s, copies in " << workdir << "\n";
  std::map<Outcome, std::map<DamageKind, int>> counts;
  std::map<Outcome, int> totals;
  std::vector<std::string> offenders, contained;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < copies; ++i) {
    const std::size_t f = static_cast<std::size_t>(i) % files.size();
    const DamageKind kind = kDamageKinds[(static_cast<std::size_t>(i) / files.size()) % std::size(kDamageKinds)];
    const std::uint64_t copy_seed = seed * 1000003u + static_cast<std::uint64_t>(i);
    const std::string copy = (fs::path(workdir) / (std::to_string(i) + "-" + damage_kind_name(kind) + "-" +
                                                   fs::path(files[f]).filename().string())).string();
    DamagedBytes d;
    if (kind == DamageKind::RewrittenData) {
      std::ofstream(copy, std::ios::binary) << originals[f];
      d.what = rewrite_sealed_dataset(copy, copy_seed);
    } else {
      d = qoracle::damage::damage(originals[f], kind, copy_seed);
      std::ofstream(copy, std::ios::binary) << d.bytes;
    }
    const Run r = run_check(qoracle, copy, copy + ".log", timeout_s);
    Outcome o = classify(r, copy);
    // A value rewritten through HDF5 reads cleanly everywhere but in its SHA-256: anything but
    // "damaged" means the checksum was not checked.
    if (kind == DamageKind::RewrittenData && acceptable(o) && o != Outcome::Damaged) o = Outcome::Unchecked;
    ++counts[o][kind];
    ++totals[o];
    if (list) {
      auto at = r.output.find(" is damaged (");  // the line that says why, else the first naming the copy
      at = at == std::string::npos ? r.output.find(copy + ":") : r.output.rfind('\n', at) + 1;
      const std::string message = at == std::string::npos ? "" : r.output.substr(at, r.output.find('\n', at) - at);
      std::cout << "copy " << i << " " << damage_kind_name(kind) << " " << files[f] << " (" << d.what << "): " << outcome_name(o)
                << (message.empty() ? "" : " -- " + message) << "\n";
    }
    if (o == Outcome::Contained) {  // clean, but worth a look: HDF5 crashed on it
      std::string why = r.output.substr(r.output.find("HDF5 could not read it"));
      why = why.substr(0, why.find('\n'));
      contained.push_back("copy " + std::to_string(i) + " (seed=" + std::to_string(copy_seed) + ", " + files[f] + ", " +
                          d.what + "): " + why + "; kept at " + copy);
    }
    if (acceptable(o) && o != Outcome::Contained) {
      fs::remove(copy);
      fs::remove(copy + ".log");
      continue;
    }
    std::ostringstream line;
    line << "copy " << i << " (seed=" << copy_seed << ", " << files[f] << ", " << d.what << "): " << outcome_name(o);
    if (o == Outcome::Crash && WIFSIGNALED(r.status)) line << " (signal " << WTERMSIG(r.status) << ", " << strsignal(WTERMSIG(r.status)) << ")";
    line << "; kept at " << copy << " (output in " << copy << ".log)";
    offenders.push_back(line.str());
    std::cout << line.str() << "\n";
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::ostringstream table;
  table << "| outcome | what it means |";
  for (DamageKind k : kDamageKinds) table << " " << damage_kind_name(k) << " |";
  table << " total |\n|---|---|";
  for (std::size_t k = 0; k <= std::size(kDamageKinds); ++k) table << "---:|";
  table << "\n";
  for (Outcome o : kOutcomes) {
    table << "| " << outcome_name(o) << " | " << outcome_meaning(o) << " |";
    for (DamageKind k : kDamageKinds) table << " " << counts[o][k] << " |";
    table << " " << totals[o] << " |\n";
  }
  std::cout << table.str();
  char took[64];
  std::snprintf(took, sizeof took, "%.1f s (%.0f ms per copy)", seconds, 1000 * seconds / copies);
  std::cout << "damage_sweep: " << copies << " copies in " << took << "; " << offenders.size()
            << " not clean (crash, hang, FAIL or a message without the file name)\n";
  if (!report.empty()) {
    std::ofstream md(report);
    if (!md) throw Error("damage_sweep: cannot write the report to '" + report + "'");
    md << "# Damaged golden files\n\n"
       << "Written by `damage_sweep` (tools/damage_sweep): " << copies << " damaged copies of " << files.size()
       << " committed fixture files, seed " << seed << ", each checked by `qoracle check COPY --no-optimized "
          "--no-report` with a " << timeout_s << " s timeout. Copy i damages file i mod " << files.size()
       << " in the way i / " << files.size() << " mod " << std::size(kDamageKinds) << " names, from seed " << seed << "·1000003 + i.\n\n"
       << table.str() << "\n" << copies << " copies took " << took << ".\n\nFiles:\n\n";
    for (const auto& f : files) md << "- `" << f << "`\n";
    md << "\n" << (offenders.empty() ? "Every copy ended cleanly.\n" : "Copies that did not end cleanly:\n\n");
    for (const auto& o : offenders) md << "- " << o << "\n";
    if (!contained.empty()) md << "\nCopies on which HDF5 crashed or hung in the isolated reader (contained):\n\n";
    for (const auto& c : contained) md << "- " << c << "\n";
  }
  return offenders.empty() ? 0 : 1;
} catch (const std::exception& e) {
  std::cerr << e.what() << "\n";
  return 2;
}

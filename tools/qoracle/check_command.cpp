#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "conformance/case_runner.hpp"
#include "conformance/optimized_check.hpp"
#include "fixtures/format/isolated_read.hpp"
#include "reference/float64_products.hpp"
#include "reference/error.hpp"
#include "tools/qoracle/commands.hpp"
#include "tools/qoracle/fixture_paths.hpp"
#include "tools/qoracle/report.hpp"

namespace qoracle::cli {


namespace {

CheckRow error_row(const std::string& file, const std::string& case_name, const std::string& message) {
  CheckRow row;
  row.file = file;
  row.case_name = case_name;
  row.status = CheckStatus::Error;
  row.error = message;
  return row;
}

// The cases, checked on every core once the isolated child has read every file; each
// case's rows go to its own slot, so the output keeps the files' and cases' order whatever thread
// finishes first. (The reference and the checks keep no mutable state outside a case.)
class ParallelCaseChecker {
 public:
  ParallelCaseChecker(bool optimized, unsigned threads) : optimized_(optimized) {
    for (unsigned i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
  }
  ~ParallelCaseChecker() { finish(); }

  // Rows known without checking (a file or case that could not be read).
  void add_rows(std::vector<CheckRow> rows) {
    std::lock_guard lock(mutex_);
    slots_.push_back(Slot{std::move(rows), std::nullopt, {}, {}});
  }
  void add_case(const std::string& file, CaseRead&& one) {
    std::lock_guard lock(mutex_);
    slots_.push_back(Slot{{}, std::move(one.fixture), file, one.name});
    pending_.push_back(slots_.size() - 1);
    ready_.notify_one();
  }
  // Waits for every case; the rows in the order they were added.
  std::vector<CheckRow> rows() {
    finish();
    std::vector<CheckRow> all;
    for (Slot& s : slots_) all.insert(all.end(), std::make_move_iterator(s.rows.begin()), std::make_move_iterator(s.rows.end()));
    return all;
  }

 private:
  struct Slot {
    std::vector<CheckRow> rows;
    std::optional<FixtureCase> fixture;  // to check; empty once checked
    std::string file, case_name;
  };

  void finish() {
    {
      std::lock_guard lock(mutex_);
      closed_ = true;
    }
    ready_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  void work() {
    for (;;) {
      Slot* slot = nullptr;
      {
        std::unique_lock lock(mutex_);
        ready_.wait(lock, [&] { return next_ < pending_.size() || closed_; });
        if (next_ == pending_.size()) return;
        slot = &slots_[pending_[next_++]];  // a deque's elements stay put while others are appended
      }
      slot->rows = check(*slot);
      slot->fixture.reset();  // free the tensors as soon as they are checked
    }
  }

  std::vector<CheckRow> check(const Slot& s) const {
    try {
      const FixtureCase& c = *s.fixture;
      std::vector<CheckRow> rows = check_case(c);
      // A case the reference refuses is one ERROR row saying why, not one more per kernel path.
      const bool refused = rows.size() == 1 && rows.front().status == CheckStatus::Error && rows.front().output.empty();
      if (optimized_ && !refused) {  // the fused kernels on the same case (host emulation; the GPU where present)
        for (const auto& more : {check_case_optimized(c), check_case_optimized_merge(c), check_case_optimized_eetq_merge(c)})
          rows.insert(rows.end(), more.begin(), more.end());
      }
      return rows;
    } catch (const Error& e) {
      return {error_row(s.file, s.case_name, e.what())};
    }
  }

  bool optimized_;
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Slot> slots_;
  std::vector<std::size_t> pending_;  // the slots of cases to check, in order
  std::size_t next_ = 0;
  bool closed_ = false;
  std::vector<std::thread> workers_;
};

// QORACLE_CHECK_THREADS=N checks on N threads (the test that the report does not depend on it
// uses 1); default: every core.
unsigned check_threads() {
  if (const char* env = std::getenv("QORACLE_CHECK_THREADS")) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end == env || *end != '\0' || n < 1 || n > 1024)
      throw Error(std::string("QORACLE_CHECK_THREADS: expected a thread count from 1 to 1024, got '") + env + "'");
    return static_cast<unsigned>(n);
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

}  // namespace

// One line for every file without checksums, not one note per file before the table.
// The rows' notes (e.g. a newer PEFT release judged by the newest verified one's rules), each with
// the number of cases it holds for: said once after the table, not per row.
static std::map<std::string, int> row_notes(const std::vector<CheckRow>& rows) {
  std::map<std::string, std::set<std::string>> cases;
  for (const CheckRow& r : rows)
    if (!r.note.empty()) cases[r.note].insert(r.file + "::" + r.case_name);
  std::map<std::string, int> out;
  for (const auto& [note, names] : cases) out[note] = static_cast<int>(names.size());
  return out;
}

static std::string unsealed_summary(const std::vector<std::string>& files) {
  std::string s = std::to_string(files.size()) + (files.size() == 1 ? " file" : " files") +
                  " written without checksums, so damage to their data cannot be told from a failing layer "
                  "(`qoracle seal DIR_OR_FILE` adds them; fixtures/SCHEMA.md): ";
  constexpr std::size_t kNamed = 5;
  for (std::size_t i = 0; i < files.size() && i < kNamed; ++i) s += (i ? ", " : "") + files[i];
  if (files.size() > kNamed) s += " and " + std::to_string(files.size() - kNamed) + " more";
  return s;
}

int check_command(const std::vector<std::string>& args) {
  std::vector<std::string> paths;
  bool json = false, optimized = true;
  std::string report = "reports/conformance.md";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "--json") json = true;
    else if (args[i] == "--no-report") report.clear();
    else if (args[i] == "--no-optimized") optimized = false;
    else if (args[i] == "--report" && i + 1 < args.size()) report = args[++i];
    else if (args[i].rfind("--", 0) == 0) throw Error("unknown option '" + args[i] + "'");
    else paths.push_back(args[i]);
  }
  if (paths.empty()) throw Error("expected at least one fixture file or folder");

  const auto files = fixture_files(paths);
  if (files.empty()) throw Error("no .h5 fixture files found under the given paths");
  // Every file is read first, in the isolated child, and only then do the checking threads start:
  // forking (the reader starts a new child after one crashes on a damaged file) while other threads
  // run can leave the child holding a lock one of them had (seen: 2 of 80 damaged copies hung
  // under ASan when the reads and the checks overlapped).
  std::vector<FileRead> reads;
  read_fixture_files_isolated(files, [&](FileRead&& read) { reads.push_back(std::move(read)); });
  // Cases run in parallel, one per core: each case's own products stay on its thread.
  set_reference_threads(1);
  ParallelCaseChecker checker(optimized, check_threads());
  std::vector<std::string> notes, unsealed;  // said once, after the table
  for (FileRead& read : reads) {
    const std::string& file = read.file;
    for (const auto& note : read.notes) {
      if (note.find(": written without checksums") != std::string::npos) unsealed.push_back(file);
      else notes.push_back(note);
    }
    if (!read.error.empty()) checker.add_rows({error_row(file, "", read.error)});
    for (CaseRead& one : read.cases) {
      if (!one.fixture) checker.add_rows({error_row(file, one.name, one.error)});
      else checker.add_case(file, std::move(one));
    }
  }
  const std::vector<CheckRow> rows = checker.rows();

  if (json) print_json(std::cout, rows);
  else print_table(std::cout, rows);
  for (const auto& note : notes) std::cerr << "note: " << note << "\n";
  if (!unsealed.empty()) std::cerr << "note: " << unsealed_summary(unsealed) << "\n";
  for (const auto& [note, cases] : row_notes(rows))
    std::cerr << "note: " << cases << " case(s): " << note << "\n";
  const Tally t = tally(rows);
  if (!report.empty()) {
    std::ofstream md = open_report(report);
    write_markdown_report(md, rows);
  }
  (json ? std::cerr : std::cout) << "qoracle check: " << t.passed << " passed, " << t.failed << " failed, "
                                 << t.errors << " errors" << (report.empty() ? "" : " (report: " + report + ")")
                                 << "\n";
  return (t.failed == 0 && t.errors == 0) ? 0 : 1;
}

}  // namespace qoracle::cli

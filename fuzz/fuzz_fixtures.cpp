// libFuzzer target over what qoracle reads from files it did not write (issue 24): a fixture file
// through the reader and the case runner, a serialized case through the parent's side of the
// isolated reader, an EETQ checkpoint through eetq-decode's reading and decoding. The first byte
// of an input picks which (seeds: fuzz/corpus, made by QORACLE_FUZZ_WRITE_SEEDS=DIR).
//
// A finding is anything but a clean qoracle::Error: a sanitizer report, a crash, another
// exception, a hang. HDF5 itself runs first in a child, exactly as qoracle runs it
// (fixtures/format/isolated_read.hpp): an input that crashes or hangs libhdf5 is contained there,
// as `qoracle check` contains it, and is not fuzzed further; every other input is read again in
// this process, where the sanitizers and the coverage see qoracle's own code.
#include <fcntl.h>
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "conformance/case_runner.hpp"
#include "fixtures/format/case_serialization.hpp"
#include "fixtures/format/checkpoint_layer.hpp"
#include "fixtures/format/fixture_file.hpp"
#include "fixtures/format/isolated_read.hpp"
#include "fuzz/seed_corpus.hpp"
#include "reference/eetq_linear.hpp"
#include "reference/error.hpp"

using namespace qoracle;

namespace {

// The input as a file (HDF5 reads files), one per process; removed when the process exits.
const std::string& scratch() {
  static const std::string path = [] {
    std::atexit([] { std::remove(("/tmp/qoracle-fuzz-" + std::to_string(getpid()) + ".h5").c_str()); });
    return "/tmp/qoracle-fuzz-" + std::to_string(getpid()) + ".h5";
  }();
  return path;
}

void write_scratch(const std::uint8_t* data, std::size_t size) {
  std::ofstream(scratch(), std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                    static_cast<std::streamsize>(size));
}

// In the child, an ASan report (an overflow that ASan's memcpy interceptor saw inside libhdf5,
// say) goes to the parent as a frame, so the parent can tell whose code it was; the child must
// not write libFuzzer's crash artifact for it. Signals are caught by the isolated reader's own
// handler, whose backtrace costs no symbolizer run (the fuzzer meets thousands).
const SendFn* g_send = nullptr;
extern "C" void send_asan_report(const char* report) {
  if (g_send) (*g_send)('R', report);
}

// Whose code an ASan report's stack reaches first, going up from the top: libhdf5's (contained,
// as qoracle contains it) or qoracle's. The sanitizer runtime and libc are passed over.
bool report_is_in_hdf5(const std::string& report) {
  std::istringstream lines(report);
  for (std::string line; std::getline(lines, line);) {
    const auto first = line.find_first_not_of(' ');
    if (first == std::string::npos || line[first] != '#') continue;
    if (line.find("libhdf5") != std::string::npos) return true;
    for (const char* ours : {" qoracle::", "LLVMFuzzerTestOneInput", "/fixtures/format/", "/conformance/", "/reference/"})
      if (line.find(ours) != std::string::npos) return false;
  }
  return false;
}

// The same for a signal's backtrace. In this binary ASan's runtime is linked in and unnamed, so
// frames of the executable itself (no ".so") are passed over like libc's: the first other object
// decides. (A crash in one of qoracle's HDF5 callbacks, which only collect names, would count as
// libhdf5's.)
bool trace_is_in_hdf5(const std::string& trace) {
  std::istringstream lines(trace);
  std::string line;
  for (bool past_handler = false; std::getline(lines, line);) {
    const std::string object = line.substr(0, line.find('('));
    if (!past_handler) {  // the handler's frames end at libc's signal trampoline
      past_handler = object.find("libc.so") != std::string::npos;
      continue;
    }
    if (object.find(".so") == std::string::npos || object.find("libc.so") != std::string::npos ||
        object.find("libstdc++") != std::string::npos || object.find("libgcc") != std::string::npos)
      continue;
    return object.find("libhdf5") != std::string::npos;
  }
  return false;
}

bool hdf5_survives(const std::function<void()>& read) {
  std::string report;
  const ChildOutcome out = run_isolated(
      [&](const SendFn& send) {
        const int null = open("/dev/null", O_WRONLY);  // the library's (and ASan's) noise as it crashes
        if (null >= 0) dup2(null, 2);
        g_send = &send;
        __asan_set_error_report_callback(send_asan_report);
        __sanitizer_set_death_callback(nullptr);  // libFuzzer's would record the input as a crash
        try {
          read();
        } catch (...) {
        }
      },
      [&](ChildFrame&& f) {
        if (f.tag == 'R') report = std::move(f.payload);
      },
      IsolationLimits{10});
  if (out.finished) return true;
  if (!report.empty()) return !report_is_in_hdf5(report);  // qoracle's code: reproduce it here
  if (!out.trace.empty()) return !trace_is_in_hdf5(out.trace);
  return !out.died_in_hdf5;  // a hang is contained; anything else is reproduced here
}

void check(const FixtureCase& c) {
  try {
    check_case(c);
  } catch (const Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (const char* dir = std::getenv("QORACLE_FUZZ_WRITE_SEEDS")) std::exit(fuzz::write_seed_corpus(dir));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const auto mode = static_cast<fuzz::Mode>(data[0] % fuzz::kModes);
  ++data, --size;
  switch (mode) {
    case fuzz::Mode::FixtureFile: {
      write_scratch(data, size);
      if (!hdf5_survives([] { read_fixture_file(scratch()); })) return 0;
      for (const CaseRead& c : read_fixture_file(scratch()).cases)
        if (c.fixture) check(*c.fixture);
      return 0;
    }
    case fuzz::Mode::SerializedCase: {
      try {
        check(deserialize_case({reinterpret_cast<const char*>(data), size}));
      } catch (const Error&) {
      }
      return 0;
    }
    case fuzz::Mode::Checkpoint: {
      write_scratch(data, size);
      const auto read = [] { return read_checkpoint_layer(scratch(), fuzz::kCheckpointPrefix); };
      if (!hdf5_survives([&] { read(); })) return 0;
      try {
        const CheckpointLayer layer = read();
        std::optional<Vector> bias;
        if (layer.bias) bias = layer.bias->as_vector("bias");
        for (EetqLayout layout : {EetqLayout::Interleaved, EetqLayout::Volta, EetqLayout::Plain}) {
          try {
            eetq_from_checkpoint_tensors(layer.weight, layer.weight_scales, bias, layout, EetqKernel::Exact, "fuzz");
          } catch (const Error&) {
          }
        }
      } catch (const Error&) {
      }
      return 0;
    }
  }
  return 0;
}

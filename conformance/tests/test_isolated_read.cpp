// The isolated reader (fixtures/format/isolated_read.hpp): a child that crashes, hangs or throws
// becomes an error naming what it was reading, and a file decoded in a child equals the file
// decoded in process, field for field.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include "committed_cases.hpp"
#include "fixtures/format/case_serialization.hpp"
#include "fixtures/format/isolated_read.hpp"
#include "test_support.hpp"

using namespace qoracle;
using namespace qoracle::testing;

TEST(IsolatedRead, ChildThatFinishesHandsBackEveryFrame) {
  const ChildOutcome out = run_isolated([](const SendFn& send) {
    send('a', "one");
    send('b', std::string(300000, 'x'));  // larger than a pipe's buffer
  });
  EXPECT_TRUE(out.finished) << out.failure;
  ASSERT_EQ(out.frames.size(), 2u);
  EXPECT_EQ(out.frames[0].payload, "one");
  EXPECT_EQ(out.frames[1].payload.size(), 300000u);
}

TEST(IsolatedRead, CrashInTheChildIsAnErrorNamingTheSignal) {
  const ChildOutcome out = run_isolated([](const SendFn& send) {
    send('S', "before");
    raise(SIGSEGV);
  });
  EXPECT_FALSE(out.finished);
  EXPECT_NE(out.failure.find("SIGSEGV"), std::string::npos) << out.failure;
  ASSERT_EQ(out.frames.size(), 1u);  // what it sent before the crash survives
  EXPECT_EQ(out.frames[0].payload, "before");
}

TEST(IsolatedRead, SilentChildIsStoppedAsAHang) {
  const auto start = std::chrono::steady_clock::now();
  const ChildOutcome out = run_isolated([](const SendFn&) { std::this_thread::sleep_for(std::chrono::seconds(30)); },
                                        IsolationLimits{0.3});
  EXPECT_FALSE(out.finished);
  EXPECT_NE(out.failure.find("sent nothing for 0.3 s"), std::string::npos) << out.failure;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

TEST(IsolatedRead, ExceptionEscapingTheChildIsReported) {
  const ChildOutcome out = run_isolated([](const SendFn&) { throw Error("boom in the child"); });
  EXPECT_FALSE(out.finished);
  EXPECT_NE(out.failure.find("boom in the child"), std::string::npos) << out.failure;
}

// A grandchild (another thread's reader, a subprocess) can hold the pipe's write end long after
// the child is done: the parent watches the child itself, not only the pipe's end of file.
TEST(IsolatedRead, ChildThatIsDoneIsSeenWhileAnotherProcessHoldsThePipe) {
  const auto start = std::chrono::steady_clock::now();
  const ChildOutcome out = run_isolated([](const SendFn& send) {
    send('a', "done");
    if (fork() == 0) {  // inherits the write end
      std::this_thread::sleep_for(std::chrono::seconds(4));
      _exit(0);
    }
  });
  EXPECT_TRUE(out.finished) << out.failure;
  ASSERT_EQ(out.frames.size(), 1u);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
}

// With SIGCHLD ignored (Python programs do it) the kernel reaps the child and its exit status is
// lost: the end is read from the frames instead, never taken for a clean exit.
TEST(IsolatedRead, IgnoredSigchldStillTellsFinishedFromCrashed) {
  struct sigaction ignore {}, previous {};
  ignore.sa_handler = SIG_IGN;
  sigaction(SIGCHLD, &ignore, &previous);
  const ChildOutcome done = run_isolated([](const SendFn& send) { send('a', "x"); });
  const ChildOutcome crashed = run_isolated([](const SendFn& send) {
    send('S', "before");
    raise(SIGSEGV);
  });
  const ChildOutcome threw = run_isolated([](const SendFn&) { throw Error("boom"); });
  sigaction(SIGCHLD, &previous, nullptr);
  EXPECT_TRUE(done.finished) << done.failure;
  EXPECT_FALSE(crashed.finished);
  EXPECT_NE(crashed.failure.find("crashed"), std::string::npos) << crashed.failure;
  EXPECT_FALSE(threw.finished);
  EXPECT_NE(threw.failure.find("boom"), std::string::npos) << threw.failure;
}

// The child does not run the parent's handlers (Python's SIGINT): Ctrl-C ends it.
TEST(IsolatedRead, ChildGetsDefaultSignalActions) {
  struct sigaction swallow {}, previous {};
  swallow.sa_handler = [](int) {};
  sigaction(SIGINT, &swallow, &previous);
  const ChildOutcome out = run_isolated([](const SendFn& send) {
    raise(SIGINT);
    send('a', "survived");
  });
  sigaction(SIGINT, &previous, nullptr);
  EXPECT_FALSE(out.finished);
  EXPECT_TRUE(out.frames.empty());
  EXPECT_NE(out.failure.find("signal 2"), std::string::npos) << out.failure;
}

TEST(IsolatedRead, OnlyHdf5sFailuresAreCalledDamagedMetadata) {
  ChildOutcome out;
  out.failure = "the reader exited with status 3: out of memory";
  EXPECT_EQ(why_unread(out), "it could not be read (the reader exited with status 3: out of memory)");
  out.died_in_hdf5 = true;
  out.failure = "the library crashed in H5HG_read, SIGSEGV";
  EXPECT_EQ(why_unread(out), "HDF5 could not read it (damaged metadata; the library crashed in H5HG_read, SIGSEGV)");
}

// Damaged copies of old (unsealed) fixtures that crash Debian's libhdf5 1.10.8 when read in
// process (found by tools/damage_sweep; the file names say where it crashed). Isolated, each is
// an error naming the file and the case, and the cases after the crash are still read.
TEST(IsolatedRead, FilesThatCrashHdf5AreErrorsNamingFileAndCase) {
  for (const auto& entry : std::filesystem::directory_iterator(source_path("conformance/tests/data/crashes_hdf5"))) {
    const std::string path = entry.path().string();
    SCOPED_TRACE(path);
    const FileRead read = read_fixture_file_isolated(path);
    std::size_t errors = read.error.empty() ? 0 : 1;
    for (const CaseRead& c : read.cases) {
      if (c.fixture) continue;
      ++errors;
      EXPECT_NE(c.error.find(path), std::string::npos) << c.error;
      EXPECT_NE(c.error.find(c.name), std::string::npos) << c.error;
    }
    EXPECT_GE(errors, 1u);
    std::cout << path << ": " << read.cases.size() << " case(s), " << errors << " error(s)"
              << (read.cases.empty() ? "" : "; first: " + (read.cases.front().fixture ? std::string("read") : read.cases.front().error))
              << "\n";
  }
}

TEST(IsolatedRead, SameCasesAsInProcessForEveryCommittedFixture) {
  std::set<std::string> files;
  for (const CaseRef& r : committed_cases()) files.insert(r.file);
  std::size_t cases = 0;
  for (const std::string& file : files) {
    SCOPED_TRACE(file);
    const FileRead in_process = read_fixture_file(file);
    const FileRead isolated = read_fixture_file_isolated(file);
    EXPECT_EQ(isolated.error, in_process.error);
    EXPECT_EQ(isolated.notes, in_process.notes);
    ASSERT_EQ(isolated.cases.size(), in_process.cases.size());
    for (std::size_t i = 0; i < isolated.cases.size(); ++i) {
      ASSERT_TRUE(isolated.cases[i].fixture.has_value()) << isolated.cases[i].error;
      // operator== covers every field of FixtureCase: one the serialization forgot shows here.
      EXPECT_TRUE(*isolated.cases[i].fixture == *in_process.cases[i].fixture) << isolated.cases[i].name;
      ++cases;
    }
  }
  EXPECT_GE(cases, 100u);
}

TEST(IsolatedRead, ExceptionInTheParentsHandlerStopsTheChild) {
  const auto start = std::chrono::steady_clock::now();
  EXPECT_THROW(run_isolated(
                   [](const SendFn& send) {
                     send('a', "x");
                     std::this_thread::sleep_for(std::chrono::seconds(30));
                   },
                   [](ChildFrame&&) { throw Error("refused in the parent"); }),
               Error);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));
}

// Result files: written as a new file and renamed over a regular file only; links, devices and
// write failures are errors with the OS's reason, and no temporary file is left behind.
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/case.hpp"
#include "core/output_file.hpp"

namespace pa {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
  const std::string d = ::testing::TempDir() + "/pacheck_output_file_" + name + "_" + std::to_string(::getpid());
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}
std::string slurp(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}
size_t entries(const std::string& dir) {
  return size_t(std::distance(fs::directory_iterator(dir), fs::directory_iterator()));
}

TEST(OutputFile, ReplacesARegularFileAndLeavesNothingElse) {
  const std::string d = fresh_dir("regular"), p = d + "/r.json";
  const mode_t old_mask = ::umask(022);
  write_file_atomic(p, "old\n");
  write_file_atomic(p, "new\n");
  ::umask(old_mask);
  EXPECT_EQ(slurp(p), "new\n");
  EXPECT_EQ(entries(d), 1u);
  EXPECT_EQ(fs::status(p).permissions(), fs::perms(0644)) << "as readable as any file the user creates";
}

TEST(OutputFile, ASymbolicLinkIsRefusedUnlessFollowedThenTheLinkStays) {
  const std::string d = fresh_dir("link"), real = d + "/real.json", link = d + "/link.json";
  write_file_atomic(real, "kept\n");
  fs::create_symlink("real.json", link);
  const std::string msg = error_of([&] { write_file_atomic(link, "x\n"); });
  EXPECT_NE(msg.find(link + ": is a symbolic link"), std::string::npos) << msg;
  EXPECT_EQ(slurp(real), "kept\n");
  write_file_atomic(link, "through\n", /*follow_symlink=*/true);
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_EQ(slurp(real), "through\n");
  EXPECT_EQ(entries(d), 2u);
}

TEST(OutputFile, ADeviceOrDirectoryIsNeverReplaced) {
  const std::string msg = error_of([] { write_file_atomic("/dev/null", "x"); });
  EXPECT_NE(msg.find("/dev/null: is a character device"), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_character_file("/dev/null"));
  const std::string d = fresh_dir("dir");
  EXPECT_NE(error_of([&] { write_file_atomic(d, "x"); }).find("is a directory"), std::string::npos);
  EXPECT_NE(error_of([] { open_output_stream("/dev/null"); }).find("is a character device"), std::string::npos);
  EXPECT_NE(error_of([] { remove_previous_output("/dev/null", false); }).find("character device"), std::string::npos);
}

TEST(OutputFile, AWriteErrorGivesTheOsReasonAndRemovesTheTemporaryFile) {
  // A file-size limit makes write() fail as a full disk does (EFBIG instead of ENOSPC), in a child
  // so the limit does not outlive the test.
  const std::string d = fresh_dir("full"), p = d + "/r.json";
  write_file_atomic(p, "previous\n");
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::signal(SIGXFSZ, SIG_IGN);
    const rlimit lim{4096, 4096};
    ::setrlimit(RLIMIT_FSIZE, &lim);
    const std::string msg = error_of([&] { write_file_atomic(p, std::string(100000, 'x')); });
    const bool named = msg.find(p + ": cannot write") != std::string::npos && msg.find("File too large") != std::string::npos;
    std::_Exit(named ? 0 : 1);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "the message names the file and strerror(EFBIG)";
  EXPECT_EQ(slurp(p), "previous\n") << "a failed write never replaces the target";
  EXPECT_EQ(entries(d), 1u) << "no temporary file is left behind";
}

TEST(OutputFile, StreamWriteErrorsAreReported) {
  std::FILE* f = std::fopen("/dev/full", "w");
  ASSERT_NE(f, nullptr);
  const std::string msg = error_of([&] { write_stream(f, "a record\n", "/dev/full"); });
  std::fclose(f);
  EXPECT_NE(msg.find("/dev/full: write failed: No space left on device"), std::string::npos) << msg;
}

TEST(OutputFile, RemovePreviousOutputRemovesOnlyARegularFile) {
  const std::string d = fresh_dir("previous"), p = d + "/r.json";
  remove_previous_output(p, false);  // absent: nothing to do
  write_file_atomic(p, "stale\n");
  remove_previous_output(p, false);
  EXPECT_FALSE(fs::exists(p));
  const std::string partial = d + "/r.json.partial";
  fs::create_symlink("/etc/passwd", partial);
  EXPECT_NE(error_of([&] { open_output_stream(partial); }).find("symbolic link"), std::string::npos);
}

}  // namespace
}  // namespace pa

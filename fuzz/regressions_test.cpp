// Every input a fuzzer once crashed on (fuzz/regressions/<target>/), replayed through the same
// reader on every build: a fixed finding stays fixed without clang or libFuzzer.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "fuzz/targets.hpp"

namespace pa::fuzz {
namespace {

namespace fs = std::filesystem;

size_t replay(const std::string& target, void (*reader)(const uint8_t*, size_t)) {
  const fs::path dir = fs::path(PACHECK_FUZZ_DIR) / "regressions" / target;
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename() != "README.md") files.push_back(e.path());
  for (const fs::path& f : files) {
    std::ifstream in(f, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(f.string());
    reader(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());  // returns, or the test dies
  }
  return files.size();
}

TEST(FuzzRegressions, CaseReader) { EXPECT_GT(replay("case_reader", case_reader), 0u); }
TEST(FuzzRegressions, ReportReader) { EXPECT_GT(replay("report_reader", report_reader), 0u); }
TEST(FuzzRegressions, WorkerProtocol) { EXPECT_GT(replay("worker_protocol", worker_protocol), 0u); }

}  // namespace
}  // namespace pa::fuzz

// The program against hostile inputs and outputs: deep or out-of-range JSON in every reader,
// outputs at links and devices, incomplete, empty or mismatched reports given to merge and diff.
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

const std::string& dir() {
  static const std::string d = [] {
    const std::string p = ::testing::TempDir() + "/pacheck_io_" + std::to_string(::getpid());
    fs::remove_all(p);
    fs::create_directories(p);
    return p;
  }();
  return d;
}
std::string tmp(const std::string& name) { return dir() + "/" + name; }
std::string slurp(const std::string& path) {
  std::ifstream f(path);
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}
void put(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

struct Result {
  int rc = -1;
  std::string out;
};
Result pacheck(const std::string& args) {
  const std::string out = tmp("out.txt");
  const int st = std::system((std::string(PACHECK_BIN) + " " + args + " >" + out + " 2>&1").c_str());
  return {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(out)};
}

// One small run's report, made once: a case file of one case on v1.
const std::string& one_report() {
  static const std::string r = [] {
    put(tmp("one_case.json"), R"({"num_seqs": 1, "context_lens": [40], "head_size": 64})");
    const std::string rep = tmp("one.json");
    const Result res = pacheck("run --case " + tmp("one_case.json") + " --backend host --paths v1 --quiet --report " + rep);
    EXPECT_EQ(res.rc, 0) << res.out;
    return rep;
  }();
  return r;
}

TEST(Inputs, DeepJsonIsAnInputErrorInEveryReader) {
  const std::string deep = tmp("deep.json");
  put(deep, std::string(75000, '[') + std::string(75000, ']'));
  for (const std::string& cmd : {"replay --case " + deep, "run --backend host --case " + deep,
                                 "diff " + deep + " " + deep, "merge " + deep + " -o " + tmp("m.json"),
                                 "report " + deep + " -o " + tmp("r.html")}) {
    const Result r = pacheck(cmd);
    EXPECT_EQ(r.rc, 2) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find(deep + ": JSON nested deeper than 256 levels"), std::string::npos) << cmd << "\n" << r.out;
  }
  fs::create_directories(tmp("deep_dir"));
  fs::copy_file(deep, tmp("deep_dir/x.json"), fs::copy_options::overwrite_existing);
  EXPECT_EQ(pacheck("run --backend host --regression " + tmp("deep_dir")).rc, 2);
}

TEST(Inputs, NumbersOutOfRangeNameTheFileFieldAndValue) {
  const std::pair<const char*, const char*> bad[] = {
      {R"({"num_seqs": 1, "context_lens": [64], "softmax_scale": 1e999})", "softmax_scale"},
      {R"({"num_seqs": 1e10, "context_lens": [64]})", "num_seqs=10000000000"},
      {R"({"num_blocks": 1e19, "context_lens": [64]})", "num_blocks=1e+19"},
      {R"({"num_seqs": 4294967297, "context_lens": [64]})", "num_seqs=4294967297"},
      {R"({"seed": -1, "context_lens": [64]})", "seed=-1"},
      {R"({"head_size": 64.7, "context_lens": [64]})", "head_size=64.7"},
      {R"({"page_pad": 1152921504606846976, "context_lens": [64]})", "page_pad=1152921504606846976"}};
  for (const auto& [text, named] : bad) {
    const std::string f = tmp("num.json");
    put(f, text);
    const Result r = pacheck("replay --backend host --paths v1 --case " + f);
    EXPECT_EQ(r.rc, 2) << text << "\n" << r.out;
    EXPECT_NE(r.out.find(f), std::string::npos) << text << "\n" << r.out;
    EXPECT_NE(r.out.find(named), std::string::npos) << text << "\n" << r.out;
    EXPECT_EQ(r.out.find("internal error"), std::string::npos) << r.out;
  }
  // A 50 MB name is refused at the limit rather than copied into every record.
  put(tmp("name.json"), "{\"name\": \"" + std::string(50 << 20, 'n') + "\", \"context_lens\": [64]}");
  const Result r = pacheck("replay --backend host --paths v1 --case " + tmp("name.json"));
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.out.find("the limit is 1048576 bytes per string"), std::string::npos) << r.out.substr(0, 400);
}

TEST(Outputs, LinksAndDevicesAreRefusedAndErrorsGiveTheReason) {
  const std::string rep = one_report();
  const std::string real = tmp("real.html"), link = tmp("link.html");
  put(real, "precious");
  fs::remove(link);
  fs::create_symlink(real, link);
  Result r = pacheck("report " + rep + " -o " + link);
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("is a symbolic link"), std::string::npos) << r.out;
  EXPECT_EQ(slurp(real), "precious");
  r = pacheck("report " + rep + " -o " + link + " --follow-symlinks");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(fs::is_symlink(link));
  EXPECT_NE(slurp(real).find("<html"), std::string::npos);
  for (const std::string& cmd : {"report " + rep + " -o /dev/null", "merge " + rep + " -o /dev/null",
                                 "run --case " + tmp("one_case.json") + " --backend host --paths v1 --report /dev/null"}) {
    r = pacheck(cmd);
    EXPECT_EQ(r.rc, 2) << cmd << "\n" << r.out;
    EXPECT_NE(r.out.find("/dev/null: is a character device"), std::string::npos) << cmd << "\n" << r.out;
    EXPECT_TRUE(fs::is_character_file("/dev/null"));
  }
  r = pacheck("merge " + rep + " -o " + tmp("no/such/dir/m.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("No such file or directory"), std::string::npos) << r.out;
  for (const auto& e : fs::directory_iterator(dir()))
    EXPECT_EQ(e.path().string().find(".tmp"), std::string::npos) << e.path();
}

TEST(MergeAndDiff, RefuseIncompleteEmptyAndMismatchedReportsUnlessAllowed) {
  const std::string rep = one_report();
  json doc = json::parse(slurp(rep));
  // A killed run: its .partial file.
  const std::string partial = tmp("killed.json.partial");
  {
    std::ofstream f(partial);
    f << json{{"format", "pacheck-report-partial"}, {"context", doc["context"]}}.dump() << "\n";
  }
  Result r = pacheck("merge " + partial + " -o " + tmp("m.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find(partial + ": an incomplete report"), std::string::npos) << r.out;
  r = pacheck("diff " + rep + " " + partial);
  EXPECT_EQ(r.rc, 2) << r.out;
  r = pacheck("merge " + partial + " -o " + tmp("m.json") + " --allow-partial");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(json::parse(slurp(tmp("m.json")))["summary"]["complete"], false) << "the merge says it is incomplete";
  // An empty report, and one of another suite.
  json empty = doc;
  empty["cases"] = json::array();
  for (const char* k : {"cases", "records", "Ok", "Fail", "NotSupported", "Skipped"}) empty["summary"][k] = 0;
  put(tmp("empty.json"), empty.dump());
  r = pacheck("diff " + rep + " " + tmp("empty.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("a report with no record"), std::string::npos) << r.out;
  json other = doc;
  other["context"]["suite"] = "smoke";
  put(tmp("other.json"), other.dump());
  r = pacheck("diff " + rep + " " + tmp("other.json"));
  EXPECT_EQ(r.rc, 2) << r.out;
  EXPECT_NE(r.out.find("suite 'smoke'"), std::string::npos) << r.out;
  EXPECT_EQ(pacheck("diff " + rep + " " + tmp("other.json") + " --allow-partial").rc, 0);
  EXPECT_EQ(pacheck("diff " + rep + " " + rep).rc, 0);
}

}  // namespace

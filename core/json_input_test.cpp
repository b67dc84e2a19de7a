// The guarded JSON reader every input goes through: nesting, size and number limits, and the
// checked integer conversions that case and report readers use.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <functional>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/case.hpp"
#include "core/json_input.hpp"

namespace pa {
namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

TEST(JsonInput, DeepNestingIsRefusedBeforeTheRecursiveParserSeesIt) {
  // 75,000 levels overflowed nlohmann's recursive descent (a segfault in every reader).
  const std::string deep = std::string(75000, '[') + std::string(75000, ']');
  const std::string msg = message_of([&] { parse_json(deep, "deep.json"); });
  EXPECT_NE(msg.find("deep.json: JSON nested deeper than 256 levels"), std::string::npos) << msg;
  EXPECT_THROW(try_parse_json(deep, "x"), InputError);
  const std::string objects = "{\"a\":" + std::string(300, '[') + std::string(300, ']') + "}";
  EXPECT_THROW(parse_json(objects, "x"), InputError);
  // At the limit it parses; brackets inside strings do not count.
  const std::string ok = std::string(kMaxJsonDepth, '[') + std::string(kMaxJsonDepth, ']');
  EXPECT_NO_THROW(parse_json(ok, "x"));
  EXPECT_NO_THROW(parse_json("{\"s\": \"" + std::string(1000, '[') + "\\\"[\"}", "x"));
}

TEST(JsonInput, NumberBeyondDoubleNamesTheFileAndTheField) {
  const std::string msg = message_of([] { parse_json(R"({"num_seqs": 1, "softmax_scale": 1e999})", "c.json"); });
  EXPECT_NE(msg.find("c.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("softmax_scale"), std::string::npos) << msg;
  EXPECT_NE(msg.find("1e999"), std::string::npos) << msg;
  EXPECT_NE(message_of([] { parse_json("[-1e400]", "c.json"); }).find("-1e400"), std::string::npos);
  EXPECT_NO_THROW(parse_json("[1e-999, 1.7e308]", "c.json"));  // underflow to 0 is a number, not an error
}

TEST(JsonInput, LongStringsAndBigInputsAreRefusedWithTheLimit) {
  const std::string big_name = "{\"name\": \"" + std::string(kMaxJsonString + 1, 'x') + "\"}";
  const std::string msg = message_of([&] { parse_json(big_name, "n.json"); });
  EXPECT_NE(msg.find("n.json: a string of " + std::to_string(kMaxJsonString + 1) + " bytes"), std::string::npos) << msg;
  EXPECT_NO_THROW(parse_json("{\"name\": \"" + std::string(kMaxJsonString, 'x') + "\"}", "n.json"));
  const std::string path = ::testing::TempDir() + "/pacheck_json_input_big.json";
  {
    std::ofstream f(path, std::ios::binary);
    f.seekp(std::streamoff(kMaxInputBytes));  // a sparse file one byte over the limit
    f.put(' ');
  }
  const std::string big = message_of([&] { read_file(path); });
  EXPECT_NE(big.find(path + ": " + std::to_string(kMaxInputBytes + 1) + " bytes; the limit"), std::string::npos) << big;
  std::remove(path.c_str());
}

TEST(JsonInput, InvalidJsonNamesWhereItCameFrom) {
  EXPECT_NE(message_of([] { parse_json("{\"a\": ", "flag --case"); }).find("flag --case: not valid JSON"), std::string::npos);
  EXPECT_FALSE(try_parse_json("{\"a\": ", "x").has_value());
  const std::string missing = message_of([] { read_file("/nonexistent/pacheck.json"); });
  EXPECT_NE(missing.find("/nonexistent/pacheck.json: cannot be read: No such file or directory"), std::string::npos)
      << missing;
}

TEST(JsonInteger, ConvertsOnlyValuesThatFit) {
  using nlohmann::json;
  EXPECT_EQ(json_integer<int32_t>(json(64)), 64);
  EXPECT_EQ(json_integer<int32_t>(json(64.0)), 64);  // an integral float is the same number
  EXPECT_FALSE(json_integer<int32_t>(json(64.7)));
  EXPECT_FALSE(json_integer<int32_t>(json(1e10)));
  EXPECT_FALSE(json_integer<int32_t>(json(int64_t(4294967297))));
  EXPECT_EQ(json_integer<int32_t>(json(INT32_MIN)), INT32_MIN);
  EXPECT_FALSE(json_integer<int32_t>(json(int64_t(INT32_MIN) - 1)));
  EXPECT_FALSE(json_integer<int64_t>(json(1e19)));
  EXPECT_FALSE(json_integer<int64_t>(json(9223372036854775808.0)));
  EXPECT_EQ(json_integer<int64_t>(json(-9223372036854775807.0 - 1)), INT64_MIN);
  EXPECT_FALSE(json_integer<uint64_t>(json(-1)));
  EXPECT_EQ(json_integer<uint64_t>(json(UINT64_MAX)), UINT64_MAX);
  EXPECT_FALSE(json_integer<uint64_t>(json(18446744073709551616.0)));
  EXPECT_FALSE(json_integer<int32_t>(json("64")));
  EXPECT_FALSE(json_integer<int32_t>(json(true)));
  EXPECT_FALSE(json_integer<int32_t>(json(std::nan(""))));
}

}  // namespace
}  // namespace pa

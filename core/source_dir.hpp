#pragma once
// Where this checkout's data lives (regression/cases, goldens/cases). Binaries carry the source
// directory they were configured in, but they also run elsewhere (a GPU machine with a copy of
// the tree): PACHECK_SOURCE_DIR overrides, then the compiled-in directory if it still exists,
// then the current directory.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace pa {

inline std::string source_dir(const char* compiled_in) {
  if (const char* e = std::getenv("PACHECK_SOURCE_DIR"); e && *e) return e;
  std::error_code ec;
  if (std::filesystem::is_directory(std::string(compiled_in) + "/regression", ec)) return compiled_in;
  return ".";
}

}  // namespace pa

#include "core/text.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <sys/stat.h>

#include "core/case.hpp"
#include "core/json_input.hpp"

namespace pa {

std::string read_file(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) throw InputError(path + ": cannot be read: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw InputError(path + ": is a directory, not a file");
  if (S_ISREG(st.st_mode) && uint64_t(st.st_size) > kMaxInputBytes)
    throw InputError(path + ": " + std::to_string(st.st_size) + " bytes; the limit on an input file is " +
                     std::to_string(kMaxInputBytes) + " bytes");
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw InputError(path + ": cannot be read: " + std::strerror(errno));
  std::string s;
  char buf[1 << 16];
  size_t n;
  // A pipe or device has no size to check first: stop one block past the limit.
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) {
    s.append(buf, n);
    if (s.size() > kMaxInputBytes) {
      std::fclose(f);
      throw InputError(path + ": more than " + std::to_string(kMaxInputBytes) + " bytes; the limit on an input file");
    }
  }
  const bool failed = std::ferror(f);
  const int err = errno;
  std::fclose(f);
  if (failed) throw InputError(path + ": read failed: " + std::strerror(err));
  return s;
}

}  // namespace pa

#include "core/text.hpp"

#include <fstream>
#include <sstream>

#include "core/case.hpp"

namespace pa {

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot be read");
  std::ostringstream s;
  s << f.rdbuf();
  return s.str();
}

}  // namespace pa

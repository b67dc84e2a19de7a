#include "core/output_file.hpp"

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/case.hpp"

namespace pa {

namespace {

[[noreturn]] void os_error(const std::string& what, int err) { throw InputError(what + ": " + std::strerror(err)); }

const char* kind_of(mode_t m) {
  if (S_ISDIR(m)) return "a directory";
  if (S_ISCHR(m)) return "a character device";
  if (S_ISBLK(m)) return "a block device";
  if (S_ISFIFO(m)) return "a FIFO";
  if (S_ISSOCK(m)) return "a socket";
  return "not a regular file";
}

// Writes all of `data` to `fd`, retrying short writes and EINTR; false with errno set on failure.
bool write_all(int fd, const char* data, size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, data, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    data += w;
    n -= size_t(w);
  }
  return true;
}

}  // namespace

std::string output_target(const std::string& path, bool follow_symlink) {
  if (path.empty()) throw InputError("an empty output file name");
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) {
    if (errno == ENOENT) return path;
    os_error(path + ": cannot inspect the output file", errno);
  }
  if (S_ISLNK(st.st_mode)) {
    if (!follow_symlink)
      throw InputError(path + ": is a symbolic link; pacheck does not write through one unless asked "
                       "(--follow-symlinks), so pass the file it names or that flag");
    char buf[PATH_MAX];
    if (!::realpath(path.c_str(), buf)) {
      if (errno != ENOENT) os_error(path + ": cannot resolve the symbolic link", errno);
      // A dangling link: it names a file still to be created.
      const ssize_t n = ::readlink(path.c_str(), buf, sizeof buf - 1);
      if (n < 0) os_error(path + ": cannot read the symbolic link", errno);
      buf[n] = 0;
      std::string to(buf);
      if (to[0] != '/') {
        const size_t slash = path.rfind('/');
        if (slash != std::string::npos) to = path.substr(0, slash + 1) + to;
      }
      return output_target(to, false);
    }
    return output_target(buf, false);
  }
  if (!S_ISREG(st.st_mode))
    throw InputError(path + ": is " + kind_of(st.st_mode) + "; an output file must be a regular file (or absent)");
  return path;
}

void write_file_atomic(const std::string& path, std::string_view content, bool follow_symlink) {
  const std::string target = output_target(path, follow_symlink);
  // Beside the target, so that rename() stays on one file system and is atomic.
  std::string tmp = target + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) os_error(path + ": cannot create a temporary file beside it (" + tmp + ")", errno);
  auto fail = [&](const std::string& what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    os_error(path + ": " + what + " " + tmp, err);
  };
  if (!write_all(fd, content.data(), content.size())) fail("cannot write");
  // fsync reports the delayed-allocation errors (a full disk) that write() did not.
  if (::fsync(fd) != 0 && errno != EINVAL && errno != EROFS) fail("cannot flush");
  // mkstemp creates the file 0600; a result file is as readable as any file this user creates.
  const mode_t mask = ::umask(0);
  ::umask(mask);
  ::fchmod(fd, 0666 & ~mask);
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    os_error(path + ": cannot close " + tmp, err);
  }
  if (::rename(tmp.c_str(), target.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    os_error(path + ": cannot rename " + tmp + " over it", err);
  }
}

void remove_previous_output(const std::string& path, bool follow_symlink) {
  const std::string target = output_target(path, follow_symlink);
  if (::unlink(target.c_str()) != 0 && errno != ENOENT)
    os_error(path + ": cannot remove the previous result (a run that dies must not leave it standing)", errno);
}

std::FILE* open_output_stream(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0644);
  if (fd < 0) {
    if (errno == ELOOP) throw InputError(path + ": is a symbolic link; pacheck does not write through one");
    os_error(path + ": cannot open for writing", errno);
  }
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    const int err = errno;
    ::close(fd);
    if (!S_ISREG(st.st_mode)) throw InputError(path + ": is " + kind_of(st.st_mode) + "; it must be a regular file");
    os_error(path + ": cannot inspect", err);
  }
  ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
  std::FILE* f = ::fdopen(fd, "w");
  if (!f) {
    const int err = errno;
    ::close(fd);
    os_error(path + ": cannot open for writing", err);
  }
  return f;
}

void write_stream(std::FILE* f, std::string_view text, const std::string& path) {
  if (std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fflush(f) != 0)
    os_error(path + ": write failed", errno);
}

}  // namespace pa

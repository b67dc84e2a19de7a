#include "worker/process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/case.hpp"
#include "worker/protocol.hpp"

#include "core/json_input.hpp"

namespace pa::worker {

namespace {

constexpr size_t kInitialBytes = 1 << 20;

std::string describe_status(int status) {
  if (WIFSIGNALED(status)) {
    const int sig = WTERMSIG(status);
    const char* name = sig == SIGSEGV ? "SIGSEGV" : sig == SIGABRT ? "SIGABRT" : sig == SIGBUS ? "SIGBUS"
                       : sig == SIGFPE ? "SIGFPE" : sig == SIGILL ? "SIGILL" : sig == SIGKILL ? "SIGKILL" : nullptr;
    return std::string("killed by ") + (name ? name : "signal " + std::to_string(sig)) + " (" + strsignal(sig) + ")";
  }
  if (WIFEXITED(status)) return "ended with exit status " + std::to_string(WEXITSTATUS(status));
  return "ended (wait status " + std::to_string(status) + ")";
}

void write_all(int fd, const std::string& s) {
  size_t done = 0;
  while (done < s.size()) {
    const ssize_t n = ::write(fd, s.data() + done, s.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the worker is gone: the read that follows reports it
    done += size_t(n);
  }
}

}  // namespace

Process::Process(std::vector<std::string> argv, double timeout_s) : argv_(std::move(argv)), timeout_s_(timeout_s) {
  // A worker that dies while we write to its pipe must not kill us with SIGPIPE.
  ::signal(SIGPIPE, SIG_IGN);
}

Process::~Process() {
  Failure ignored;
  if (pid_ > 0) {
    ::close(to_worker_);  // EOF on its request pipe: the worker exits on its own
    to_worker_ = -1;
    for (int i = 0; i < 50; ++i) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      ::usleep(2000);
    }
    if (pid_ > 0) stop_and_reap(&ignored, false);
  }
  if (from_worker_ >= 0) ::close(from_worker_);
  if (map_) ::munmap(map_, capacity_);
  if (memfd_ >= 0) ::close(memfd_);
}

uint8_t* Process::shared(size_t bytes) {
  if (memfd_ < 0) {
    memfd_ = ::memfd_create("pacheck-worker", 0);
    if (memfd_ < 0) throw std::runtime_error(std::string("memfd_create: ") + std::strerror(errno));
  }
  if (bytes <= capacity_ && map_) return map_;
  const size_t want = std::max(bytes, std::max(kInitialBytes, capacity_ * 2));
  if (map_) ::munmap(map_, capacity_);
  map_ = nullptr;
  if (::ftruncate(memfd_, off_t(want)) != 0)
    throw std::runtime_error("ftruncate of the worker's shared memory to " + std::to_string(want) +
                             " bytes: " + std::strerror(errno));
  void* m = ::mmap(nullptr, want, PROT_READ | PROT_WRITE, MAP_SHARED, memfd_, 0);
  if (m == MAP_FAILED) throw std::runtime_error(std::string("mmap of the worker's shared memory: ") + std::strerror(errno));
  map_ = static_cast<uint8_t*>(m);
  capacity_ = want;
  return map_;
}

void Process::start() {
  shared(kInitialBytes);
  int req[2], resp[2];
  if (::pipe2(req, O_CLOEXEC) != 0 || ::pipe2(resp, O_CLOEXEC) != 0)
    throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid == 0) {
    // Child: fds 3 (shared memory), 4 (requests), 5 (responses); stdout joins stderr so a kernel's
    // prints cannot corrupt the protocol.
    // Its own process group: a Ctrl-C or a CI cancellation signals the terminal's foreground group,
    // and pacheck, not the signal, decides what happens to the case in flight; and stopping the
    // worker stops whatever helpers its kernel started.
    ::setpgid(0, 0);
    const int mem = ::dup(memfd_), in = ::dup(req[0]), out = ::dup(resp[1]);
    ::dup2(mem, 3);
    ::dup2(in, 4);
    ::dup2(out, 5);
    ::dup2(2, 1);
    for (int fd : {3, 4, 5}) ::fcntl(fd, F_SETFD, 0);
    std::vector<char*> args;
    for (auto& a : argv_) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "pacheck worker: cannot execute %s: %s\n", args[0], std::strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid, pid);  // also here: whichever of parent and child runs first, the group exists
  ::close(req[0]);
  ::close(resp[1]);
  pid_ = pid;
  to_worker_ = req[1];
  from_worker_ = resp[0];
  pending_.clear();
  ++starts_;
  bool timed_out = false;
  // Loading a library or importing torch can take a while; the kernel timeout applies to launches.
  const auto line = read_line(std::max(timeout_s_, 120.0), &timed_out);
  std::string cmd;
  for (const auto& a : argv_) cmd += (cmd.empty() ? "" : " ") + a;
  if (!line) {
    Failure f;
    stop_and_reap(&f, timed_out);
    throw InputError("worker `" + cmd + "` did not start: " + f.message);
  }
  try {
    hello_ = parse_json(*line, "the worker's hello");  // bounded depth and sizes: the line is the worker's word
  } catch (const std::exception& e) {
    Failure f;
    stop_and_reap(&f, false);
    throw InputError("worker `" + cmd + "` sent a malformed hello: " + e.what());
  }
  if (!hello_.value("ok", false))
    throw InputError("worker `" + cmd + "` cannot serve: " + hello_.value("error", std::string("(no reason)")));
  if (hello_.value("protocol", 0) != kProtocolVersion)
    throw InputError("worker `" + cmd + "` speaks protocol " + std::to_string(hello_.value("protocol", 0)) +
                     ", pacheck speaks " + std::to_string(kProtocolVersion));
}

const nlohmann::json& Process::hello() {
  if (pid_ <= 0) start();
  return hello_;
}

std::optional<std::string> Process::read_line(double timeout_s, bool* timed_out) {
  *timed_out = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    if (const size_t nl = pending_.find('\n'); nl != std::string::npos) {
      std::string line = pending_.substr(0, nl);
      pending_.erase(0, nl + 1);
      return line;
    }
    const double left = std::chrono::duration<double>(deadline - std::chrono::steady_clock::now()).count();
    if (left <= 0) {
      *timed_out = true;
      return std::nullopt;
    }
    pollfd p{from_worker_, POLLIN, 0};
    const int r = ::poll(&p, 1, int(std::min(left * 1000.0, 100.0)) + 1);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      // A worker that died while a child of its kernel still holds the response pipe never
      // gives EOF: ask for its status instead of waiting for the timeout.
      if (pid_ > 0 && reaped_ < 0 && ::waitpid(pid_, &reaped_status_, WNOHANG) == pid_) {
        reaped_ = pid_;
        return std::nullopt;
      }
      continue;
    }
    char buf[65536];
    const ssize_t n = ::read(from_worker_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return std::nullopt;  // EOF: the worker is gone
    pending_.append(buf, size_t(n));
  }
}

void Process::stop_and_reap(Failure* failure, bool timed_out) {
  if (pid_ <= 0) return;
  int status = 0;
  if (reaped_ == pid_) {  // read_line saw it die
    status = reaped_status_;
    ::kill(-pid_, SIGKILL);  // and whatever its kernel left running in its group
    failure->metric = "crash";
    failure->message = "the worker was " + describe_status(status);
  } else if (timed_out) {
    ::kill(-pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    failure->metric = "timeout";
    failure->message = "no answer within " + std::to_string(int(timeout_s_)) + " s (--kernel-timeout); the worker was killed";
  } else {
    // The pipe closed: the worker is exiting; give it a moment, then make sure.
    for (int i = 0; i < 200 && ::waitpid(pid_, &status, WNOHANG) == 0; ++i) ::usleep(5000);
    if (::waitpid(pid_, &status, WNOHANG) == 0) {
      ::kill(-pid_, SIGKILL);
      ::waitpid(pid_, &status, 0);
    }
    ::kill(-pid_, SIGKILL);  // helpers its kernel started die with it
    failure->metric = "crash";
    failure->message = "the worker was " + describe_status(status);
  }
  reaped_ = -1;
  if (to_worker_ >= 0) ::close(to_worker_);
  if (from_worker_ >= 0) ::close(from_worker_);
  to_worker_ = from_worker_ = -1;
  pid_ = -1;
}

void Process::end() {
  if (pid_ <= 0) return;
  Failure ignored;
  stop_and_reap(&ignored, false);
}

std::optional<nlohmann::json> Process::request(const nlohmann::json& req, Failure* failure) {
  if (pid_ <= 0) start();
  // Every request carries an id that the answer echoes: a line that answers something else (a
  // kernel that forked, and a copy of the worker that answered too) is dropped, never taken for
  // this request's answer.
  nlohmann::json r = req;
  const int64_t id = ++next_id_;
  r["id"] = id;
  write_all(to_worker_, r.dump() + "\n");
  for (;;) {
    bool timed_out = false;
    const auto line = read_line(timeout_s_, &timed_out);
    if (!line) {
      stop_and_reap(failure, timed_out);
      return std::nullopt;
    }
    try {
      nlohmann::json resp = parse_json(*line, "the worker's answer");
      if (resp.is_object() && resp.contains("id") && resp["id"] != id) continue;
      return resp;
    } catch (const std::exception& e) {
      failure->metric = "crash";
      failure->message = std::string("the worker answered with malformed JSON: ") + e.what();
      Failure ignored;
      stop_and_reap(&ignored, true);
      return std::nullopt;
    }
  }
}

}  // namespace pa::worker

#pragma once
// One worker process and its channels (docs/worker-protocol.md): a memory file shared with it
// (fd 3), a request pipe (fd 4) and a response pipe (fd 5). A request that gets no answer -- the
// worker died, or said nothing within the timeout -- kills the worker and says why; the next
// request starts a fresh one. Nothing here knows about kernels: the caller speaks JSON.
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace pa::worker {

/// Why a request got no answer.
struct Failure {
  std::string metric;   // "crash" (the worker died) or "timeout" (killed after the timeout)
  std::string message;  // names the signal, the exit status or the timeout
};

class Process {
 public:
  /// `argv` starts the worker; nothing is started until the first request.
  Process(std::vector<std::string> argv, double timeout_s);
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  /// Starts the worker if it is not running and returns its hello message (cached per start).
  /// Throws InputError when the worker cannot start or its hello is malformed (a broken
  /// adapter or library, named in the message).
  const nlohmann::json& hello();
  /// Sends one request and waits for the answer. nullopt + `failure` when the worker died or
  /// timed out (it is then reaped, and restarted by the next call).
  std::optional<nlohmann::json> request(const nlohmann::json& req, Failure* failure);
  /// Ends the worker (it has said its process is poisoned: a sticky device fault); the next
  /// request starts a fresh one.
  void end();
  /// The shared memory, at least `bytes` long (grown as needed; contents are not kept on growth).
  uint8_t* shared(size_t bytes);
  size_t capacity() const { return capacity_; }
  /// How many times a worker was started (restarts after failures included).
  int starts() const { return starts_; }
  /// One conversation at a time: a caller holds this across a request and its shared memory
  /// (`pacheck run -j` runs cases on several threads).
  std::mutex& mutex() { return mu_; }

 private:
  void start();
  void stop_and_reap(Failure* failure, bool timed_out);
  std::optional<std::string> read_line(double timeout_s, bool* timed_out);

  std::mutex mu_;
  std::vector<std::string> argv_;
  double timeout_s_;
  int pid_ = -1, to_worker_ = -1, from_worker_ = -1, memfd_ = -1;
  uint8_t* map_ = nullptr;
  size_t capacity_ = 0;
  std::string pending_;  // bytes read past the last newline
  nlohmann::json hello_;
  int starts_ = 0;
};

}  // namespace pa::worker

// One watchdog thread per process, started by the first collective; it sleeps until the
// earliest deadline and never touches the collectives themselves (which may be wedged).
#include "longalign/dist/watchdog.hpp"

#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <thread>

namespace longalign::dist {
namespace {

using Clock = std::chrono::steady_clock;

struct Watched {
  std::string what, peer;
  double timeout_s;
  Clock::time_point deadline;
};

class Watchdog {
 public:
  static Watchdog& get() {
    static Watchdog* w = new Watchdog();  // never destroyed: its thread outlives static teardown
    return *w;
  }

  uint64_t add(std::string what, double timeout_s) {
    std::lock_guard lk(mu_);
    const uint64_t id = next_++;
    const auto budget = std::chrono::duration<double>(timeout_s + watchdog_grace_s(timeout_s));
    active_[id] = {std::move(what), "", timeout_s, Clock::now() + std::chrono::duration_cast<Clock::duration>(budget)};
    cv_.notify_all();
    return id;
  }
  void note(uint64_t id, const std::string& peer) {
    std::lock_guard lk(mu_);
    if (auto it = active_.find(id); it != active_.end()) it->second.peer = peer;
  }
  void remove(uint64_t id) {
    std::lock_guard lk(mu_);
    active_.erase(id);
  }

 private:
  Watchdog() { std::thread([this] { run(); }).detach(); }

  void run() {
    std::unique_lock lk(mu_);
    for (;;) {
      if (active_.empty()) {
        cv_.wait(lk);
        continue;
      }
      auto first = std::min_element(active_.begin(), active_.end(),
                                    [](const auto& a, const auto& b) { return a.second.deadline < b.second.deadline; });
      if (Clock::now() < first->second.deadline) {
        cv_.wait_until(lk, first->second.deadline);
        continue;
      }
      const Watched& w = first->second;
      // Plain stdio and _exit: the logger or the heap may be held by the wedged thread.
      std::fprintf(stderr,
                   "[longalign] error %s did not finish within its %.0f s timeout (+%.0f s grace)%s%s: a peer rank died "
                   "or hung; exiting\n",
                   w.what.c_str(), w.timeout_s, watchdog_grace_s(w.timeout_s), w.peer.empty() ? "" : ", waiting for ",
                   w.peer.c_str());
      std::fflush(stderr);
      ::_exit(1);
    }
  }

  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Watched> active_;
  uint64_t next_ = 0;
};

}  // namespace

double watchdog_grace_s(double timeout_s) { return std::max(5.0, 0.25 * timeout_s); }

WatchedCollective::WatchedCollective(std::string what, double timeout_s)
    : id_(Watchdog::get().add(std::move(what), timeout_s)) {}

WatchedCollective::~WatchedCollective() { Watchdog::get().remove(id_); }

void WatchedCollective::waiting_for(const std::string& peer) { Watchdog::get().note(id_, peer); }

}  // namespace longalign::dist

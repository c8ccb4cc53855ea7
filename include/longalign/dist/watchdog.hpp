// A backstop for collectives that hang past their timeout. The store's own timeouts turn a dead
// peer into an error, but some waits have none (a reply from a store server that is stopped
// rather than dead, a socket send into a full buffer). Every collective registers here with a
// description of what it waits for; one that is still running `grace` after its timeout ends the
// process with exit 1 and a message naming the collective and the peer, instead of hanging.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>

namespace longalign::dist {

// While alive, the calling thread's collective `what` must finish within timeout_s + grace.
class WatchedCollective {
 public:
  WatchedCollective(std::string what, double timeout_s);
  ~WatchedCollective();
  WatchedCollective(const WatchedCollective&) = delete;
  WatchedCollective& operator=(const WatchedCollective&) = delete;

  // What the collective waits for now ("rank 3's part"), for the message.
  void waiting_for(const std::string& peer);

 private:
  uint64_t id_;
};

// The grace past a collective's timeout before the watchdog ends the process.
double watchdog_grace_s(double timeout_s);

}  // namespace longalign::dist

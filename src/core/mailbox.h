// A queue of events from model threads to the one thread that owns a loop's state (the eval run
// loop, curation). Callbacks post; the loop takes everything queued at once. Held through a
// shared_ptr by the loop and by every callback, so a callback that fires after the loop returned
// (during a client's cancellation, say) still finds a live object.
#ifndef BREAKFIX_CORE_MAILBOX_H_
#define BREAKFIX_CORE_MAILBOX_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>

namespace breakfix {

template <typename Event>
class Mailbox {
 public:
  void Post(Event e) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      events_.push_back(std::move(e));
    }
    cv_.notify_one();
  }
  // Waits up to `timeout_ms` for at least one event, then takes everything queued.
  std::deque<Event> TakeAll(int64_t timeout_ms) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms), [&] { return !events_.empty(); });
    std::deque<Event> out;
    out.swap(events_);
    return out;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Event> events_;
};

}  // namespace breakfix

#endif  // BREAKFIX_CORE_MAILBOX_H_

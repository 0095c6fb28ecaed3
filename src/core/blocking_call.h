// BlockingCall: waits for an asynchronous call that reports through a callback.
#ifndef BREAKFIX_CORE_BLOCKING_CALL_H_
#define BREAKFIX_CORE_BLOCKING_CALL_H_

#include <condition_variable>
#include <mutex>
#include <optional>
#include <utility>

#include "breakfix/status.h"

namespace breakfix {

// Calls `start(callback)` and blocks until the callback has delivered a Result<T> (on any
// thread, possibly before `start` returns). Must not be used from the thread that would have to
// run the callback.
template <typename T, typename Start>
Result<T> BlockingCall(Start&& start) {
  std::mutex mu;
  std::condition_variable cv;
  std::optional<Result<T>> out;
  start([&](Result<T> r) {
    std::lock_guard<std::mutex> lock(mu);
    out.emplace(std::move(r));
    cv.notify_one();
  });
  std::unique_lock<std::mutex> lock(mu);
  cv.wait(lock, [&] { return out.has_value(); });
  return std::move(*out);
}

}  // namespace breakfix

#endif  // BREAKFIX_CORE_BLOCKING_CALL_H_

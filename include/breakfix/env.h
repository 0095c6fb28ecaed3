// Env: the process's view of the outside world (clock, sleep, environment variables, files).
//
// Components take an Env* instead of calling the OS directly, so tests can substitute a fake
// clock or a fixed environment. Env::Default() is thread-safe and lives for the whole process.
#ifndef BREAKFIX_ENV_H_
#define BREAKFIX_ENV_H_

#include <cstdint>
#include <optional>
#include <string>

#include "breakfix/status.h"

namespace breakfix {

class Env {
 public:
  virtual ~Env() = default;

  // The process-wide real environment. Never deleted.
  static Env* Default();

  // Monotonic time in microseconds; only differences are meaningful.
  virtual int64_t NowMicros() = 0;
  // Wall-clock time in microseconds since the Unix epoch (for timestamps in the store).
  virtual int64_t WallMicros() = 0;
  virtual void SleepMicros(int64_t micros) = 0;
  // Value of an environment variable, or nullopt when unset.
  virtual std::optional<std::string> GetVar(const std::string& name) = 0;

  // Whole-file read; the error names the path and the OS reason.
  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Writes atomically: a temporary file in the same directory, fsync, then rename, so a reader
  // (or a crash) never sees a half-written file.
  virtual Status WriteFileAtomic(const std::string& path, const std::string& contents) = 0;
};

// Deterministic pseudo-random numbers (xoshiro256**), identical on every platform for a seed.
// Not thread-safe: give each thread or unit of work its own, derived with Fork().
class Random {
 public:
  explicit Random(uint64_t seed);
  uint64_t Next();
  // Uniform in [0, 1).
  double Uniform();
  // Uniform integer in [0, n); n > 0.
  uint64_t Below(uint64_t n);
  // A generator whose stream depends on this one's seed and `stream`, not on how far this one
  // has advanced.
  Random Fork(uint64_t stream) const;

 private:
  uint64_t seed_;
  uint64_t s_[4];
};

}  // namespace breakfix

#endif  // BREAKFIX_ENV_H_

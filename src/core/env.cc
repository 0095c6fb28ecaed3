#include "breakfix/env.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

namespace breakfix {
namespace {

class PosixEnv final : public Env {
 public:
  int64_t NowMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::steady_clock::now().time_since_epoch())
        .count();
  }
  int64_t WallMicros() override {
    return std::chrono::duration_cast<std::chrono::microseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  void SleepMicros(int64_t micros) override {
    if (micros > 0) std::this_thread::sleep_for(std::chrono::microseconds(micros));
  }
  std::optional<std::string> GetVar(const std::string& name) override {
    const char* v = std::getenv(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  }
  Result<std::string> ReadFile(const std::string& path) override {
    std::ifstream in(path, std::ios::binary);
    if (!in) return Status::NotFound(path + ": cannot open: " + std::strerror(errno));
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) return Status::IOError(path + ": read failed");
    return ss.str();
  }
  Status WriteFileAtomic(const std::string& path, const std::string& contents) override {
    std::string tmp = path + ".tmp." + std::to_string(::getpid());
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return Status::IOError(tmp + ": cannot create: " + std::strerror(errno));
    size_t off = 0;
    while (off < contents.size()) {
      ssize_t n = ::write(fd, contents.data() + off, contents.size() - off);
      if (n < 0) {
        if (errno == EINTR) continue;
        Status s = Status::IOError(tmp + ": write failed: " + std::strerror(errno));
        ::close(fd);
        ::unlink(tmp.c_str());
        return s;
      }
      off += static_cast<size_t>(n);
    }
    if (::fsync(fd) != 0 || ::close(fd) != 0) {
      ::unlink(tmp.c_str());
      return Status::IOError(tmp + ": fsync/close failed: " + std::strerror(errno));
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
      Status s = Status::IOError(path + ": rename failed: " + std::strerror(errno));
      ::unlink(tmp.c_str());
      return s;
    }
    return Status::OK();
  }
};

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

}  // namespace

Env* Env::Default() {
  static Env* env = new PosixEnv();
  return env;
}

Random::Random(uint64_t seed) : seed_(seed) {
  uint64_t x = seed;
  for (auto& s : s_) s = SplitMix64(x);
}

uint64_t Random::Next() {
  const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = Rotl(s_[3], 45);
  return result;
}

double Random::Uniform() { return static_cast<double>(Next() >> 11) * 0x1.0p-53; }

uint64_t Random::Below(uint64_t n) {
  // Rejection sampling avoids modulo bias.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t v;
  do {
    v = Next();
  } while (v >= limit);
  return v % n;
}

Random Random::Fork(uint64_t stream) const {
  uint64_t x = seed_ ^ (stream * 0xd1342543de82ef95ULL + 0x2545f4914f6cdd1dULL);
  return Random(SplitMix64(x));
}

}  // namespace breakfix

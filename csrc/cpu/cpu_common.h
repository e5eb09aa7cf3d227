// What the CPU loops share: runtime ISA dispatch and the OpenMP helpers.
#pragma once

#include <atomic>
#include <cstdint>
#include <exception>
#include <new>
#include <string>
#include <utility>

#include "fastiou/common.h"

// Hot loops are compiled three times (AVX-512, AVX2, baseline x86-64) and the loader picks the
// best one the CPU has (GCC function multi-versioning). Never -march=native: the wheel must run
// on any x86-64. A clone must not contain an OpenMP region (the outlined body would lose the
// target), so parallel loops call clones, not the other way round.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(FASTIOU_NO_CLONES)
#define FASTIOU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FASTIOU_CLONES
#endif

namespace fastiou {

// Below this many output elements a parallel region costs more than it saves.
constexpr index_t kParallelMin = 1 << 14;
// Parallel loops hand their work out in dynamic chunks, never in static halves: on a machine
// whose cores are shared (data-loader workers, other processes), a thread that loses its core
// then delays the call by one chunk, not by half of the work.

// The team of a kernel call that may use `want` threads: want, less the cores that other
// processes keep busy (measured on Linux at most every 100 ms; csrc/cpu/threads.cpp). The
// bindings set it around every call (bindings_common.h: released).
int team_size(int want);
// Turns that off (every call gets `want`) or back on; FASTIOU_LOAD_AWARE_THREADS=0 turns it off.
void set_load_aware(bool on);
bool load_aware();
// Free cores at the last reading (0: not known yet).
int free_cores();

// An allocation failure that says what was being allocated: pybind11 raises MemoryError with
// what() (a plain std::bad_alloc says only "std::bad_alloc").
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string msg) : msg_(std::move(msg)) {}
  const char* what() const noexcept override { return msg_.c_str(); }

 private:
  std::string msg_;
};

// "op: out of memory (what)", e.g. what = "2 masks of 30000 x 30000: 1.8 GB".
inline std::string bytes_text(double bytes) {
  const char* unit[] = {"bytes", "kB", "MB", "GB", "TB", "PB"};
  int u = 0;
  while (bytes >= 1000 && u < 5) {
    bytes /= 1000;
    ++u;
  }
  std::string s = std::to_string(bytes);
  s = s.substr(0, s.find('.') + (u ? 2 : 0));
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s + " " + unit[u];
}

// Carries an exception out of an OpenMP region (one that leaves a region's block calls
// std::terminate: SIGABRT, even on one thread). Inside the region, each thread's allocations
// and each iteration go through run(); once one has thrown, the others skip their work. After
// the region, rethrow() throws the first exception, a std::bad_alloc as OutOfMemory with
// `what` (built only then).
class RegionErrors {
 public:
  template <typename F>
  void run(F&& f) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      f();
    } catch (...) {
      bool expect = false;
      if (failed_.compare_exchange_strong(expect, true)) err_ = std::current_exception();
    }
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  template <typename What>
  void rethrow(What&& what) const {
    if (!failed_.load()) return;
    try {
      std::rethrow_exception(err_);
    } catch (const OutOfMemory&) {
      throw;
    } catch (const std::bad_alloc&) {
      throw OutOfMemory(what());
    }
  }

 private:
  std::atomic<bool> failed_{false};
  std::exception_ptr err_;
};

// Runs body; a std::bad_alloc from it (outside any region) becomes OutOfMemory with what().
template <typename What, typename Body>
auto oom_named(What&& what, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const OutOfMemory&) {
    throw;
  } catch (const std::bad_alloc&) {
    throw OutOfMemory(what());
  }
}

}  // namespace fastiou

// The team a kernel call runs on: fastiou's thread count, less the cores that other processes
// keep busy (team_size, cpu_common.h).
//
// An OpenMP team waits for its slowest thread. When another process (a data-loader worker, a
// second job) holds a core, the thread placed beside it runs a fraction of the time, and a call
// on two threads took 1.5x to 12x as long as the same call on one (measured with `fastiou bench
// --shared-core`). So before a call the team is cut to the cores that are free: on Linux, from
// /proc/stat (the busy time of the CPUs this process may use: elapsed less idle) minus this
// process's own CPU time (CLOCK_PROCESS_CPUTIME_ID), over the time since the last reading. A
// reading is taken at most every kInterval, by whichever call comes first after it; the others
// read two atomics. After a pause of more than kStale without calls, the first call keeps the
// previous figure. Elsewhere, and until there are two readings, the team is fastiou's thread
// count. Nothing here blocks (a fork while another thread reads leaves the mutex held in the
// child: readings are then skipped there).
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <mutex>

#if defined(__linux__)
#include <sched.h>
#include <time.h>
#include <unistd.h>
#endif

#include "cpu_common.h"

namespace fastiou {
namespace {

constexpr int64_t kInterval = 100'000'000;  // ns between readings
// A reading older than this says little about now (the load may have changed while no call
// came): it only starts a new window, and the next reading comes after kRestart.
constexpr int64_t kStale = 1'000'000'000;
constexpr int64_t kRestart = 50'000'000;
// Another process's share of a core from which that core counts as busy. Low: a thread placed
// beside another process can wait a whole time slice (milliseconds) to run, and the team waits
// for it at the region's end even when the others did all the work (measured: a call of 10 us
// took 7 ms on two threads with the second core busy).
constexpr double kBusyShare = 0.4;

std::atomic<int> g_free{0};             // free cores at the last reading; 0: not known
std::atomic<int64_t> g_next{0};         // steady-clock ns of the next reading
std::atomic<bool> g_enabled{true};
std::mutex g_reading;

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

#if defined(__linux__)
struct Reading {
  int64_t wall = 0;      // steady ns
  double idle = 0;       // seconds the CPUs of the set were idle (idle + iowait)
  double own = 0;        // seconds of CPU this process used
  int cpus = 0;          // CPUs in the set
  bool ok = false;
};

Reading g_last;

// Idle seconds (idle + iowait) of the CPUs in `set`, from /proc/stat. (Idle time is measured
// exactly by tickless kernels and only rounded to the tick; the busy fields are sampled at each
// tick, a noisier figure over 100 ms.)
bool read_proc_stat(const cpu_set_t& set, double* idle, int* cpus) {
  std::FILE* f = std::fopen("/proc/stat", "re");
  if (f == nullptr) return false;
  static const double tick = 1.0 / static_cast<double>(sysconf(_SC_CLK_TCK));
  char line[512];
  unsigned long long b = 0;
  int n = 0;
  bool any = false;
  while (std::fgets(line, sizeof line, f) != nullptr) {
    if (std::strncmp(line, "cpu", 3) != 0) {
      if (any) break;  // the cpuN lines come first
      continue;
    }
    any = true;
    int id = -1;
    unsigned long long v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (std::sscanf(line, "cpu%d %llu %llu %llu %llu %llu %llu %llu %llu", &id, &v[0], &v[1], &v[2],
                    &v[3], &v[4], &v[5], &v[6], &v[7]) < 5)
      continue;  // the "cpu" total line
    if (id < 0 || id >= CPU_SETSIZE || !CPU_ISSET(id, &set)) continue;
    b += v[3] + v[4];  // user nice system [idle iowait] irq softirq steal
    ++n;
  }
  std::fclose(f);
  if (n == 0) return false;
  *idle = static_cast<double>(b) * tick;
  *cpus = n;
  return true;
}

Reading take_reading() {
  Reading r;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return r;
  timespec ts;
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return r;
  r.own = static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
  r.wall = now_ns();
  r.ok = read_proc_stat(set, &r.idle, &r.cpus);
  return r;
}

void refresh(int64_t now) {
  std::unique_lock<std::mutex> lk(g_reading, std::try_to_lock);
  if (!lk.owns_lock()) return;  // another thread is reading
  if (now < g_next.load(std::memory_order_relaxed)) return;
  const Reading r = take_reading();
  if (!r.ok) {
    g_next.store(now + kInterval, std::memory_order_relaxed);
    g_free.store(0, std::memory_order_relaxed);
    return;
  }
  const bool stale = !g_last.ok || r.wall - g_last.wall > kStale;
  g_next.store(now + (stale ? kRestart : kInterval), std::memory_order_relaxed);
  if (!stale && r.cpus == g_last.cpus && r.wall > g_last.wall) {
    const double wall = 1e-9 * static_cast<double>(r.wall - g_last.wall);
    const double busy = r.cpus * wall - (r.idle - g_last.idle);
    const double others = (busy - (r.own - g_last.own)) / wall;  // cores
    const int taken = others <= 0 ? 0 : static_cast<int>(std::floor(others + (1.0 - kBusyShare)));
    g_free.store(std::max(1, r.cpus - taken), std::memory_order_relaxed);
  }
  g_last = r;
}
#else
void refresh(int64_t now) { g_next.store(now + kInterval, std::memory_order_relaxed); }
#endif

}  // namespace

int team_size(int want) {
  if (want <= 1 || !g_enabled.load(std::memory_order_relaxed)) return want;
  const int64_t now = now_ns();
  if (now >= g_next.load(std::memory_order_relaxed)) refresh(now);
  const int free = g_free.load(std::memory_order_relaxed);
  return free > 0 && free < want ? free : want;
}

void set_load_aware(bool on) {
  g_enabled.store(on);
  g_free.store(0);
  g_next.store(0);
#if defined(__linux__)
  std::unique_lock<std::mutex> lk(g_reading, std::try_to_lock);
  if (lk.owns_lock()) g_last = Reading();
#endif
}

bool load_aware() { return g_enabled.load(); }

int free_cores() { return g_free.load(std::memory_order_relaxed); }

}  // namespace fastiou

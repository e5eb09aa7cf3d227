// fastiou._C: the CPU kernels' thread count (set_num_threads, get_num_threads) and fork safety.
//
// libgomp is not fork-safe: after a thread has run a parallel region of more than one thread,
// a child made by fork() that runs a parallel region of more than one thread on that same
// thread waits forever for pool workers that were not copied into the child. A region of one
// thread does not touch the pool. So, as PyTorch does for its own pool, a forked child runs the
// kernels on one thread until fastiou.set_num_threads is called there; after that, calls made
// on the thread that forked run on a helper thread created in the child (a thread's pool is its
// own, so the helper's is fresh), and calls from other threads, all created in the child, run
// where they are. The hot path of every kernel call (released() in bindings_common.h) is one
// relaxed atomic load.
#include <pthread.h>
#include <pybind11/pybind11.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <string>
#include <thread>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bindings_common.h"

namespace py = pybind11;

namespace fastiou {
namespace bind {

std::atomic<bool> g_forked_child{false};

namespace {

std::atomic<int> g_child_threads{1};  // the thread count in a forked child
pthread_t g_fork_thread;              // the thread that called fork(), in the child

int procs() {
  unsigned hw = std::thread::hardware_concurrency();
#ifdef _OPENMP
  hw = std::max(hw, static_cast<unsigned>(omp_get_num_procs()));
#endif
  return static_cast<int>(std::max(hw, 1u));
}

// More threads than this is a mistake (an OpenMP team of 10^5 threads overflows the stack).
int max_threads() { return 4 * procs(); }

void set_omp_threads(int n) {
#ifdef _OPENMP
  if (omp_get_max_threads() != n) omp_set_num_threads(n);  // per thread in libgomp
#else
  (void)n;
#endif
}

// One helper thread of a forked child, fed one call at a time.
class Helper {
 public:
  Helper() { std::thread([this] { loop(); }).detach(); }

  void run(const std::function<void()>& fn, int threads) {
    std::lock_guard<std::mutex> one(call_);  // callers queue here
    std::exception_ptr err;
    {
      std::unique_lock<std::mutex> lk(mu_);
      job_ = &fn;
      threads_ = threads;
      err_ = nullptr;
      done_ = false;
      cv_.notify_all();
      cv_.wait(lk, [this] { return done_; });
      err = err_;
    }
    if (err) std::rethrow_exception(err);
  }

 private:
  void loop() {
    std::unique_lock<std::mutex> lk(mu_);
    for (;;) {
      cv_.wait(lk, [this] { return job_ != nullptr; });
      const std::function<void()>* job = job_;
      set_omp_threads(threads_);
      lk.unlock();
      std::exception_ptr err;
      try {
        (*job)();
      } catch (...) {
        err = std::current_exception();
      }
      lk.lock();
      err_ = err;
      job_ = nullptr;
      done_ = true;
      cv_.notify_all();
    }
  }

  std::mutex call_, mu_;
  std::condition_variable cv_;
  const std::function<void()>* job_ = nullptr;
  int threads_ = 1;
  bool done_ = false;
  std::exception_ptr err_;
};

// The child's helper: created on first use in each child and never destroyed (a helper of the
// parent, copied as memory only, is dropped without touching its locks).
std::atomic<Helper*> g_helper{nullptr};
std::mutex* g_helper_mu = new std::mutex;

void mark_child() {
  g_fork_thread = pthread_self();
  g_child_threads.store(1);
  g_helper.store(nullptr);
  g_helper_mu = new std::mutex;  // the parent's may have been held by another thread
  g_forked_child.store(true);
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
}

Helper& helper() {
  Helper* h = g_helper.load();
  if (h != nullptr) return *h;
  std::lock_guard<std::mutex> lk(*g_helper_mu);
  h = g_helper.load();
  if (h == nullptr) {
    h = new Helper;
    g_helper.store(h);
  }
  return *h;
}

// Starts the team and gives each of its threads the C++ runtime's per-thread exception state
// now: glibc allocates a library's thread-local data on first use, and aborts the process if
// that allocation fails, so it must not wait for the first exception under memory pressure.
void warm_team() {
#pragma omp parallel
  { (void)std::uncaught_exceptions(); }
}

void set_num_threads(long long n) {
  const int cap = max_threads();
  if (n < 1 || n > cap)
    throw py::value_error("num_threads: expected an integer from 1 to " + std::to_string(cap) +
                          " (4 x the " + std::to_string(procs()) + " CPUs), got " +
                          std::to_string(n));
  if (g_forked_child.load()) {
    g_child_threads.store(static_cast<int>(n));
    if (!pthread_equal(pthread_self(), g_fork_thread)) set_omp_threads(static_cast<int>(n));
  } else {
    set_omp_threads(static_cast<int>(n));
  }
  py::gil_scoped_release release;
  if (g_forked_child.load())
    run_in_child(warm_team);
  else
    warm_team();
}

int get_num_threads() {
  if (g_forked_child.load()) return g_child_threads.load();
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace

void run_in_child(const std::function<void()>& fn) {
  const int t = team_size(g_child_threads.load());
  if (t <= 1 || !pthread_equal(pthread_self(), g_fork_thread)) {
    set_omp_threads(t);
    fn();
    return;
  }
  helper().run(fn, t);
}

}  // namespace bind
}  // namespace fastiou

void register_threads(py::module_& m) {
  (void)std::uncaught_exceptions();  // this thread's exception state, while memory is there
  static bool registered = false;
  if (!registered) {
    pthread_atfork(nullptr, nullptr, [] { fastiou::bind::mark_child(); });
    registered = true;
  }
  // Loaded for the first time in a child forked after `import fastiou` (fastiou._import_pid):
  // the thread that forked may hold a broken pool (torch shares the OpenMP runtime).
  try {
    py::dict mods = py::module_::import("sys").attr("modules");
    if (mods.contains("fastiou")) {
      py::object pid = py::getattr(mods["fastiou"], "_import_pid", py::none());
      if (!pid.is_none() && pid.cast<long long>() != static_cast<long long>(getpid()))
        fastiou::bind::mark_child();
    }
  } catch (const py::error_already_set&) {
  }
  m.def("set_num_threads", &fastiou::bind::set_num_threads, py::arg("num_threads"));
  m.def("get_num_threads", &fastiou::bind::get_num_threads);
  m.def("max_num_threads", &fastiou::bind::max_threads,
        "The largest count set_num_threads accepts (4 x the CPUs).");
  if (const char* e = std::getenv("FASTIOU_LOAD_AWARE_THREADS"))
    if (std::string(e) == "0") fastiou::set_load_aware(false);
  m.def("set_load_aware", &fastiou::set_load_aware, py::arg("on"),
        "Whether kernel calls leave the cores other processes keep busy to them (default: on).");
  m.def("load_aware", &fastiou::load_aware);
  m.def("call_team", [] {
    fastiou::bind::CallTeam team;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
  }, "The threads a kernel call made now would start (its team; for the tests).");
  m.def("free_cores", &fastiou::free_cores,
        "Free cores at the last reading of the CPU load (0: not known yet).");
  m.def("forked_child", [] { return fastiou::bind::g_forked_child.load(); },
        "Whether this process was made by fork() after fastiou._C was loaded.");
  m.def("_mark_forked_child", [] {
    if (!fastiou::bind::g_forked_child.load()) fastiou::bind::mark_child();
  }, "Called by fastiou's os.register_at_fork hook in a child that loads _C after the fork.");
}

// Checks the pybind11 bindings of fastiou._C share: a kernel indexes only what these allow.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <atomic>
#include <functional>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "cpu/cpu_common.h"

namespace fastiou {
namespace bind {

namespace py = pybind11;

// ------------------------------------------------------------------ threads and fork (threads.cpp)

// Set in a process made by fork() from one that had loaded fastiou._C (pthread_atfork), or told
// so by fastiou's os.register_at_fork hook.
extern std::atomic<bool> g_forked_child;

// In a forked child: runs fn with the thread count set there (fastiou.set_num_threads; 1 until
// then). libgomp's thread pool of the thread that forked is not fork-safe (a parallel region of
// more than one thread waits forever for workers that do not exist in the child), so on that
// thread fn runs on a helper thread of the child, whose pool is its own.
void run_in_child(const std::function<void()>& fn);

// For the duration of a kernel call: the OpenMP team of this thread cut to team_size (the
// cores other processes keep busy are left to them; cpu/threads.cpp).
class CallTeam {
 public:
  CallTeam() {
#ifdef _OPENMP
    const int want = omp_get_max_threads();
    const int t = team_size(want);
    if (t != want) {
      omp_set_num_threads(t);
      before_ = want;
    }
#endif
  }
  ~CallTeam() {
#ifdef _OPENMP
    if (before_) omp_set_num_threads(before_);
#endif
  }
  CallTeam(const CallTeam&) = delete;
  CallTeam& operator=(const CallTeam&) = delete;

 private:
  int before_ = 0;
};

// Runs a kernel call without the GIL, fork-safely, on the team above; returns what fn returns.
// fn must not touch Python objects.
template <typename F>
auto released(F&& fn) -> decltype(fn()) {
  py::gil_scoped_release release;
  if (!g_forked_child.load(std::memory_order_relaxed)) {
    CallTeam team;
    return fn();
  }
  using R = decltype(fn());
  if constexpr (std::is_void_v<R>) {
    run_in_child([&fn] { fn(); });
  } else {
    R r{};
    run_in_child([&fn, &r] { r = fn(); });
    return r;
  }
}

// released(fn), with an allocation failure that does not say its size (a std::bad_alloc that is
// not OutOfMemory) raised as MemoryError(what()); what() must not touch Python objects.
template <typename What, typename F>
auto released_named(What&& what, F&& fn) -> decltype(fn()) {
  return released([&] { return oom_named(what, fn); });
}

// "op: out of memory working on <parts...>", numbers and strings in order.
template <typename... Parts>
std::string oom_text(const char* op, const Parts&... parts) {
  std::ostringstream os;
  os << op << ": out of memory working on ";
  (os << ... << parts);
  return os.str();
}

inline std::string shape_str(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t d = 0; d < a.ndim(); ++d) s += (d ? ", " : "") + std::to_string(a.shape(d));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Whether `a` holds T: by value, not identity (an array that crossed a process boundary, by
// pickle to a worker, has an equal dtype that is another object; a byte-swapped one is not equal).
template <typename T>
bool is_dtype(const py::array& a) {
  return a.dtype().equal(py::dtype::of<T>());
}

// Checks dtype, rank and the sizes given (-1: any); ValueError naming the argument otherwise.
template <typename T>
void check_dtype_shape(const py::array& a, const char* name, const std::vector<py::ssize_t>& shape) {
  if (!fastiou::bind::is_dtype<T>(a))
    throw py::value_error(std::string(name) + ": expected dtype " +
                          std::string(py::str(py::dtype::of<T>())) + ", got " +
                          std::string(py::str(a.dtype())));
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t d = 0; ok && d < shape.size(); ++d) ok = shape[d] < 0 || a.shape(d) == shape[d];
  if (!ok) {
    std::string want = "(";
    for (size_t d = 0; d < shape.size(); ++d)
      want += (d ? ", " : "") + (shape[d] < 0 ? std::string("*") : std::to_string(shape[d]));
    throw py::value_error(std::string(name) + ": expected shape " + want + "), got " +
                          shape_str(a));
  }
}

// check_dtype_shape, plus C-contiguity and (for outputs) writability; returns the data pointer.
template <typename T>
T* checked(const py::array& a, const char* name, std::vector<py::ssize_t> shape, bool writable) {
  check_dtype_shape<T>(a, name, shape);
  if (!(a.flags() & py::array::c_style))
    throw py::value_error(std::string(name) + ": expected a C-contiguous array");
  if (writable && !a.writeable()) throw py::value_error(std::string(name) + ": not writable");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

}  // namespace bind
}  // namespace fastiou

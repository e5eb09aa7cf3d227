// Checks the pybind11 bindings of fastiou._C share: a kernel indexes only what these allow.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <vector>

namespace fastiou {
namespace bind {

namespace py = pybind11;

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

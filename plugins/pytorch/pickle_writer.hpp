// Python values as torch.save pickles them (protocol 2): what data.pkl holds in files we
// write. Only opcodes that torch's own weights-only unpickler accepts are used, except
// BINFLOAT for floats (see docs/formats/pytorch.md on the `floats` option).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ckpt_pytorch {

struct PyOut {
  // The last six write what a user's layout (user_layout.hpp) holds beyond ckpt's schema:
  // bytes, a set, a collections.Counter, an object of an allowed class (its class in `s`, its
  // attributes in `entries`), a NumPy scalar (its dtype in `spec`, its bytes in `s`) and a
  // NumPy array (`spec`, `dtype`, `shape`, its C-order bytes in `s`).
  enum class T { none, boolean, integer, floating, string, tensor, list, tuple, dict, odict, bytes, set, counter, record, numpy_scalar, numpy_array };
  T t = T::none;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  std::string s;  // str; the storage key of a tensor
  bool raw = false;  // a str whose `s` is already a Python str's UTF-8 (surrogates and all)
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  bool requires_grad = false, parameter = false;  // a tensor's
  std::string spec;  // a NumPy scalar's dtype: "f8", "i4", ...
  std::vector<PyOut> items;  // an odict's: the state BUILD gives it (torch's _metadata), if any
  std::vector<std::pair<PyOut, PyOut>> entries;

  // Declared here, defaulted below the class: clang works out the implicit ones while PyOut is
  // still incomplete, and std::pair<PyOut, PyOut> needs it complete.
  PyOut();
  PyOut(const PyOut&);
  PyOut(PyOut&&) noexcept;
  PyOut& operator=(const PyOut&);
  PyOut& operator=(PyOut&&) noexcept;
  ~PyOut();

  static PyOut boolean(bool v);
  static PyOut integer(int64_t v);
  static PyOut floating(double v);
  static PyOut str(std::string v);
  static PyOut tensor(std::string key, uint32_t dtype, std::vector<int64_t> shape);
  static PyOut container(T t);
  PyOut& add(std::string key, PyOut v);
};

inline PyOut::PyOut() = default;
inline PyOut::PyOut(const PyOut&) = default;
inline PyOut::PyOut(PyOut&&) noexcept = default;
inline PyOut& PyOut::operator=(const PyOut&) = default;
inline PyOut& PyOut::operator=(PyOut&&) noexcept = default;
inline PyOut::~PyOut() = default;

inline PyOut PyOut::boolean(bool v) { PyOut o; o.t = T::boolean; o.b = v; return o; }
inline PyOut PyOut::integer(int64_t v) { PyOut o; o.t = T::integer; o.i = v; return o; }
inline PyOut PyOut::floating(double v) { PyOut o; o.t = T::floating; o.f = v; return o; }
inline PyOut PyOut::str(std::string v) { PyOut o; o.t = T::string; o.s = std::move(v); return o; }
inline PyOut PyOut::tensor(std::string key, uint32_t dtype, std::vector<int64_t> shape) {
  PyOut o; o.t = T::tensor; o.s = std::move(key); o.dtype = dtype; o.shape = std::move(shape); return o;
}
inline PyOut PyOut::container(T t) { PyOut o; o.t = t; return o; }
inline PyOut& PyOut::add(std::string key, PyOut v) {
  entries.emplace_back(str(std::move(key)), std::move(v));
  return entries.back().second;
}

// The pickle bytes of `root`.
std::string pickle(const PyOut& root);

}  // namespace ckpt_pytorch

// What every part of the hdf5 plugin shares: the lock around libhdf5, owning handles for hid_t,
// and the conversion of HDF5's error stack into ckpt::sdk::Error.
#pragma once

#include <ckpt/sdk.hpp>

#include <hdf5.h>

#include <mutex>
#include <string>
#include <utility>

namespace ckpt_hdf5 {

// Debian's libhdf5 is the serial build, which is not thread-safe: every call into it, including
// the closing of handles, happens under this lock. Recursive because destructors of handles run
// inside locked scopes.
std::recursive_mutex& hdf5_mutex();

// Locks libhdf5 and keeps its error stack from printing to stderr: failures are reported as
// ckpt errors instead. Silencing on every entry (it is cheap) also covers a host that turned
// printing back on for its own use of the library.
class Lock {
 public:
  Lock();

 private:
  std::lock_guard<std::recursive_mutex> guard_;
};

// The innermost description on HDF5's error stack (the most specific one), then clears the stack.
std::string h5_message();

[[noreturn]] void h5_fail(ckpt_status_code code, const std::string& where);

// A negative id or status from libhdf5 becomes an Error naming `where` and HDF5's reason.
inline hid_t h5_check(hid_t id, const std::string& where, ckpt_status_code code = CKPT_ERR_FORMAT) {
  if (id < 0) h5_fail(code, where);
  return id;
}
inline void h5_ok(herr_t status, const std::string& where,
                  ckpt_status_code code = CKPT_ERR_FORMAT) {
  if (status < 0) h5_fail(code, where);
}

// An owned hid_t, closed with the matching H5?close. Close only under the Lock.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer close) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& o) noexcept : id_(std::exchange(o.id_, H5I_INVALID_HID)), close_(o.close_) {}
  Handle& operator=(Handle&& o) noexcept {
    if (this != &o) {
      reset();
      id_ = std::exchange(o.id_, H5I_INVALID_HID);
      close_ = o.close_;
    }
    return *this;
  }
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  operator hid_t() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() {
    if (id_ >= 0 && close_) close_(id_);
    id_ = H5I_INVALID_HID;
  }
  // Closes now and reports a failure (a file's close is where buffered data is written).
  void close(const std::string& where, ckpt_status_code code) {
    hid_t id = std::exchange(id_, H5I_INVALID_HID);
    if (id >= 0 && close_ && close_(id) < 0) h5_fail(code, where);
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer close_ = nullptr;
};

inline Handle file_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_FORMAT) {
  return {h5_check(id, where, c), H5Fclose};
}
inline Handle group_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_FORMAT) {
  return {h5_check(id, where, c), H5Gclose};
}
inline Handle dataset_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_FORMAT) {
  return {h5_check(id, where, c), H5Dclose};
}
inline Handle space_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_FORMAT) {
  return {h5_check(id, where, c), H5Sclose};
}
inline Handle type_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_FORMAT) {
  return {h5_check(id, where, c), H5Tclose};
}
inline Handle attr_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_FORMAT) {
  return {h5_check(id, where, c), H5Aclose};
}
inline Handle plist_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_INTERNAL) {
  return {h5_check(id, where, c), H5Pclose};
}
inline Handle object_handle(hid_t id, const std::string& where, ckpt_status_code c = CKPT_ERR_FORMAT) {
  return {h5_check(id, where, c), H5Oclose};
}

// What the value reader (h5_attributes.hpp) and the guard's variable-length check read whole: an
// attribute or a dataset. Their calls differ only in name (H5Aread, H5Dread of everything), so
// both go through one code path.
struct ValueSource {
  hid_t id = H5I_INVALID_HID;
  bool dataset = false;

  static ValueSource attribute(hid_t attr) { return {attr, false}; }
  static ValueSource of_dataset(hid_t dset) { return {dset, true}; }
  hid_t type() const { return dataset ? H5Dget_type(id) : H5Aget_type(id); }
  hid_t space() const { return dataset ? H5Dget_space(id) : H5Aget_space(id); }
  herr_t read(hid_t memtype, void* buf) const {
    return dataset ? H5Dread(id, memtype, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf) : H5Aread(id, memtype, buf);
  }
};

// A path for messages: "/" for the root, else "/a/b".
inline std::string child_path(const std::string& parent, const std::string& name) {
  return (parent == "/" ? "/" : parent + "/") + name;
}

}  // namespace ckpt_hdf5

#include "h5_attributes.hpp"

#include "h5_layout.hpp"
#include "h5_types.hpp"

#include <cstring>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

// ---- writing --------------------------------------------------------------------------------

void write_attribute(hid_t obj, const std::string& name, const ckpt_value& v,
                     const std::string& where) {
  const std::string at = where + " attribute '" + name + "'";
  const bool is_array = v.type >= CKPT_VALUE_BOOL_ARRAY && v.type <= CKPT_VALUE_STRING_ARRAY;
  const hsize_t count = is_array ? v.count : 1;
  if (is_array && v.count > 0 && !v.u.ints)
    fail(CKPT_ERR_INVALID_ARGUMENT, at + ": array of " + std::to_string(v.count) + " without data");

  Handle type;
  const void* buf = nullptr;
  // Storage the buffer may point into; it must live until H5Awrite.
  int8_t one_bool = 0;
  std::string one_string;
  const char* one_cstr = nullptr;
  hvl_t one_bytes{};
  std::vector<int8_t> bools;
  std::vector<std::string> strings;
  std::vector<const char*> cstrs;
  std::vector<hvl_t> byte_strings;

  switch (v.type) {
    case CKPT_VALUE_BOOL:
      type = make_bool_type();
      one_bool = v.u.b ? 1 : 0;
      buf = &one_bool;
      break;
    case CKPT_VALUE_INT64:
      type = tensor_type(CKPT_DTYPE_I64);
      buf = &v.u.i;
      break;
    case CKPT_VALUE_FLOAT64:
      type = tensor_type(CKPT_DTYPE_F64);
      buf = &v.u.f;
      break;
    case CKPT_VALUE_STRING: {
      std::string_view s(v.u.s.data, v.u.s.size);
      if (needs_byte_encoding(s)) {
        type = make_vlen_bytes_type();
        one_bytes = {s.size(), const_cast<char*>(s.data())};
        buf = &one_bytes;
      } else {
        type = make_vlen_string_type();
        one_string.assign(s);
        one_cstr = one_string.c_str();
        buf = &one_cstr;
      }
      break;
    }
    case CKPT_VALUE_BOOL_ARRAY:
      type = make_bool_type();
      bools.reserve(v.count);
      for (uint64_t k = 0; k < v.count; ++k) bools.push_back(v.u.bools[k] ? 1 : 0);
      buf = bools.data();
      break;
    case CKPT_VALUE_INT64_ARRAY:
      type = tensor_type(CKPT_DTYPE_I64);
      buf = v.u.ints;
      break;
    case CKPT_VALUE_FLOAT64_ARRAY:
      type = tensor_type(CKPT_DTYPE_F64);
      buf = v.u.floats;
      break;
    case CKPT_VALUE_STRING_ARRAY: {
      bool bytes = false;
      for (uint64_t k = 0; k < v.count; ++k)
        bytes = bytes || needs_byte_encoding({v.u.strings[k].data, v.u.strings[k].size});
      if (bytes) {
        type = make_vlen_bytes_type();
        for (uint64_t k = 0; k < v.count; ++k)
          byte_strings.push_back({v.u.strings[k].size, const_cast<char*>(v.u.strings[k].data)});
        buf = byte_strings.data();
      } else {
        type = make_vlen_string_type();
        strings.reserve(v.count);
        for (uint64_t k = 0; k < v.count; ++k)
          strings.emplace_back(v.u.strings[k].data, v.u.strings[k].size);
        for (const auto& s : strings) cstrs.push_back(s.c_str());
        buf = cstrs.data();
      }
      break;
    }
    default:
      fail(CKPT_ERR_INVALID_ARGUMENT, at + ": unknown value type " + std::to_string(v.type));
  }

  Handle space = is_array ? space_handle(H5Screate_simple(1, &count, nullptr), at, CKPT_ERR_INTERNAL)
                          : space_handle(H5Screate(H5S_SCALAR), at, CKPT_ERR_INTERNAL);
  Handle acpl = plist_handle(H5Pcreate(H5P_ATTRIBUTE_CREATE), at);
  h5_ok(H5Pset_char_encoding(acpl, H5T_CSET_UTF8), at, CKPT_ERR_INTERNAL);
  Handle attr = attr_handle(H5Acreate2(obj, name.c_str(), type, space, acpl, H5P_DEFAULT), at,
                            CKPT_ERR_IO);
  // HDF5 wants a buffer even for zero elements.
  static const int64_t nothing = 0;
  h5_ok(H5Awrite(attr, type, buf ? buf : &nothing), at, CKPT_ERR_IO);
  attr.close(at, CKPT_ERR_IO);
}

// ---- reading --------------------------------------------------------------------------------

namespace {

// Frees what HDF5 allocated for variable-length elements, also when a later step throws.
struct VlenReclaim {
  hid_t type, space;
  void* buf;
  ~VlenReclaim() {
    if (H5Dvlen_reclaim(type, space, H5P_DEFAULT, buf) < 0) H5Eclear2(H5E_DEFAULT);
  }
};

std::string trim_fixed(const char* p, size_t size, H5T_str_t pad) {
  std::string_view s(p, size);
  if (pad == H5T_STR_NULLTERM) {
    size_t z = s.find('\0');
    if (z != std::string_view::npos) s = s.substr(0, z);
  } else {
    const char filler = pad == H5T_STR_SPACEPAD ? ' ' : '\0';
    while (!s.empty() && s.back() == filler) s.remove_suffix(1);
  }
  return std::string(s);
}

}  // namespace

std::optional<Value> read_attribute(hid_t attr, const std::string& where, FileGuard& guard, std::string* unheld) {
  return read_value(ValueSource::attribute(attr), where, guard, guard.file_size(), unheld);
}

std::optional<Value> read_value(const ValueSource& src, const std::string& where, FileGuard& guard, uint64_t max_bytes,
                                std::string* unheld) {
  Handle ft = type_handle(src.type(), where);
  Handle sp = space_handle(src.space(), where);
  const H5S_class_t sc = H5Sget_simple_extent_type(sp);
  if (sc == H5S_NO_CLASS) h5_fail(CKPT_ERR_FORMAT, where);
  const hssize_t points = sc == H5S_NULL ? 0 : H5Sget_simple_extent_npoints(sp);
  if (points < 0) h5_fail(CKPT_ERR_FORMAT, where);
  const size_t stored_size = H5Tget_size(ft);
  if (stored_size == 0) h5_fail(CKPT_ERR_FORMAT, where);
  if (static_cast<uint64_t>(points) > max_bytes / stored_size)
    fail(CKPT_ERR_LIMIT, where + ": " + std::to_string(points) + " elements of " +
                             std::to_string(stored_size) + " bytes are more than the " +
                             std::to_string(max_bytes) + " bytes allowed" + (src.dataset ? "" : " (the file's size)"));
  const size_t n = static_cast<size_t>(points);
  const bool array = sc != H5S_SCALAR;
  const H5T_class_t cls = H5Tget_class(ft);

  Value out;
  if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    const bool integer = cls == H5T_INTEGER;
    if (integer) {
      out.ints.resize(n);
      // uint64 is read as it is and checked: HDF5's conversion to int64 would clamp values of
      // 2^63 and more, where h5py reads them exactly.
      const bool u64 = H5Tget_sign(ft) == H5T_SGN_NONE && H5Tget_size(ft) >= 8;
      if (n) h5_ok(src.read(u64 ? H5T_NATIVE_UINT64 : H5T_NATIVE_INT64, out.ints.data()), where);
      if (u64)
        for (int64_t v : out.ints)
          if (v < 0) {
            const std::string why = "a uint64 value of " + std::to_string(static_cast<uint64_t>(v)) +
                                    ", beyond the int64 of ckpt's values (h5py reads it exactly)";
            if (!unheld) fail(CKPT_ERR_UNSUPPORTED, where + ": " + why);
            *unheld = why;
            return std::nullopt;
          }
    } else {
      out.floats.resize(n);
      if (n) h5_ok(src.read(H5T_NATIVE_DOUBLE, out.floats.data()), where);
    }
    if (array) {
      out.type = integer ? CKPT_VALUE_INT64_ARRAY : CKPT_VALUE_FLOAT64_ARRAY;
    } else {
      out.type = integer ? CKPT_VALUE_INT64 : CKPT_VALUE_FLOAT64;
      if (integer) out.i = out.ints.at(0); else out.f = out.floats.at(0);
      out.ints.clear();
      out.floats.clear();
    }
    return out;
  }
  if (cls == H5T_ENUM) {
    if (!is_bool_enum(ft)) return std::nullopt;
    Handle mt = make_bool_type();
    std::vector<int8_t> b(n);
    if (n) h5_ok(src.read(mt, b.data()), where);
    for (int8_t x : b) out.bools.push_back(x ? 1 : 0);
    out.type = array ? CKPT_VALUE_BOOL_ARRAY : CKPT_VALUE_BOOL;
    if (!array) out.b = out.bools.at(0) != 0;
    return out;
  }
  if (cls == H5T_STRING) {
    std::vector<std::string> strs;
    strs.reserve(n);
    const htri_t variable = H5Tis_variable_str(ft);
    if (variable < 0) h5_fail(CKPT_ERR_FORMAT, where);
    if (variable) {
      Handle mt = make_vlen_string_type();
      h5_ok(H5Tset_cset(mt, H5Tget_cset(ft)), where);
      std::vector<char*> ptrs(n, nullptr);
      if (n) {
        guard.check_vlen(src, n, where);
        h5_ok(src.read(mt, ptrs.data()), where);
        VlenReclaim reclaim{mt, sp, ptrs.data()};
        for (char* p : ptrs) strs.emplace_back(p ? p : "");
      }
    } else {
      const size_t size = H5Tget_size(ft);
      if (size == 0) h5_fail(CKPT_ERR_FORMAT, where);
      const H5T_str_t pad = H5Tget_strpad(ft);
      std::vector<char> raw(n * size);
      if (n) h5_ok(src.read(ft, raw.data()), where);
      for (size_t k = 0; k < n; ++k) strs.push_back(trim_fixed(raw.data() + k * size, size, pad));
    }
    out.type = array ? CKPT_VALUE_STRING_ARRAY : CKPT_VALUE_STRING;
    if (array) out.strings = std::move(strs); else out.s = std::move(strs.at(0));
    return out;
  }
  if (cls == H5T_VLEN) {
    // Sequences of bytes are how this layout keeps strings a vlen string cannot hold.
    Handle base = type_handle(H5Tget_super(ft), where);
    if (H5Tget_class(base) != H5T_INTEGER || H5Tget_size(base) != 1) return std::nullopt;
    Handle mt = type_handle(H5Tvlen_create(base), where, CKPT_ERR_INTERNAL);
    std::vector<hvl_t> seqs(n, hvl_t{0, nullptr});
    std::vector<std::string> strs;
    if (n) {
      guard.check_vlen(src, n, where);
      h5_ok(src.read(mt, seqs.data()), where);
      VlenReclaim reclaim{mt, sp, seqs.data()};
      for (const hvl_t& h : seqs)
        strs.emplace_back(h.p ? static_cast<const char*>(h.p) : "", h.p ? h.len : 0);
    }
    out.type = array ? CKPT_VALUE_STRING_ARRAY : CKPT_VALUE_STRING;
    if (array) out.strings = std::move(strs); else out.s = std::move(strs.at(0));
    return out;
  }
  return std::nullopt;
}

std::optional<std::string> read_string_attribute(hid_t obj, const char* name, FileGuard& guard) {
  const htri_t exists = H5Aexists(obj, name);
  if (exists <= 0) {
    H5Eclear2(H5E_DEFAULT);
    return std::nullopt;
  }
  Handle a = attr_handle(H5Aopen(obj, name, H5P_DEFAULT), std::string("attribute ") + name);
  auto v = read_attribute(a, std::string("attribute ") + name, guard);
  if (!v || v->type != CKPT_VALUE_STRING) return std::nullopt;
  return v->s;
}

}  // namespace ckpt_hdf5

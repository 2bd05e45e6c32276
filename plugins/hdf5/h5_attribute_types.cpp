#include "h5_attribute_types.hpp"

#include "h5_layout.hpp"
#include "h5_types.hpp"

#include <charconv>
#include <cmath>
#include <cstring>
#include <vector>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

// The standard types behind NumPy's numeric dtype strings (f2 is built, as h5py builds it).
Handle number_type(std::string_view name) {
  const bool big = !name.empty() && name[0] == '>';
  if (name.size() != 3 || (name[0] != '<' && name[0] != '>')) return Handle();
  const char kind = name[1], size = name[2];
  hid_t base = H5I_INVALID_HID;
  if (kind == 'i') base = size == '1' ? H5T_STD_I8LE : size == '2' ? H5T_STD_I16LE : size == '4' ? H5T_STD_I32LE : size == '8' ? H5T_STD_I64LE : base;
  if (kind == 'u') base = size == '1' ? H5T_STD_U8LE : size == '2' ? H5T_STD_U16LE : size == '4' ? H5T_STD_U32LE : size == '8' ? H5T_STD_U64LE : base;
  if (kind == 'f') base = size == '4' ? H5T_IEEE_F32LE : size == '8' ? H5T_IEEE_F64LE : base;
  Handle t;
  if (kind == 'f' && size == '2') t = make_f16_type();
  else if (base != H5I_INVALID_HID) t = type_handle(H5Tcopy(base), "attribute type", CKPT_ERR_INTERNAL);
  else return Handle();
  if (big) h5_ok(H5Tset_order(t, H5T_ORDER_BE), "attribute type", CKPT_ERR_INTERNAL);
  return t;
}

bool is_string(uint32_t t) { return t == CKPT_VALUE_STRING || t == CKPT_VALUE_STRING_ARRAY; }
bool is_array(uint32_t t) { return t >= CKPT_VALUE_BOOL_ARRAY && t <= CKPT_VALUE_STRING_ARRAY; }

std::string_view string_at(const ckpt_value& v, uint64_t k) {
  if (v.type == CKPT_VALUE_STRING) return {v.u.s.data ? v.u.s.data : "", v.u.s.size};
  return {v.u.strings[k].data ? v.u.strings[k].data : "", v.u.strings[k].size};
}

}  // namespace

std::string describe_attribute_type(hid_t type) {
  switch (H5Tget_class(type)) {
    case H5T_INTEGER:
    case H5T_FLOAT: {
      // The one name its size, sign and order give, if the type is that standard one (not a
      // long double, a float of another layout, an integer of padded bits).
      const size_t size = H5Tget_size(type);
      if (size != 1 && size != 2 && size != 4 && size != 8) return "";
      const char kind = H5Tget_class(type) == H5T_FLOAT ? 'f' : H5Tget_sign(type) == H5T_SGN_NONE ? 'u' : 'i';
      const std::string name = std::string(H5Tget_order(type) == H5T_ORDER_BE ? ">" : "<") + kind + std::to_string(size);
      Handle t = number_type(name);
      const bool same = t.valid() && H5Tequal(type, t) > 0;
      H5Eclear2(H5E_DEFAULT);
      return same ? name : "";
    }
    case H5T_ENUM:
      return is_bool_enum(type) ? "bool" : "";
    case H5T_STRING:
      return describe_string_type(type);
    case H5T_VLEN: {
      Handle base = type_handle(H5Tget_super(type), "attribute type");
      return H5Tget_class(base) == H5T_INTEGER && H5Tget_size(base) == 1 ? "bytes" : "";
    }
    default:
      return "";
  }
}

std::string default_attribute_type(const ckpt_value& v) {
  switch (v.type) {
    case CKPT_VALUE_BOOL:
    case CKPT_VALUE_BOOL_ARRAY: return "bool";
    case CKPT_VALUE_INT64:
    case CKPT_VALUE_INT64_ARRAY: return "<i8";
    case CKPT_VALUE_FLOAT64:
    case CKPT_VALUE_FLOAT64_ARRAY: return "<f8";
    default: break;
  }
  const uint64_t n = v.type == CKPT_VALUE_STRING ? 1 : v.count;
  for (uint64_t k = 0; k < n; ++k)
    if (needs_byte_encoding(string_at(v, k))) return "bytes";
  return "variable utf-8";
}

std::string describe_attribute_shape(hid_t space) {
  const H5S_class_t c = H5Sget_simple_extent_type(space);
  if (c == H5S_SCALAR) return "";
  if (c == H5S_NULL) return "null";
  const int rank = H5Sget_simple_extent_ndims(space);
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  if (rank > 0) H5Sget_simple_extent_dims(space, dims.data(), nullptr);
  std::string s;
  for (hsize_t d : dims) s += (s.empty() ? "" : ",") + std::to_string(d);
  return s;
}

std::string default_attribute_shape(const ckpt_value& v) { return is_array(v.type) ? std::to_string(v.count) : ""; }

void write_typed_attribute(hid_t obj, const std::string& name, const ckpt_value& v, const std::string& type_text,
                           const std::string& shape_text, const std::string& where) {
  const std::string at = where + " attribute '" + name + "' (recorded as " + type_text + ", shape '" + shape_text + "')";
  const bool array = is_array(v.type);
  const uint64_t count = array ? v.count : 1;
  if (array && v.count > 0 && !v.u.ints) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": an array without data");

  // The dataspace, holding exactly the value's elements.
  Handle space;
  if (shape_text.empty()) {
    if (array) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": an array for a scalar shape");
    space = space_handle(H5Screate(H5S_SCALAR), at, CKPT_ERR_INTERNAL);
  } else if (shape_text == "null") {
    if (!array || count != 0) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": a null dataspace holds no elements");
    space = space_handle(H5Screate(H5S_NULL), at, CKPT_ERR_INTERNAL);
  } else {
    std::vector<hsize_t> dims;
    unsigned __int128 n = 1;
    for (size_t p = 0; p <= shape_text.size();) {
      size_t q = shape_text.find(',', p);
      if (q == std::string::npos) q = shape_text.size();
      hsize_t d = 0;
      const auto r = std::from_chars(shape_text.data() + p, shape_text.data() + q, d);
      if (r.ec != std::errc() || r.ptr != shape_text.data() + q || dims.size() == H5S_MAX_RANK)
        fail(CKPT_ERR_INVALID_ARGUMENT, at + ": not a list of dimensions");
      dims.push_back(d);
      n *= d;
      p = q + 1;
    }
    if (!array || n != count)
      fail(CKPT_ERR_INVALID_ARGUMENT, at + ": the shape does not hold its value of " + std::to_string(count) + " elements");
    space = space_handle(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), at, CKPT_ERR_INTERNAL);
  }

  Handle type;
  std::vector<unsigned char> bytes;  // the elements in `type`, as H5Awrite takes them
  std::vector<std::string> strings;
  std::vector<const char*> pointers;
  std::vector<hvl_t> sequences;
  const void* buf = nullptr;
  if (type_text == "bool") {
    if (v.type != CKPT_VALUE_BOOL && v.type != CKPT_VALUE_BOOL_ARRAY) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": not a bool value");
    type = make_bool_type();
    for (uint64_t k = 0; k < count; ++k) bytes.push_back(array ? (v.u.bools[k] ? 1 : 0) : (v.u.b ? 1 : 0));
    buf = bytes.data();
  } else if (Handle number = number_type(type_text); number.valid()) {
    const bool integer = type_text[1] != 'f';
    if (integer != (v.type == CKPT_VALUE_INT64 || v.type == CKPT_VALUE_INT64_ARRAY) ||
        (!integer && v.type != CKPT_VALUE_FLOAT64 && v.type != CKPT_VALUE_FLOAT64_ARRAY))
      fail(CKPT_ERR_INVALID_ARGUMENT, at + ": not " + (integer ? "an integer" : "a float") + " value");
    // Converted by libhdf5 and back: a value the type cannot hold comes back changed (its
    // conversions clamp and round without a word), and is refused rather than stored so.
    const hid_t memtype = integer ? H5T_NATIVE_INT64 : H5T_NATIVE_DOUBLE;
    const size_t size = H5Tget_size(number);
    std::vector<unsigned char> wide(count * 8);
    if (count) std::memcpy(wide.data(), array ? static_cast<const void*>(v.u.ints) : integer ? static_cast<const void*>(&v.u.i) : static_cast<const void*>(&v.u.f), count * 8);
    std::vector<unsigned char> work = wide;
    if (count && H5Tconvert(memtype, number, count, work.data(), nullptr, H5P_DEFAULT) < 0) h5_fail(CKPT_ERR_INVALID_ARGUMENT, at);
    bytes.assign(work.begin(), work.begin() + static_cast<ptrdiff_t>(count * size));
    std::vector<unsigned char> back(count * 8);
    if (count) std::memcpy(back.data(), bytes.data(), bytes.size());
    if (count && H5Tconvert(number, memtype, count, back.data(), nullptr, H5P_DEFAULT) < 0) h5_fail(CKPT_ERR_INVALID_ARGUMENT, at);
    for (uint64_t k = 0; k < count; ++k) {
      bool same = std::memcmp(back.data() + k * 8, wide.data() + k * 8, 8) == 0;
      if (!same && !integer) {
        double a = 0, b = 0;
        std::memcpy(&a, wide.data() + k * 8, 8);
        std::memcpy(&b, back.data() + k * 8, 8);
        same = std::isnan(a) && std::isnan(b);
      }
      if (!same) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": element " + std::to_string(k) + " does not fit that type exactly");
    }
    type = std::move(number);
    buf = bytes.data();
  } else {
    if (!is_string(v.type)) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": not a string value");
    for (uint64_t k = 0; k < count; ++k) strings.emplace_back(string_at(v, k));
    if (type_text == "bytes") {
      type = make_vlen_bytes_type();
      for (auto& s : strings) sequences.push_back({s.size(), s.data()});
      buf = sequences.data();
    } else {
      auto t = string_type_from(type_text);
      if (!t) fail(CKPT_ERR_INVALID_ARGUMENT, at + ": no type this layout records");
      type = std::move(*t);
      if (H5Tis_variable_str(type) > 0) {
        for (const auto& s : strings) {
          if (s.find('\0') != std::string::npos)
            fail(CKPT_ERR_INVALID_ARGUMENT, at + ": a string holding NUL, which a variable-length string cannot");
          pointers.push_back(s.c_str());
        }
        buf = pointers.data();
      } else {
        const size_t size = H5Tget_size(type);
        bytes.assign(count * size, H5Tget_strpad(type) == H5T_STR_SPACEPAD ? ' ' : '\0');
        for (size_t k = 0; k < strings.size(); ++k) {
          if (strings[k].size() > size)
            fail(CKPT_ERR_INVALID_ARGUMENT, at + ": element " + std::to_string(k) + " has " + std::to_string(strings[k].size()) +
                                                " bytes, more than the fixed size");
          std::memcpy(bytes.data() + k * size, strings[k].data(), strings[k].size());
        }
        buf = bytes.data();
      }
    }
  }
  Handle acpl = plist_handle(H5Pcreate(H5P_ATTRIBUTE_CREATE), at);
  h5_ok(H5Pset_char_encoding(acpl, H5T_CSET_UTF8), at, CKPT_ERR_INTERNAL);
  Handle attr = attr_handle(H5Acreate2(obj, name.c_str(), type, space, acpl, H5P_DEFAULT), at, CKPT_ERR_IO);
  if (count > 0) h5_ok(H5Awrite(attr, type, buf), at, CKPT_ERR_IO);
  attr.close(at, CKPT_ERR_IO);
}

}  // namespace ckpt_hdf5

#include "h5_types.hpp"
#include "h5_layout.hpp"

#include <charconv>
#include <cstring>

namespace ckpt_hdf5 {

using ckpt::sdk::fail;

namespace {

Handle copy_type(hid_t t) { return type_handle(H5Tcopy(t), "copying a datatype", CKPT_ERR_INTERNAL); }

// A little-endian IEEE-style float of two bytes with the given field layout.
Handle make_half(size_t epos, size_t esize, size_t msize, size_t ebias) {
  Handle t = copy_type(H5T_IEEE_F32LE);
  // The order matters: h5py sets the fields first, then shrinks the size.
  h5_ok(H5Tset_fields(t, 15, epos, esize, 0, msize), "half type fields", CKPT_ERR_INTERNAL);
  h5_ok(H5Tset_size(t, 2), "half type size", CKPT_ERR_INTERNAL);
  h5_ok(H5Tset_ebias(t, ebias), "half type bias", CKPT_ERR_INTERNAL);
  return t;
}

// h5py's complex: a compound of two floats named "r" and "i".
Handle make_complex_type(hid_t part) {
  const size_t half = H5Tget_size(part);
  Handle t = type_handle(H5Tcreate(H5T_COMPOUND, 2 * half), "complex type", CKPT_ERR_INTERNAL);
  h5_ok(H5Tinsert(t, "r", 0, part), "complex type", CKPT_ERR_INTERNAL);
  h5_ok(H5Tinsert(t, "i", half, part), "complex type", CKPT_ERR_INTERNAL);
  return t;
}

// A compound of exactly two floats of one size named "r" and "i", packed in that order, as
// h5py writes complex numbers (and reads them back as complex).
std::optional<uint32_t> complex_dtype(hid_t type) {
  if (H5Tget_nmembers(type) != 2) return std::nullopt;
  const size_t size = H5Tget_size(type);
  if (size != 8 && size != 16) return std::nullopt;
  for (unsigned i = 0; i < 2; ++i) {
    char* name = H5Tget_member_name(type, i);
    if (!name) {
      H5Eclear2(H5E_DEFAULT);
      return std::nullopt;
    }
    const bool named = std::strcmp(name, i == 0 ? "r" : "i") == 0;
    H5free_memory(name);
    Handle member = type_handle(H5Tget_member_type(type, i), "complex member", CKPT_ERR_FORMAT);
    if (!named || H5Tget_class(member) != H5T_FLOAT || H5Tget_size(member) != size / 2 ||
        H5Tget_member_offset(type, i) != i * (size / 2))
      return std::nullopt;
  }
  return size == 8 ? CKPT_DTYPE_C64 : CKPT_DTYPE_C128;
}

}  // namespace

Handle make_f16_type() { return make_half(10, 5, 10, 15); }

Handle make_bool_type() {
  Handle t = type_handle(H5Tenum_create(H5T_NATIVE_INT8), "bool type", CKPT_ERR_INTERNAL);
  const int8_t f = 0, tr = 1;
  h5_ok(H5Tenum_insert(t, "FALSE", &f), "bool type", CKPT_ERR_INTERNAL);
  h5_ok(H5Tenum_insert(t, "TRUE", &tr), "bool type", CKPT_ERR_INTERNAL);
  return t;
}

Handle make_vlen_string_type() {
  Handle t = copy_type(H5T_C_S1);
  h5_ok(H5Tset_size(t, H5T_VARIABLE), "string type", CKPT_ERR_INTERNAL);
  h5_ok(H5Tset_cset(t, H5T_CSET_UTF8), "string type", CKPT_ERR_INTERNAL);
  return t;
}

Handle make_vlen_bytes_type() {
  return type_handle(H5Tvlen_create(H5T_STD_U8LE), "byte-string type", CKPT_ERR_INTERNAL);
}

Handle tensor_type(uint32_t dtype) {
  switch (dtype) {
    case CKPT_DTYPE_F32: return copy_type(H5T_IEEE_F32LE);
    case CKPT_DTYPE_F64: return copy_type(H5T_IEEE_F64LE);
    case CKPT_DTYPE_F16: return make_f16_type();
    case CKPT_DTYPE_BF16: return copy_type(H5T_STD_U16LE);
    case CKPT_DTYPE_I8: return copy_type(H5T_STD_I8LE);
    case CKPT_DTYPE_U8: return copy_type(H5T_STD_U8LE);
    case CKPT_DTYPE_I16: return copy_type(H5T_STD_I16LE);
    case CKPT_DTYPE_I32: return copy_type(H5T_STD_I32LE);
    case CKPT_DTYPE_I64: return copy_type(H5T_STD_I64LE);
    case CKPT_DTYPE_BOOL: return make_bool_type();
    case CKPT_DTYPE_F8_E4M3FN:
    case CKPT_DTYPE_F8_E5M2: return copy_type(H5T_STD_U8LE);
    case CKPT_DTYPE_U16: return copy_type(H5T_STD_U16LE);
    case CKPT_DTYPE_U32: return copy_type(H5T_STD_U32LE);
    case CKPT_DTYPE_U64: return copy_type(H5T_STD_U64LE);
    case CKPT_DTYPE_C64: return make_complex_type(H5T_IEEE_F32LE);
    case CKPT_DTYPE_C128: return make_complex_type(H5T_IEEE_F64LE);
    default:
      ckpt::sdk::fail(CKPT_ERR_INVALID_ARGUMENT, "unknown dtype " + std::to_string(dtype));
  }
}

bool is_bool_enum(hid_t type) {
  if (H5Tget_class(type) != H5T_ENUM || H5Tget_size(type) != 1 || H5Tget_nmembers(type) != 2)
    return false;
  for (unsigned i = 0; i < 2; ++i) {
    char* name = H5Tget_member_name(type, i);
    if (!name) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    const bool is_false = std::strcmp(name, "FALSE") == 0, is_true = std::strcmp(name, "TRUE") == 0;
    H5free_memory(name);
    int8_t v = -1;
    if (H5Tget_member_value(type, i, &v) < 0) {
      H5Eclear2(H5E_DEFAULT);
      return false;
    }
    if (!((is_false && v == 0) || (is_true && v == 1))) return false;
  }
  return true;
}

const char* dtype_marker(uint32_t dtype) {
  switch (dtype) {
    case CKPT_DTYPE_BF16: return kBfloat16.data();
    case CKPT_DTYPE_F8_E4M3FN: return kFloat8E4m3fn.data();
    case CKPT_DTYPE_F8_E5M2: return kFloat8E5m2.data();
    default: return nullptr;
  }
}

namespace {
constexpr std::pair<H5T_str_t, const char*> kPads[] = {
    {H5T_STR_NULLTERM, "nullterm"}, {H5T_STR_NULLPAD, "nullpad"}, {H5T_STR_SPACEPAD, "spacepad"}};
}  // namespace

std::string describe_string_type(hid_t type) {
  const char* cset = H5Tget_cset(type) == H5T_CSET_UTF8 ? "utf-8" : "ascii";
  if (H5Tis_variable_str(type) > 0) return std::string("variable ") + cset;
  const H5T_str_t pad = H5Tget_strpad(type);
  const char* padding = "nullterm";
  for (const auto& [p, name] : kPads)
    if (p == pad) padding = name;
  return "fixed " + std::to_string(H5Tget_size(type)) + " " + cset + " " + padding;
}

std::optional<Handle> string_type_from(std::string_view d) {
  Handle t = copy_type(H5T_C_S1);
  const auto word = [&d]() {
    const size_t sp = d.find(' ');
    std::string_view w = d.substr(0, sp);
    d = sp == std::string_view::npos ? std::string_view() : d.substr(sp + 1);
    return w;
  };
  const std::string_view kind = word();
  size_t size = 0;
  if (kind == "fixed") {
    const std::string_view n = word();
    const auto r = std::from_chars(n.data(), n.data() + n.size(), size);
    if (r.ec != std::errc() || r.ptr != n.data() + n.size() || size == 0 || size > (uint64_t(1) << 32)) return std::nullopt;
  } else if (kind != "variable") {
    return std::nullopt;
  }
  const std::string_view cset = word();
  if (cset != "utf-8" && cset != "ascii") return std::nullopt;
  h5_ok(H5Tset_size(t, kind == "fixed" ? size : H5T_VARIABLE), "string type", CKPT_ERR_INTERNAL);
  h5_ok(H5Tset_cset(t, cset == "utf-8" ? H5T_CSET_UTF8 : H5T_CSET_ASCII), "string type", CKPT_ERR_INTERNAL);
  if (kind == "fixed") {
    const std::string_view padding = word();
    bool known = false;
    for (const auto& [p, name] : kPads)
      if (padding == name) {
        h5_ok(H5Tset_strpad(t, p), "string type", CKPT_ERR_INTERNAL);
        known = true;
      }
    if (!known) return std::nullopt;
  }
  if (!d.empty()) return std::nullopt;
  return t;
}

void check_nested_layout(hid_t type, const std::string& where) {
  const H5T_class_t cls = H5Tget_class(type);
  const size_t size = H5Tget_size(type);
  if (cls == H5T_INTEGER || cls == H5T_FLOAT) {
    const size_t precision = H5Tget_precision(type);
    const int offset = H5Tget_offset(type);
    if (size == 0 || precision == 0 || offset < 0 || precision > 8 * size || static_cast<size_t>(offset) > 8 * size - precision)
      fail(CKPT_ERR_FORMAT, where + ": a number type of " + std::to_string(precision) + " bits at bit " + std::to_string(offset) +
                                " of " + std::to_string(size) + " bytes");
    return;
  }
  if (cls == H5T_ENUM || cls == H5T_ARRAY || cls == H5T_VLEN) {
    Handle base = type_handle(H5Tget_super(type), where);
    check_nested_layout(base, where);
    return;
  }
  if (cls != H5T_COMPOUND) return;
  const int n = H5Tget_nmembers(type);
  if (n < 0) h5_fail(CKPT_ERR_FORMAT, where);
  for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
    Handle member = type_handle(H5Tget_member_type(type, i), where);
    const size_t offset = H5Tget_member_offset(type, i), msize = H5Tget_size(member);
    if (msize == 0 || offset > size || msize > size - offset)
      fail(CKPT_ERR_FORMAT, where + ": a nested field of " + std::to_string(msize) + " bytes at offset " + std::to_string(offset) +
                                " lies outside its record of " + std::to_string(size) + " bytes");
    check_nested_layout(member, where);
  }
}

std::string compound_layout_loss(hid_t type, const std::vector<CompoundField>& fields) {
  std::string loss;
  const auto add = [&loss](const std::string& s) { loss += (loss.empty() ? "" : "; ") + s; };
  size_t packed = 0;
  bool big_endian = false, moved = false;
  for (unsigned i = 0; i < fields.size(); ++i) {
    Handle member = type_handle(H5Tget_member_type(type, i), "compound field '" + fields[i].name + "'");
    const size_t size = H5Tget_size(member);
    if (H5Tget_member_offset(type, i) != packed) moved = true;  // padding before it, or out of order
    packed += size;
    Handle atom = H5Tget_class(member) == H5T_COMPOUND ? type_handle(H5Tget_member_type(member, 0), "compound field '" + fields[i].name + "'")
                                                       : type_handle(H5Tcopy(member), "compound field '" + fields[i].name + "'");
    if (H5Tget_order(atom) == H5T_ORDER_BE && H5Tget_size(atom) > 1) big_endian = true;
    if (H5Tget_class(atom) == H5T_FLOAT && H5Tget_size(atom) > 8)
      add("field '" + fields[i].name + "' is a " + std::to_string(H5Tget_size(atom)) + "-byte float, read rounded to f64");
  }
  H5Eclear2(H5E_DEFAULT);
  if (big_endian) add("big-endian fields, written back little-endian");
  if (moved || packed != H5Tget_size(type)) add("a layout with padding or out of field order, written back packed");
  return loss;
}

Handle column_memtype(const std::string& name, hid_t type) {
  Handle t = type_handle(H5Tcreate(H5T_COMPOUND, H5Tget_size(type)), "column type", CKPT_ERR_INTERNAL);
  h5_ok(H5Tinsert(t, name.c_str(), 0, type), "column type", CKPT_ERR_INTERNAL);
  return t;
}

std::optional<std::vector<CompoundField>> compound_fields(hid_t type, const std::string& where, std::string& problem) {
  const int n = H5Tget_nmembers(type);
  if (n <= 0) {
    H5Eclear2(H5E_DEFAULT);
    problem = "no fields";
    return std::nullopt;
  }
  // libhdf5 compares compound types by sorting their fields' names with a bubble sort, on each
  // read through a conversion path: a column of 2,000 fields took seconds to read, each of them.
  if (n > static_cast<int>(kMaxCompoundFields)) {
    problem = std::to_string(n) + " fields, more than the " + std::to_string(kMaxCompoundFields) + " ckpt reads as columns";
    return std::nullopt;
  }
  const size_t record = H5Tget_size(type);
  std::vector<CompoundField> fields;
  for (unsigned i = 0; i < static_cast<unsigned>(n); ++i) {
    char* raw = H5Tget_member_name(type, i);
    if (!raw) h5_fail(CKPT_ERR_FORMAT, where + ": a compound field's name");
    const std::string name = raw;
    H5free_memory(raw);
    const std::string at = where + " field '" + name + "'";
    Handle member = type_handle(H5Tget_member_type(type, i), at);
    // libhdf5 converts a field at the offset its type gives, unchecked: a field past its record
    // made it read and write past its buffers.
    const size_t offset = H5Tget_member_offset(type, i), size = H5Tget_size(member);
    if (size == 0 || offset > record || size > record - offset)
      fail(CKPT_ERR_FORMAT, at + ": " + std::to_string(size) + " bytes at offset " + std::to_string(offset) +
                                " lie outside its record of " + std::to_string(record) + " bytes");
    check_nested_layout(member, at);
    auto tt = classify_tensor_type(member, "");
    H5Eclear2(H5E_DEFAULT);
    if (name.empty() || name.find('/') != std::string::npos) {
      problem = "a field named '" + name + "', which no document member can be";
      return std::nullopt;
    }
    if (!tt) {
      static const std::pair<H5T_class_t, const char*> kinds[] = {
          {H5T_STRING, "strings"}, {H5T_COMPOUND, "compound records"}, {H5T_ARRAY, "arrays"},
          {H5T_VLEN, "variable-length sequences"}, {H5T_ENUM, "enums"}};
      std::string kind = "a type ckpt has no dtype for";
      for (const auto& [cls, what] : kinds)
        if (H5Tget_class(member) == cls) kind = what;
      problem = "its field '" + name + "' holds " + kind;
      return std::nullopt;
    }
    fields.push_back({name, tt->dtype, column_memtype(name, tt->memtype)});
  }
  return fields;
}

std::optional<TensorType> classify_tensor_type(hid_t ft, std::string_view marker) {
  const H5T_class_t cls = H5Tget_class(ft);
  const size_t size = H5Tget_size(ft);
  if (cls == H5T_FLOAT) {
    if (size == 2) {
      size_t spos, epos, esize, mpos, msize;
      if (H5Tget_fields(ft, &spos, &epos, &esize, &mpos, &msize) >= 0 && esize == 8)
        return TensorType{CKPT_DTYPE_BF16, make_half(7, 8, 7, 127)};
      H5Eclear2(H5E_DEFAULT);
      return TensorType{CKPT_DTYPE_F16, make_f16_type()};
    }
    if (size == 4) return TensorType{CKPT_DTYPE_F32, copy_type(H5T_IEEE_F32LE)};
    // Wider floats (long double) convert to f64; HDF5 does the rounding.
    return TensorType{CKPT_DTYPE_F64, copy_type(H5T_IEEE_F64LE)};
  }
  if (cls == H5T_INTEGER) {
    const bool is_signed = H5Tget_sign(ft) == H5T_SGN_2;
    if (!is_signed && !marker.empty())
      for (uint32_t d : {CKPT_DTYPE_BF16, CKPT_DTYPE_F8_E4M3FN, CKPT_DTYPE_F8_E5M2})
        if (marker == dtype_marker(d) && size == ckpt::sdk::dtype_size(d)) return TensorType{d, tensor_type(d)};
    uint32_t d;
    if (size == 1) d = is_signed ? CKPT_DTYPE_I8 : CKPT_DTYPE_U8;
    else if (size == 2) d = is_signed ? CKPT_DTYPE_I16 : CKPT_DTYPE_U16;
    else if (size == 4) d = is_signed ? CKPT_DTYPE_I32 : CKPT_DTYPE_U32;
    else if (size == 8) d = is_signed ? CKPT_DTYPE_I64 : CKPT_DTYPE_U64;
    else return std::nullopt;
    return TensorType{d, tensor_type(d)};
  }
  if (cls == H5T_COMPOUND)
    if (auto d = complex_dtype(ft)) return TensorType{*d, tensor_type(*d)};
  if (cls == H5T_ENUM && is_bool_enum(ft)) return TensorType{CKPT_DTYPE_BOOL, make_bool_type()};
  return std::nullopt;
}

}  // namespace ckpt_hdf5

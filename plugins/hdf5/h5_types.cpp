#include "h5_types.hpp"
#include "h5_layout.hpp"

#include <cstring>

namespace ckpt_hdf5 {

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

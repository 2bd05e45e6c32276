// The golden layout of plugin ABI v1 on LP64 (x86-64, AArch64): every offset, field type, fixed
// size and constant that a plugin built against v1 has compiled into it. Included after a
// plugin_abi.h, it fails the build when that header would break plugins already built:
//  - a field moved or changed type: built plugins read and write the wrong bytes;
//  - a struct without struct_size (ckpt_str, ckpt_value, ckpt_option, ckpt_magic) changed size:
//    they are passed by value or in arrays indexed with the plugin's sizeof;
//  - an enum value, capability bit, ABI version or entry symbol changed.
// Appending a field to a struct that starts with struct_size is allowed and passes: that is
// how the ABI grows (readers test CKPT_HAS_FIELD).
//
// Never edit the numbers to make a build pass; a change that fails here needs ABI v2.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>

#if !defined(__LP64__) && !defined(_WIN64)
#error "the ckpt ABI v1 golden layout is recorded for 64-bit targets (LP64) only"
#endif

#define CKPT_V1_FIELD(T, field, offset, ...)                                                   \
  static_assert(offsetof(T, field) == (offset),                                               \
                "ckpt ABI v1 broken: " #T "." #field " must stay at offset " #offset);        \
  static_assert(std::is_same_v<decltype(std::declval<T&>().field), __VA_ARGS__>,             \
                "ckpt ABI v1 broken: " #T "." #field " must keep its type " #__VA_ARGS__)
#define CKPT_V1_FIXED_SIZE(T, size)                                                            \
  static_assert(sizeof(T) == (size) && alignof(T) == 8,                                       \
                "ckpt ABI v1 broken: " #T " has no struct_size, so its size must stay " #size)
#define CKPT_V1_GROWABLE(T, size)                                                              \
  static_assert(sizeof(T) >= (size) && alignof(T) == 8,                                       \
                "ckpt ABI v1 broken: " #T " may only grow at its end (v1 size " #size ")")
#define CKPT_V1_CONSTANT(name, value) \
  static_assert((name) == (value), "ckpt ABI v1 broken: " #name " must stay " #value)

namespace ckpt_abi_v1_golden {

using status_fn_writer_group = ckpt_status* (*)(ckpt_writer*, const char*, uint64_t, uint64_t);
using status_fn_writer = ckpt_status* (*)(ckpt_writer*);

// ---- constants ----
static_assert(std::string_view(CKPT_PLUGIN_ENTRY_SYMBOL) == "ckpt_plugin_entry_v1",
              "ckpt ABI v1 broken: the entry symbol must stay ckpt_plugin_entry_v1");
CKPT_V1_CONSTANT(CKPT_ABI_VERSION, 1u);
static_assert(sizeof(ckpt_status_code) == 4 && sizeof(ckpt_dtype) == 4 && sizeof(ckpt_value_type) == 4,
              "ckpt ABI v1 broken: the enums must stay 4 bytes");
CKPT_V1_CONSTANT(CKPT_OK, 0);
CKPT_V1_CONSTANT(CKPT_ERR_FORMAT, 1);
CKPT_V1_CONSTANT(CKPT_ERR_IO, 2);
CKPT_V1_CONSTANT(CKPT_ERR_INTEGRITY, 3);
CKPT_V1_CONSTANT(CKPT_ERR_UNSUPPORTED, 4);
CKPT_V1_CONSTANT(CKPT_ERR_INVALID_ARGUMENT, 5);
CKPT_V1_CONSTANT(CKPT_ERR_NOT_FOUND, 6);
CKPT_V1_CONSTANT(CKPT_ERR_OUT_OF_MEMORY, 7);
CKPT_V1_CONSTANT(CKPT_ERR_LIMIT, 8);
CKPT_V1_CONSTANT(CKPT_ERR_INTERNAL, 9);
CKPT_V1_CONSTANT(CKPT_DTYPE_F32, 1);
CKPT_V1_CONSTANT(CKPT_DTYPE_F64, 2);
CKPT_V1_CONSTANT(CKPT_DTYPE_F16, 3);
CKPT_V1_CONSTANT(CKPT_DTYPE_BF16, 4);
CKPT_V1_CONSTANT(CKPT_DTYPE_I8, 5);
CKPT_V1_CONSTANT(CKPT_DTYPE_U8, 6);
CKPT_V1_CONSTANT(CKPT_DTYPE_I16, 7);
CKPT_V1_CONSTANT(CKPT_DTYPE_I32, 8);
CKPT_V1_CONSTANT(CKPT_DTYPE_I64, 9);
CKPT_V1_CONSTANT(CKPT_DTYPE_BOOL, 10);
CKPT_V1_CONSTANT(CKPT_DTYPES_ALL, 0x7feu);
CKPT_V1_CONSTANT(CKPT_VALUE_BOOL, 1);
CKPT_V1_CONSTANT(CKPT_VALUE_INT64, 2);
CKPT_V1_CONSTANT(CKPT_VALUE_FLOAT64, 3);
CKPT_V1_CONSTANT(CKPT_VALUE_STRING, 4);
CKPT_V1_CONSTANT(CKPT_VALUE_BOOL_ARRAY, 5);
CKPT_V1_CONSTANT(CKPT_VALUE_INT64_ARRAY, 6);
CKPT_V1_CONSTANT(CKPT_VALUE_FLOAT64_ARRAY, 7);
CKPT_V1_CONSTANT(CKPT_VALUE_STRING_ARRAY, 8);
CKPT_V1_CONSTANT(CKPT_CAP_READ, 1u << 0);
CKPT_V1_CONSTANT(CKPT_CAP_WRITE, 1u << 1);
CKPT_V1_CONSTANT(CKPT_CAP_MAP, 1u << 2);
CKPT_V1_CONSTANT(CKPT_CAP_ATTRIBUTES, 1u << 3);
CKPT_V1_CONSTANT(CKPT_CAP_NESTED_GROUPS, 1u << 4);
CKPT_V1_CONSTANT(CKPT_CAP_ATTRIBUTE_ARRAYS, 1u << 5);
CKPT_V1_CONSTANT(CKPT_CAP_LAZY_LIST, 1u << 6);
CKPT_V1_CONSTANT(CKPT_CAP_DETERMINISTIC, 1u << 7);

// ---- values ----
CKPT_V1_FIXED_SIZE(ckpt_str, 16);
CKPT_V1_FIELD(ckpt_str, data, 0, const char*);
CKPT_V1_FIELD(ckpt_str, size, 8, uint64_t);

CKPT_V1_FIXED_SIZE(ckpt_value, 32);
CKPT_V1_FIELD(ckpt_value, type, 0, uint32_t);
CKPT_V1_FIELD(ckpt_value, reserved, 4, uint32_t);
CKPT_V1_FIELD(ckpt_value, count, 8, uint64_t);
CKPT_V1_FIELD(ckpt_value, u, 16, decltype(std::declval<ckpt_value&>().u));
static_assert(sizeof(std::declval<ckpt_value&>().u) == 16, "ckpt ABI v1 broken: ckpt_value.u must stay 16 bytes");
CKPT_V1_FIELD(ckpt_value, u.b, 16, int64_t);
CKPT_V1_FIELD(ckpt_value, u.i, 16, int64_t);
CKPT_V1_FIELD(ckpt_value, u.f, 16, double);
CKPT_V1_FIELD(ckpt_value, u.s, 16, ckpt_str);
CKPT_V1_FIELD(ckpt_value, u.bools, 16, const uint8_t*);
CKPT_V1_FIELD(ckpt_value, u.ints, 16, const int64_t*);
CKPT_V1_FIELD(ckpt_value, u.floats, 16, const double*);
CKPT_V1_FIELD(ckpt_value, u.strings, 16, const ckpt_str*);

CKPT_V1_GROWABLE(ckpt_tensor_desc, 48);
CKPT_V1_FIELD(ckpt_tensor_desc, struct_size, 0, uint32_t);
CKPT_V1_FIELD(ckpt_tensor_desc, dtype, 4, uint32_t);
CKPT_V1_FIELD(ckpt_tensor_desc, name, 8, const char*);
CKPT_V1_FIELD(ckpt_tensor_desc, rank, 16, uint32_t);
CKPT_V1_FIELD(ckpt_tensor_desc, reserved, 20, uint32_t);
CKPT_V1_FIELD(ckpt_tensor_desc, shape, 24, const int64_t*);
CKPT_V1_FIELD(ckpt_tensor_desc, nbytes, 32, uint64_t);
CKPT_V1_FIELD(ckpt_tensor_desc, id, 40, uint64_t);

CKPT_V1_FIXED_SIZE(ckpt_option, 16);
CKPT_V1_FIELD(ckpt_option, key, 0, const char*);
CKPT_V1_FIELD(ckpt_option, value, 8, const char*);

// ---- host ----
CKPT_V1_GROWABLE(ckpt_host_api, 16);
CKPT_V1_FIELD(ckpt_host_api, struct_size, 0, uint32_t);
CKPT_V1_FIELD(ckpt_host_api, abi_version, 4, uint32_t);
CKPT_V1_FIELD(ckpt_host_api, make_status, 8, ckpt_status* (*)(ckpt_status_code, const char*));

// ---- writing ----
CKPT_V1_GROWABLE(ckpt_writer_api, 56);
CKPT_V1_FIELD(ckpt_writer_api, struct_size, 0, uint32_t);
CKPT_V1_FIELD(ckpt_writer_api, begin_group, 8, status_fn_writer_group);
CKPT_V1_FIELD(ckpt_writer_api, end_group, 16, status_fn_writer);
CKPT_V1_FIELD(ckpt_writer_api, attribute, 24, ckpt_status* (*)(ckpt_writer*, const char*, const ckpt_value*));
CKPT_V1_FIELD(ckpt_writer_api, tensor, 32, ckpt_status* (*)(ckpt_writer*, const ckpt_tensor_desc*, const void*));
CKPT_V1_FIELD(ckpt_writer_api, finish, 40, status_fn_writer);
CKPT_V1_FIELD(ckpt_writer_api, destroy, 48, void (*)(ckpt_writer*));

// ---- reading ----
CKPT_V1_GROWABLE(ckpt_visitor, 48);
CKPT_V1_FIELD(ckpt_visitor, struct_size, 0, uint32_t);
CKPT_V1_FIELD(ckpt_visitor, ctx, 8, void*);
CKPT_V1_FIELD(ckpt_visitor, begin_group, 16, ckpt_status* (*)(void*, const char*));
CKPT_V1_FIELD(ckpt_visitor, end_group, 24, ckpt_status* (*)(void*));
CKPT_V1_FIELD(ckpt_visitor, attribute, 32, ckpt_status* (*)(void*, const char*, const ckpt_value*));
CKPT_V1_FIELD(ckpt_visitor, tensor, 40, ckpt_status* (*)(void*, const ckpt_tensor_desc*));

CKPT_V1_GROWABLE(ckpt_reader_api, 40);
CKPT_V1_FIELD(ckpt_reader_api, struct_size, 0, uint32_t);
CKPT_V1_FIELD(ckpt_reader_api, list, 8, ckpt_status* (*)(ckpt_reader*, const ckpt_visitor*));
CKPT_V1_FIELD(ckpt_reader_api, read_tensor, 16, ckpt_status* (*)(ckpt_reader*, uint64_t, void*, uint64_t));
CKPT_V1_FIELD(ckpt_reader_api, map_tensor, 24, ckpt_status* (*)(ckpt_reader*, uint64_t, const void**));
CKPT_V1_FIELD(ckpt_reader_api, destroy, 32, void (*)(ckpt_reader*));

// ---- formats and the descriptor ----
CKPT_V1_FIXED_SIZE(ckpt_magic, 24);
CKPT_V1_FIELD(ckpt_magic, offset, 0, uint64_t);
CKPT_V1_FIELD(ckpt_magic, bytes, 8, const uint8_t*);
CKPT_V1_FIELD(ckpt_magic, size, 16, uint32_t);

CKPT_V1_GROWABLE(ckpt_format, 80);
CKPT_V1_FIELD(ckpt_format, struct_size, 0, uint32_t);
CKPT_V1_FIELD(ckpt_format, name, 8, const char*);
CKPT_V1_FIELD(ckpt_format, long_name, 16, const char*);
CKPT_V1_FIELD(ckpt_format, extensions, 24, const char* const*);
CKPT_V1_FIELD(ckpt_format, magic, 32, const ckpt_magic*);
CKPT_V1_FIELD(ckpt_format, n_magic, 40, uint32_t);
CKPT_V1_FIELD(ckpt_format, capabilities, 44, uint32_t);
CKPT_V1_FIELD(ckpt_format, dtypes, 48, uint32_t);
CKPT_V1_FIELD(ckpt_format, reserved, 52, uint32_t);
CKPT_V1_FIELD(ckpt_format, identify, 56, int (*)(const uint8_t*, size_t, uint64_t));
CKPT_V1_FIELD(ckpt_format, open_writer, 64,
              ckpt_status* (*)(const char*, const ckpt_option*, size_t, ckpt_writer**, const ckpt_writer_api**));
CKPT_V1_FIELD(ckpt_format, open_reader, 72,
              ckpt_status* (*)(const char*, const ckpt_option*, size_t, ckpt_reader**, const ckpt_reader_api**));

CKPT_V1_GROWABLE(ckpt_plugin_descriptor, 40);
CKPT_V1_FIELD(ckpt_plugin_descriptor, struct_size, 0, uint32_t);
CKPT_V1_FIELD(ckpt_plugin_descriptor, abi_version, 4, uint32_t);
CKPT_V1_FIELD(ckpt_plugin_descriptor, name, 8, const char*);
CKPT_V1_FIELD(ckpt_plugin_descriptor, version, 16, const char*);
CKPT_V1_FIELD(ckpt_plugin_descriptor, formats, 24, const ckpt_format*);
CKPT_V1_FIELD(ckpt_plugin_descriptor, n_formats, 32, uint32_t);

static_assert(std::is_same_v<ckpt_plugin_entry_fn, const ckpt_plugin_descriptor* (*)(const ckpt_host_api*)>,
              "ckpt ABI v1 broken: the entry point's signature must stay");

}  // namespace ckpt_abi_v1_golden

#undef CKPT_V1_FIELD
#undef CKPT_V1_FIXED_SIZE
#undef CKPT_V1_GROWABLE
#undef CKPT_V1_CONSTANT

/* ckpt plugin ABI, version 1.
 *
 * The only contract between the ckpt host and a format plugin. Plain C so that a plugin built
 * with another compiler, standard library or language still loads. Rules:
 *  - A plugin exports exactly one symbol, CKPT_PLUGIN_ENTRY_SYMBOL, returning its descriptor.
 *  - Structs are append-only. Every struct that may grow starts with `struct_size`; a reader of
 *    a struct uses a field only when it lies inside `struct_size` (CKPT_HAS_FIELD).
 *  - Nothing C++ crosses: no exceptions, no std types, no memory freed on the other side.
 *    Errors are `ckpt_status*` made by the host's `make_status`; NULL means success. The host
 *    owns and frees every status.
 *  - Pointers handed to a callback are valid only for the duration of that call, unless a
 *    function says otherwise (map_tensor).
 * See docs/plugin-guide.md for ownership, lifetime and threading rules.
 */
#ifndef CKPT_PLUGIN_ABI_H
#define CKPT_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CKPT_ABI_VERSION 1u
#define CKPT_PLUGIN_ENTRY_SYMBOL "ckpt_plugin_entry_v1"

#if defined(_WIN32)
#define CKPT_PLUGIN_EXPORT __declspec(dllexport)
#else
#define CKPT_PLUGIN_EXPORT __attribute__((visibility("default")))
#endif

#define CKPT_HAS_FIELD(ptr, type, field) \
  ((ptr)->struct_size >= offsetof(type, field) + sizeof(((type*)0)->field))

/* ---- statuses ------------------------------------------------------------------------- */

typedef enum ckpt_status_code {
  CKPT_OK = 0,
  CKPT_ERR_FORMAT = 1,           /* the bytes are not what the format says they must be */
  CKPT_ERR_IO = 2,               /* the operating system refused a read or write */
  CKPT_ERR_INTEGRITY = 3,        /* a checksum or hash stored in the file does not match */
  CKPT_ERR_UNSUPPORTED = 4,      /* valid input this plugin cannot hold or produce */
  CKPT_ERR_INVALID_ARGUMENT = 5, /* the host passed something outside the contract */
  CKPT_ERR_NOT_FOUND = 6,        /* a tensor id or file that does not exist */
  CKPT_ERR_OUT_OF_MEMORY = 7,
  CKPT_ERR_LIMIT = 8,            /* a size in the file exceeds a bound (file size, header cap) */
  CKPT_ERR_INTERNAL = 9          /* a bug in the plugin */
} ckpt_status_code;

/* Opaque; made by the host, owned by the host. */
typedef struct ckpt_status ckpt_status;

/* ---- values and tensors --------------------------------------------------------------- */

typedef enum ckpt_dtype {
  CKPT_DTYPE_F32 = 1,
  CKPT_DTYPE_F64 = 2,
  CKPT_DTYPE_F16 = 3,
  CKPT_DTYPE_BF16 = 4,
  CKPT_DTYPE_I8 = 5,
  CKPT_DTYPE_U8 = 6,
  CKPT_DTYPE_I16 = 7,
  CKPT_DTYPE_I32 = 8,
  CKPT_DTYPE_I64 = 9,
  CKPT_DTYPE_BOOL = 10
} ckpt_dtype;

#define CKPT_DTYPE_BIT(d) (1u << (unsigned)(d))
#define CKPT_DTYPES_ALL                                                                        \
  (CKPT_DTYPE_BIT(CKPT_DTYPE_F32) | CKPT_DTYPE_BIT(CKPT_DTYPE_F64) |                           \
   CKPT_DTYPE_BIT(CKPT_DTYPE_F16) | CKPT_DTYPE_BIT(CKPT_DTYPE_BF16) |                          \
   CKPT_DTYPE_BIT(CKPT_DTYPE_I8) | CKPT_DTYPE_BIT(CKPT_DTYPE_U8) |                             \
   CKPT_DTYPE_BIT(CKPT_DTYPE_I16) | CKPT_DTYPE_BIT(CKPT_DTYPE_I32) |                           \
   CKPT_DTYPE_BIT(CKPT_DTYPE_I64) | CKPT_DTYPE_BIT(CKPT_DTYPE_BOOL))

typedef enum ckpt_value_type {
  CKPT_VALUE_BOOL = 1,
  CKPT_VALUE_INT64 = 2,
  CKPT_VALUE_FLOAT64 = 3,
  CKPT_VALUE_STRING = 4,
  CKPT_VALUE_BOOL_ARRAY = 5,
  CKPT_VALUE_INT64_ARRAY = 6,
  CKPT_VALUE_FLOAT64_ARRAY = 7,
  CKPT_VALUE_STRING_ARRAY = 8
} ckpt_value_type;

/* UTF-8 bytes, not NUL-terminated (may contain any byte). */
typedef struct ckpt_str {
  const char* data;
  uint64_t size;
} ckpt_str;

/* An attribute value. Arrays have `count` elements; scalars ignore `count`. Bools are bytes
 * holding 0 or 1. Fixed layout: never grows (a new type gets a new enum value). */
typedef struct ckpt_value {
  uint32_t type; /* ckpt_value_type */
  uint32_t reserved;
  uint64_t count;
  union {
    int64_t b; /* 0 or 1 */
    int64_t i;
    double f;
    ckpt_str s;
    const uint8_t* bools;
    const int64_t* ints;
    const double* floats;
    const ckpt_str* strings;
  } u;
} ckpt_value;

typedef struct ckpt_tensor_desc {
  uint32_t struct_size;
  uint32_t dtype; /* ckpt_dtype */
  const char* name; /* NUL-terminated UTF-8, no '/' */
  uint32_t rank;
  uint32_t reserved;
  const int64_t* shape; /* rank entries; rank 0 is a scalar */
  uint64_t nbytes;      /* product(shape) * itemsize, little-endian, C order */
  uint64_t id;          /* readers: the handle to pass to read_tensor/map_tensor */
} ckpt_tensor_desc;

typedef struct ckpt_option {
  const char* key;
  const char* value;
} ckpt_option;

/* ---- host --------------------------------------------------------------------------- */

typedef struct ckpt_host_api {
  uint32_t struct_size;
  uint32_t abi_version;
  /* Makes a status the plugin returns to the host. `message` is copied. Never NULL. */
  ckpt_status* (*make_status)(ckpt_status_code code, const char* message);
} ckpt_host_api;

/* ---- writing -------------------------------------------------------------------------- */

typedef struct ckpt_writer ckpt_writer; /* the plugin's object */

/* The host writes a document as a stream of events: begin_group("") for the root, then for
 * every group its attributes, then its children (tensors and groups) in order, end_group,
 * and finally finish. Counts are exact, so formats with length-prefixed containers stream. */
typedef struct ckpt_writer_api {
  uint32_t struct_size;
  ckpt_status* (*begin_group)(ckpt_writer* w, const char* name, uint64_t n_attributes,
                              uint64_t n_children);
  ckpt_status* (*end_group)(ckpt_writer* w);
  ckpt_status* (*attribute)(ckpt_writer* w, const char* name, const ckpt_value* value);
  /* `data` holds desc->nbytes bytes, valid for this call only. */
  ckpt_status* (*tensor)(ckpt_writer* w, const ckpt_tensor_desc* desc, const void* data);
  /* Flush and close the file. The host then fsyncs and renames it into place. */
  ckpt_status* (*finish)(ckpt_writer* w);
  /* Frees the writer; after a failure or without finish, leaves whatever is on disk to the
   * host, which removes it. */
  void (*destroy)(ckpt_writer* w);
} ckpt_writer_api;

/* ---- reading -------------------------------------------------------------------------- */

typedef struct ckpt_reader ckpt_reader; /* the plugin's object */

/* Callbacks the host passes to list(). A callback's non-NULL status must be returned by list
 * unchanged (the host owns it). */
typedef struct ckpt_visitor {
  uint32_t struct_size;
  void* ctx;
  ckpt_status* (*begin_group)(void* ctx, const char* name);
  ckpt_status* (*end_group)(void* ctx);
  ckpt_status* (*attribute)(void* ctx, const char* name, const ckpt_value* value);
  ckpt_status* (*tensor)(void* ctx, const ckpt_tensor_desc* desc);
} ckpt_visitor;

typedef struct ckpt_reader_api {
  uint32_t struct_size;
  /* Reports the tree (root first, as begin_group("")) without reading tensor data where the
   * format allows. May be called more than once. */
  ckpt_status* (*list)(ckpt_reader* r, const ckpt_visitor* visitor);
  /* Copies one tensor's bytes into dst (exactly nbytes). */
  ckpt_status* (*read_tensor)(ckpt_reader* r, uint64_t id, void* dst, uint64_t nbytes);
  /* Optional (NULL unless CKPT_CAP_MAP): points *data at the tensor's bytes, valid until
   * destroy. The pointer may be unaligned. */
  ckpt_status* (*map_tensor)(ckpt_reader* r, uint64_t id, const void** data);
  void (*destroy)(ckpt_reader* r);
} ckpt_reader_api;

/* ---- formats and the plugin descriptor ----------------------------------------------------- */

enum {
  CKPT_CAP_READ = 1u << 0,
  CKPT_CAP_WRITE = 1u << 1,
  CKPT_CAP_MAP = 1u << 2,              /* map_tensor gives zero-copy views */
  CKPT_CAP_ATTRIBUTES = 1u << 3,       /* holds typed attributes */
  CKPT_CAP_NESTED_GROUPS = 1u << 4,    /* holds groups inside groups */
  CKPT_CAP_ATTRIBUTE_ARRAYS = 1u << 5, /* holds array-valued attributes */
  CKPT_CAP_LAZY_LIST = 1u << 6,        /* list() reads no tensor data */
  CKPT_CAP_DETERMINISTIC = 1u << 7     /* the same document gives the same bytes */
};

typedef struct ckpt_magic {
  uint64_t offset;
  const uint8_t* bytes;
  uint32_t size;
} ckpt_magic;

typedef struct ckpt_format {
  uint32_t struct_size;
  const char* name;       /* short, lower case: "json" */
  const char* long_name;  /* "ckpt JSON document" */
  const char* const* extensions; /* NULL-terminated, with the dot: ".json" */
  const ckpt_magic* magic;       /* any of these identifies a candidate */
  uint32_t n_magic;
  uint32_t capabilities; /* CKPT_CAP_* */
  uint32_t dtypes;       /* CKPT_DTYPE_BIT mask of dtypes held exactly */
  uint32_t reserved;
  /* 0 = not this format, 100 = certain. `head` is the first `len` bytes of a file of
   * `file_size` bytes. Must not throw, allocate unboundedly or read past len. */
  int (*identify)(const uint8_t* head, size_t len, uint64_t file_size);
  /* Options are key/value pairs; an unknown key is CKPT_ERR_INVALID_ARGUMENT. */
  ckpt_status* (*open_writer)(const char* path, const ckpt_option* options, size_t n_options,
                              ckpt_writer** out, const ckpt_writer_api** api);
  ckpt_status* (*open_reader)(const char* path, const ckpt_option* options, size_t n_options,
                              ckpt_reader** out, const ckpt_reader_api** api);
} ckpt_format;

typedef struct ckpt_plugin_descriptor {
  uint32_t struct_size;
  uint32_t abi_version; /* CKPT_ABI_VERSION the plugin was built against */
  const char* name;     /* the plugin's name; its file is ckpt_<name>.so */
  const char* version;  /* the plugin's own version */
  const ckpt_format* formats;
  uint32_t n_formats;
} ckpt_plugin_descriptor;

/* The one exported symbol. Called once per load; `host` outlives every object the plugin
 * makes. Returns NULL if the plugin cannot work with this host. */
typedef const ckpt_plugin_descriptor* (*ckpt_plugin_entry_fn)(const ckpt_host_api* host);

#ifdef __cplusplus
}
#endif

#endif /* CKPT_PLUGIN_ABI_H */

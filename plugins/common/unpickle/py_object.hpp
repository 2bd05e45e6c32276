// The Python values a restricted unpickler can build. Nothing here is a live Python object:
// a class the unpickler does not know becomes a Record of its attributes, and the only
// "calls" are the array and tensor rebuilders it emulates. Objects live in an Arena and point
// at each other without owning, so cycles a pickle builds through its memo cost no leak.
#pragma once

#include <ckpt/plugin_abi.h>
#include <ckpt/sdk_names.hpp>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace ckpt_pickle {

enum class Kind : uint8_t {
  none,
  boolean,
  integer,
  floating,
  string,   // str: UTF-8
  bytes,    // bytes, bytearray
  list,     // list, set, frozenset
  tuple,
  dict,     // dict, OrderedDict
  global,   // a class or function named by the pickle, never resolved
  record,   // an instance of a class we do not know: its attributes only
  storage,  // a torch storage (persistent id)
  array,    // a torch tensor or a NumPy array: a strided view over bytes
  dtype,    // a numpy.dtype
};

struct Obj {
  explicit Obj(Kind k) : kind(k) {}
  virtual ~Obj() = default;
  Kind kind;
};

struct Scalar final : Obj {
  explicit Scalar(Kind k) : Obj(k) {}
  bool b = false;
  int64_t i = 0;
  double f = 0;
};

// str or bytes: a view into the input when the pickle holds the bytes verbatim, else owned.
struct Text final : Obj {
  explicit Text(Kind k) : Obj(k) {}
  std::string owned;
  std::string_view view;
  std::string_view str() const { return view.data() ? view : std::string_view(owned); }
};

struct Seq final : Obj {
  explicit Seq(Kind k) : Obj(k) {}
  std::vector<Obj*> items;
  // A set or frozenset (read as a list): an item equal to one already there is not added again.
  bool is_set = false;
  void add(Obj* item);

 private:
  std::unique_ptr<std::unordered_set<std::string>> members_;  // identities, made on first add
};

struct Dict final : Obj {
  Dict() : Obj(Kind::dict) {}
  bool ordered = false;
  bool counter = false;  // a collections.Counter, read as the dict of its counts
  std::vector<std::pair<Obj*, Obj*>> entries;
  Obj* instance_state = nullptr;  // what BUILD set on an OrderedDict (torch's _metadata)
  Obj* find(std::string_view key) const;  // a str key
  // d[key] = value: a key equal to one already present (as Python compares keys: 1, 1.0 and
  // True are one key) keeps its place and takes the new value. Indexed, so a pickle of n keys
  // costs O(n), not O(n^2).
  void put(Obj* key, Obj* value);

 private:
  // str and bytes keys by their text, with no copy of it; other keys by python_identity. Made
  // on first use: a pickle may hold millions of empty dicts.
  struct TextKey {
    const Dict* d;
    Kind kind;
    std::string_view operator()(size_t i) const;
  };
  struct Index {
    ckpt::sdk::NameIndex str_keys, bytes_keys;
    std::unordered_map<std::string, size_t> other_keys;
  };
  static constexpr size_t kLinearKeys = 8;
  void index(size_t i);  // records entry i in index_
  std::unique_ptr<Index> index_;
};

// A text two objects share exactly when Python finds them equal as dict keys or set members:
// numbers by value (True == 1 == 1.0, 0.0 == -0.0), str apart from bytes, tuples element by
// element, classes by name, anything else (NaN, objects) by identity. Fails for what Python
// cannot hash (lists, dicts, arrays), and once `budget` elements are visited (a tuple built
// through the memo repeats its parts: 30 levels of (t, t) are a billion).
std::string python_identity(const Obj* o, uint64_t& budget, int depth = 0);
inline constexpr uint64_t kKeyBudget = 1 << 16;
inline constexpr int kMaxKeyDepth = 512;

struct Global final : Obj {
  Global(std::string m, std::string n) : Obj(Kind::global), module(std::move(m)), name(std::move(n)) {}
  std::string module, name;
  std::string full() const { return module + "." + name; }
};

struct Record final : Obj {
  explicit Record(std::string c) : Obj(Kind::record), cls(std::move(c)) {}
  std::string cls;  // "module.Name"
  // In the order first set; setting a name again replaces its value, as obj.__dict__ does.
  std::vector<std::pair<std::string, Obj*>> attributes;
  void set(std::string name, Obj* value);
  Obj* get(std::string_view name) const;
  Obj* args = nullptr;  // the tuple given to __new__ (or to the callable), when not empty
  // A call the pickle asked for and ckpt did not make (numpy's RandomState constructor, a
  // scikit-learn Tree): `cls` names the callable, `args` its arguments.
  bool called = false;
  Obj* state = nullptr;  // a BUILD state that is not a dict of attributes

 private:
  std::unordered_map<std::string, size_t> index_;
};

struct Storage final : Obj {
  Storage() : Obj(Kind::storage) {}
  uint32_t dtype = 0;  // ckpt_dtype
  std::string type_name;  // "torch.FloatStorage"
  std::string key;        // archive/<folder><key>
  std::string folder = "data/";  // "constants/" for a TorchScript archive's constants.pkl
  uint64_t numel = 0;
  std::string location;  // the device torch.save recorded: "cpu", "cuda:0", ...
};

// A tensor or an array: element (offset + sum(index[i] * strides[i])) of `base`, where base
// is a Storage (torch) or the bytes of a Text (NumPy). Strides count elements.
struct Array final : Obj {
  Array() : Obj(Kind::array) {}
  uint32_t dtype = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  int64_t offset = 0;
  Obj* base = nullptr;
  bool big_endian = false;  // NumPy '>' arrays
  bool parameter = false;   // torch.nn.Parameter
  bool requires_grad = false;
  bool numpy = false;
  bool scalar = false;      // a NumPy scalar (numpy.float64(0.5)), read as a number
  // A NumPy array of a dtype ckpt has no type for (uint32, complex, a structured record): its
  // bytes as they are, as a u8 tensor, with the dtype and shape it has in NumPy.
  std::string raw_spec;
  std::vector<int64_t> raw_shape;
  std::vector<std::string> raw_fields;  // a structured dtype's field names
  bool raw_fortran = false;
  // torch >= 2.0's _rebuild_tensor_v2 takes a 7th argument, the tensor's serialization
  // metadata ({'neg': True}, {'conj': True}): whether the pickle passed one, and, when it is
  // a dict that is not empty, that dict as Python prints it (torch sets these bits on load).
  bool torch_metadata_arg = false;
  std::string torch_metadata;
  bool torch_metadata_unknown_key = false;  // a key other than 'neg' and 'conj'
  std::string where;        // the pickle offset it was built at, for messages
};

struct DType final : Obj {
  DType() : Obj(Kind::dtype) {}
  std::string spec;  // "f4", "<i8", ...
  uint32_t dtype = 0;  // 0 when ckpt holds no such dtype
  uint64_t itemsize = 0;  // bytes per element, 0 when unknown (an object dtype)
  std::vector<std::string> fields;  // a structured dtype's fields: "name:<spec>@offset"
  char order = '=';    // '<', '>', '|', '='
  bool structured = false;
  // NumPy reads an array with its dtype's last state: a dtype BUILT twice, or BUILT after an
  // array used it, would be read one way here and another by NumPy.
  bool built = false;
  mutable bool used = false;
};

// Owns every object of one unpickling.
class Arena {
 public:
  template <class T, class... A>
  T* make(A&&... a) {
    auto p = std::make_unique<T>(std::forward<A>(a)...);
    T* raw = p.get();
    objects_.push_back(std::move(p));
    return raw;
  }
  // None, True and False are shared (never modified), as in Python.
  Obj* none();
  Obj* boolean(bool b);
  Obj* integer(int64_t i);
  Obj* floating(double f);
  size_t size() const { return objects_.size(); }

 private:
  std::vector<std::unique_ptr<Obj>> objects_;
  Obj* none_ = nullptr;
  Obj* bools_[2] = {nullptr, nullptr};
};

// "module.name" of a global as Python 3 would import it: os.system is pickled as
// posix.system, and protocol 2 pickles name Python 2's modules (subprocess.check_call is
// pickled as commands.check_call).
std::string display_name(std::string_view module, std::string_view name);

const char* kind_name(Kind k);
inline const Scalar* as_scalar(const Obj* o) {
  return o && (o->kind == Kind::none || o->kind == Kind::boolean || o->kind == Kind::integer ||
               o->kind == Kind::floating)
             ? static_cast<const Scalar*>(o)
             : nullptr;
}
inline const Text* as_text(const Obj* o) {
  return o && (o->kind == Kind::string || o->kind == Kind::bytes) ? static_cast<const Text*>(o) : nullptr;
}
inline const Seq* as_seq(const Obj* o) {
  return o && (o->kind == Kind::list || o->kind == Kind::tuple) ? static_cast<const Seq*>(o) : nullptr;
}
inline const Dict* as_dict(const Obj* o) { return o && o->kind == Kind::dict ? static_cast<const Dict*>(o) : nullptr; }
inline const Array* as_array(const Obj* o) { return o && o->kind == Kind::array ? static_cast<const Array*>(o) : nullptr; }
inline const Record* as_record(const Obj* o) { return o && o->kind == Kind::record ? static_cast<const Record*>(o) : nullptr; }
inline const Storage* as_storage(const Obj* o) { return o && o->kind == Kind::storage ? static_cast<const Storage*>(o) : nullptr; }
inline const Global* as_global(const Obj* o) { return o && o->kind == Kind::global ? static_cast<const Global*>(o) : nullptr; }
inline const DType* as_dtype(const Obj* o) { return o && o->kind == Kind::dtype ? static_cast<const DType*>(o) : nullptr; }

}  // namespace ckpt_pickle

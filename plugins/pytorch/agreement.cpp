#include "agreement.hpp"
#include "py_text.hpp"

#include <ckpt/sdk.hpp>

#include <bit>
#include <cstring>

namespace ckpt_pytorch {

using namespace ckpt_pickle;
using ckpt::sdk::fail;

namespace {

class Comparison {
 public:
  Comparison(const std::function<std::span<const std::byte>(const Array&)>& scalar_bytes, const std::string& source,
             bool own_file)
      : scalar_bytes_(scalar_bytes), source_(source), own_file_(own_file) {}

  void same(const Obj* a, const PyOut& e, const std::string& where, int depth) {
    if (depth > 4096) differ(where, "nested too deep to compare");
    using T = PyOut::T;
    switch (e.t) {
      case T::none: return expect(a && a->kind == Kind::none, where, "None");
      case T::boolean: {
        const Scalar* s = as_scalar(a);
        return expect(s && s->kind == Kind::boolean && s->b == e.b, where, e.b ? "True" : "False");
      }
      case T::integer: {
        const Scalar* s = as_scalar(a);
        return expect(s && s->kind == Kind::integer && s->i == e.i, where, "the integer " + std::to_string(e.i));
      }
      case T::floating: {
        // ckpt's writer stores a float as a Python float or, under floats=tensor, a 0-d f64.
        const Scalar* s = as_scalar(a);
        if (s && s->kind == Kind::floating) return expect(bits(s->f) == bits(e.f), where, "the float " + std::to_string(e.f));
        return scalar_tensor(a, CKPT_DTYPE_F64, e.f, where);
      }
      case T::string: {
        const Text* t = as_text(a);
        return expect(t && t->kind == Kind::string && t->str() == to_python_str(e.s), where, "the string '" + e.s + "'");
      }
      case T::tensor: return tensor(a, e, where);
      case T::list:
      case T::tuple: {
        const Seq* s = as_seq(a);
        const Kind k = e.t == T::list ? Kind::list : Kind::tuple;
        expect(s && s->kind == k && s->items.size() == e.items.size(), where,
               std::string(e.t == T::list ? "a list" : "a tuple") + " of " + std::to_string(e.items.size()) + " items");
        for (size_t i = 0; i < e.items.size(); ++i) same(s->items[i], e.items[i], where + "[" + std::to_string(i) + "]", depth + 1);
        return;
      }
      case T::dict:
      case T::odict: {
        const Dict* d = as_dict(a);
        expect(d && d->entries.size() == e.entries.size() && d->ordered == (e.t == T::odict) && !d->instance_state, where,
               std::string(e.t == T::odict ? "an OrderedDict" : "a dict") + " of " + std::to_string(e.entries.size()) +
                   " entries and no attributes");
        for (size_t i = 0; i < e.entries.size(); ++i) {
          const std::string key = e.entries[i].first.t == T::string ? e.entries[i].first.s : std::to_string(e.entries[i].first.i);
          same(d->entries[i].first, e.entries[i].first, where + " key " + std::to_string(i), depth + 1);
          same(d->entries[i].second, e.entries[i].second, where + "[" + key + "]", depth + 1);
        }
        return;
      }
      case T::bytes:
      case T::set:
      case T::counter:
      case T::record:
      case T::numpy_scalar:
      case T::numpy_array: break;  // only in a user's layout, which is checked another way
    }
    differ(where, "an object the writer never makes");
  }

 private:
  static uint64_t bits(double d) { return std::bit_cast<uint64_t>(d); }

  [[noreturn]] void differ(const std::string& where, const std::string& what) const {
    fail(CKPT_ERR_FORMAT, "'" + source_ + "': data.pkl and ckpt/document.json disagree at " + (where.empty() ? "the root" : where) +
                              ": " + what + " (torch.load would read something other than ckpt does; the file was changed "
                              "after ckpt wrote it)");
  }
  void expect(bool ok, const std::string& where, const std::string& what) const {
    if (!ok) differ(where, "expected " + what);
  }

  const Array& plain_tensor(const Obj* a, uint32_t dtype, const std::vector<int64_t>& shape, const std::string& where) {
    const Array* t = as_array(a);
    expect(t && !t->numpy && !t->parameter && !t->requires_grad && !t->big_endian && t->dtype == dtype && t->shape == shape && t->offset == 0, where,
           std::string("a ") + ckpt::sdk::dtype_name(dtype) + " tensor of " + std::to_string(shape.size()) + " dimensions at offset 0");
    int64_t step = 1;
    uint64_t numel = 1;
    for (size_t k = shape.size(); k-- > 0;) {
      expect(t->strides[k] == step, where, "a contiguous tensor");
      step *= std::max<int64_t>(shape[k], 1);
      numel *= static_cast<uint64_t>(shape[k]);
    }
    // ckpt's writer passes _rebuild_tensor_v2 six arguments: a 7th (torch >= 2.0's metadata,
    // {'neg': True} negates the values on load) is something the skeleton does not say.
    if (own_file_ && t->torch_metadata_arg)
      differ(where, "expected a tensor rebuilt from six arguments, found torch's metadata " +
                        (t->torch_metadata.empty() ? std::string("(None or {})") : t->torch_metadata) + " as a 7th");
    const Storage* s = as_storage(t->base);
    expect(s && s->dtype == dtype && s->numel == numel, where, "a storage of exactly the tensor's elements");
    // Its storages are on 'cpu': torch.load restores a storage on the device its location names.
    if (own_file_ && s->location != "cpu") differ(where, "expected a storage on 'cpu', found one on '" + s->location.substr(0, 64) + "'");
    return *t;
  }

  void tensor(const Obj* a, const PyOut& e, const std::string& where) {
    if (e.s.empty()) return scalar_tensor(a, e.dtype, e.f, where);
    const Array& t = plain_tensor(a, e.dtype, e.shape, where);
    expect(as_storage(t.base)->key == e.s, where, "the storage data/" + e.s);
  }

  void scalar_tensor(const Obj* a, uint32_t dtype, double value, const std::string& where) {
    const Array& t = plain_tensor(a, dtype, {}, where);
    const std::span<const std::byte> b = scalar_bytes_(t);
    bool equal = false;
    if (dtype == CKPT_DTYPE_F64 && b.size() == 8) {
      double d;
      std::memcpy(&d, b.data(), 8);
      equal = bits(d) == bits(value);
    } else if (dtype == CKPT_DTYPE_F32 && b.size() == 4) {
      float f;
      std::memcpy(&f, b.data(), 4);
      const float want = static_cast<float>(value);
      equal = std::bit_cast<uint32_t>(f) == std::bit_cast<uint32_t>(want);
    }
    expect(equal, where, "a 0-d tensor holding " + std::to_string(value));
  }

  const std::function<std::span<const std::byte>(const Array&)>& scalar_bytes_;
  const std::string& source_;
  const bool own_file_;
};

}  // namespace

void check_agreement(const Obj* actual, const PyOut& expected,
                     const std::function<std::span<const std::byte>(const Array&)>& scalar_bytes, const std::string& source,
                     bool own_file) {
  Comparison(scalar_bytes, source, own_file).same(actual, expected, "", 0);
}

}  // namespace ckpt_pytorch

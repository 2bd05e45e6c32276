#include "pickle_writer.hpp"

#include "py_text.hpp"

#include "policies.hpp"

#include <ckpt/sdk.hpp>

#include <bit>

namespace ckpt_pytorch {

namespace {

class Pickler {
 public:
  std::string out;

  void value(const PyOut& v) {
    using T = PyOut::T;
    switch (v.t) {
      case T::none: out += 'N'; return;
      case T::boolean: out += v.b ? '\x88' : '\x89'; return;
      case T::integer: integer(v.i); return;
      case T::floating: {
        out += 'G';
        const auto u = std::bit_cast<uint64_t>(v.f);
        for (int k = 7; k >= 0; --k) out += static_cast<char>((u >> (8 * k)) & 0xff);
        return;
      }
      case T::string: str(v.s); return;
      case T::tensor: tensor(v); return;
      case T::list:
        out += ']';
        if (!v.items.empty()) {
          out += '(';
          for (const auto& x : v.items) value(x);
          out += 'e';
        }
        return;
      case T::tuple:
        if (v.items.empty()) {
          out += ')';
          return;
        }
        out += '(';
        for (const auto& x : v.items) value(x);
        out += 't';
        return;
      case T::dict:
      case T::odict:
        if (v.t == T::odict) out += "ccollections\nOrderedDict\n)R";
        else out += '}';
        if (!v.entries.empty()) {
          out += '(';
          for (const auto& [k, x] : v.entries) {
            value(k);
            value(x);
          }
          out += 'u';
        }
        return;
    }
  }

 private:
  void le(uint64_t v, int n) {
    for (int k = 0; k < n; ++k) out += static_cast<char>((v >> (8 * k)) & 0xff);
  }

  void integer(int64_t i) {
    if (i >= 0 && i < 256) {
      out += 'K';
      le(static_cast<uint64_t>(i), 1);
    } else if (i >= 0 && i < 65536) {
      out += 'M';
      le(static_cast<uint64_t>(i), 2);
    } else if (i >= INT32_MIN && i <= INT32_MAX) {
      out += 'J';
      le(static_cast<uint32_t>(static_cast<int32_t>(i)), 4);
    } else {
      out += '\x8a';
      out += '\x08';
      le(static_cast<uint64_t>(i), 8);
    }
  }

  void str(const std::string& bytes) {
    const std::string s = ckpt_pickle::to_python_str(bytes);
    out += 'X';
    le(s.size(), 4);
    out += s;
  }

  void ints(const std::vector<int64_t>& v) {
    if (v.empty()) {
      out += ')';
      return;
    }
    out += '(';
    for (int64_t x : v) integer(x);
    out += 't';
  }

  // torch._utils._rebuild_tensor_v2(storage, 0, size, stride, False, OrderedDict())
  void tensor(const PyOut& v) {
    std::vector<int64_t> stride(v.shape.size());
    int64_t step = 1;
    uint64_t numel = 1;
    for (size_t k = v.shape.size(); k-- > 0;) {
      stride[k] = step;
      step *= std::max<int64_t>(v.shape[k], 1);
      numel *= static_cast<uint64_t>(v.shape[k]);
    }
    out += "ctorch._utils\n_rebuild_tensor_v2\n(";
    out += "(";
    str("storage");
    out += "ctorch\n" + std::string(ckpt_pickle::torch_storage_name(v.dtype)) + "\n";
    str(v.s);
    str("cpu");
    integer(static_cast<int64_t>(numel));
    out += "tQ";
    integer(0);
    ints(v.shape);
    ints(stride);
    out += '\x89';
    out += "ccollections\nOrderedDict\n)R";
    out += "tR";
  }
};

}  // namespace

std::string pickle(const PyOut& root) {
  Pickler p;
  p.out = "\x80\x02";
  p.value(root);
  p.out += '.';
  return p.out;
}

}  // namespace ckpt_pytorch

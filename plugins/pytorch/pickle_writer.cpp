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
      case T::string:
        if (v.raw) raw_str(v.s);
        else str(v.s);
        return;
      case T::bytes: bytes(v.s); return;
      case T::tensor:
        if (!v.parameter) return tensor(v);
        // torch._utils._rebuild_parameter(tensor, requires_grad, OrderedDict())
        out += "ctorch._utils\n_rebuild_parameter\n(";
        tensor(v);
        out += v.requires_grad ? '\x88' : '\x89';
        out += "ccollections\nOrderedDict\n)R";
        out += "tR";
        return;
      case T::set:
      case T::counter: {
        // set(list) and Counter(dict), as their __reduce__ gives them
        out += v.t == T::set ? "c__builtin__\nset\n(" : "ccollections\nCounter\n(";
        PyOut inner = v;
        inner.t = v.t == T::set ? T::list : T::dict;
        value(inner);
        out += "tR";
        return;
      }
      case T::record: {
        // copyreg.__newobj__(cls) and BUILD with its __dict__: what pickle makes of a plain object
        const size_t dot = v.s.rfind('.');
        out += "c" + v.s.substr(0, dot) + "\n" + v.s.substr(dot + 1) + "\n)\x81";
        PyOut attrs = PyOut::container(T::dict);
        attrs.entries = v.entries;
        value(attrs);
        out += 'b';
        return;
      }
      case T::numpy_scalar:
        // numpy.core.multiarray.scalar(dtype, bytes)
        out += "cnumpy.core.multiarray\nscalar\n(";
        dtype(v.spec, v.s.size() > 1);
        bytes(v.s);
        out += "tR";
        return;
      case T::numpy_array:
        // What ndarray.__reduce__ gives: _reconstruct(ndarray, (0,), b'b'), then BUILD with
        // (1, shape, dtype, is_fortran, data).
        out += "cnumpy.core.multiarray\n_reconstruct\n(cnumpy\nndarray\n(";
        integer(0);
        out += 't';
        bytes("b");
        out += "tR(K\x01";
        ints(v.shape);
        dtype(v.spec, ckpt::sdk::dtype_size(v.dtype) > 1);
        out += '\x89';
        bytes(v.s);
        out += "tb";
        return;
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
        if (!v.items.empty()) {
          value(v.items[0]);
          out += 'b';
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

  // numpy.dtype(spec, False, True) with its state: what a NumPy dtype pickles as.
  void dtype(const std::string& spec, bool multibyte) {
    out += "cnumpy\ndtype\n(";
    str(spec);
    out += "\x89\x88tR(K\x03";
    str(multibyte ? "<" : "|");
    out += "NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK";
    out += '\0';
    out += "tb";
  }

  void str(const std::string& bytes) { raw_str(ckpt_pickle::to_python_str(bytes)); }

  void raw_str(const std::string& s) {
    // Protocol 2's one str opcode has a 4-byte length (a NumPy array's bytes travel as one).
    if (s.size() > UINT32_MAX)
      ckpt::sdk::fail(CKPT_ERR_UNSUPPORTED, "a str or bytes of " + std::to_string(s.size()) +
                                                " bytes in data.pkl, beyond the 4 GiB a protocol 2 pickle holds");
    out += 'X';
    le(s.size(), 4);
    out += s;
  }

  // Protocol 2 has no bytes: Python 3 writes _codecs.encode(<the bytes as latin-1 text>, 'latin1').
  void bytes(const std::string& b) {
    std::string text;
    for (unsigned char c : b) {
      if (c < 0x80) {
        text += static_cast<char>(c);
      } else {
        text += static_cast<char>(0xc0 | (c >> 6));
        text += static_cast<char>(0x80 | (c & 0x3f));
      }
    }
    out += "c_codecs\nencode\n(";
    raw_str(text);
    raw_str("latin1");
    out += "tR";
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
    out += v.requires_grad && !v.parameter ? '\x88' : '\x89';
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

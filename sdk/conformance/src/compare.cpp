#include "compare.hpp"

#include <bit>
#include <cstdio>
#include <map>

namespace ckpt::conformance {

namespace {

std::string hex(std::span<const std::byte> b) {
  std::string s = "0x";
  char buf[3];
  // Little-endian on disk and in memory: print the most significant byte first.
  for (size_t i = b.size(); i-- > 0;) {
    std::snprintf(buf, sizeof buf, "%02x", static_cast<unsigned>(b[i]));
    s += buf;
  }
  return s;
}

std::string bits(double d) {
  uint64_t u = std::bit_cast<uint64_t>(d);
  return hex(std::as_bytes(std::span<const uint64_t>(&u, 1)));
}

// A value as text, with doubles' bits so that NaN payloads and -0.0 show.
std::string describe(const Value& v) {
  std::string s = std::string(value_type_name(value_type(v))) + " " + value_to_string(v, 6);
  if (auto* d = std::get_if<double>(&v)) s += " (bits " + bits(*d) + ")";
  if (auto* str = std::get_if<std::string>(&v)) s += " (" + std::to_string(str->size()) + " bytes)";
  return s;
}

// Where two values of the same array type first differ.
std::string first_array_difference(const Value& a, const Value& b) {
  return std::visit(
      [&](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, std::vector<bool>> || std::is_same_v<T, std::vector<int64_t>> ||
                      std::is_same_v<T, std::vector<double>> || std::is_same_v<T, std::vector<std::string>>) {
          const auto& y = std::get<T>(b);
          if (x.size() != y.size())
            return "; " + std::to_string(x.size()) + " elements expected, " + std::to_string(y.size()) + " read";
          for (size_t i = 0; i < x.size(); ++i) {
            if (!value_equal(Value(typename T::value_type(x[i])), Value(typename T::value_type(y[i]))))
              return "; first difference at [" + std::to_string(i) + "]: expected " +
                     describe(Value(typename T::value_type(x[i]))) + ", read " +
                     describe(Value(typename T::value_type(y[i])));
          }
          return {};
        } else {
          return {};
        }
      },
      a);
}

class Comparer {
 public:
  explicit Comparer(Comparison& out, size_t limit) : out_(out), limit_(limit) {}

  void group(const Group& want, const Group& got, const std::string& path) {
    attributes(want, got, path);
    children(want, got, path);
  }

 private:
  void add(const std::string& path, const std::string& what) {
    if (out_.differences.size() < limit_)
      out_.differences.push_back((path.empty() ? "/" : path) + ": " + what);
    else
      ++out_.more;
  }

  void attributes(const Group& want, const Group& got, const std::string& path) {
    const auto& a = want.attributes();
    const auto& b = got.attributes();
    std::map<std::string_view, const Value*> by_name;
    for (const auto& x : b) {
      if (!by_name.emplace(x.name, &x.value).second) add(path, "attribute '" + x.name + "' read twice");
    }
    bool same_order = a.size() == b.size();
    for (size_t i = 0; same_order && i < a.size(); ++i) same_order = a[i].name == b[i].name;
    if (!same_order) out_.reordered = true;
    for (const auto& x : a) {
      auto it = by_name.find(x.name);
      if (it == by_name.end()) {
        add(path, "attribute '" + x.name + "' is missing");
        continue;
      }
      const Value& v = *it->second;
      by_name.erase(it);
      if (value_type(x.value) != value_type(v)) {
        add(join_path(path, x.name), "attribute of type " + std::string(value_type_name(value_type(x.value))) +
                                         " read back as " + describe(v));
      } else if (!value_equal(x.value, v)) {
        add(join_path(path, x.name),
            "attribute expected " + describe(x.value) + ", read " + describe(v) + first_array_difference(x.value, v));
      }
    }
    for (const auto& [n, v] : by_name) add(path, "unexpected attribute '" + std::string(n) + "' = " + describe(*v));
  }

  void children(const Group& want, const Group& got, const std::string& path) {
    const auto& a = want.children();
    const auto& b = got.children();
    std::map<std::string_view, const Node*> by_name;
    for (const auto& x : b) {
      if (!by_name.emplace(x.name, &x).second) add(path, "member '" + x.name + "' read twice");
    }
    bool same_order = a.size() == b.size();
    for (size_t i = 0; same_order && i < a.size(); ++i) same_order = a[i].name == b[i].name;
    if (!same_order) out_.reordered = true;
    for (const auto& x : a) {
      std::string p = join_path(path, x.name);
      auto it = by_name.find(x.name);
      if (it == by_name.end()) {
        add(p, std::string(x.is_tensor() ? "tensor" : "group") + " is missing");
        continue;
      }
      const Node& y = *it->second;
      by_name.erase(it);
      if (x.is_tensor() != y.is_tensor()) {
        add(p, std::string("expected a ") + (x.is_tensor() ? "tensor" : "group") + ", read a " +
                   (y.is_tensor() ? "tensor" : "group"));
      } else if (x.is_tensor()) {
        tensor(x.tensor(), y.tensor(), p);
      } else {
        group(x.group(), y.group(), p);
      }
    }
    for (const auto& [n, node] : by_name)
      add(path, std::string("unexpected ") + (node->is_tensor() ? "tensor" : "group") + " '" + std::string(n) + "'");
  }

  void tensor(const Tensor& want, const Tensor& got, const std::string& path) {
    if (want.dtype() != got.dtype()) {
      add(path, "dtype " + std::string(name(want.dtype())) + " read back as " + std::string(name(got.dtype())));
      return;
    }
    if (want.shape() != got.shape()) {
      add(path, "shape " + shape_string(want.shape()) + " read back as " + shape_string(got.shape()));
      return;
    }
    if (!got.defined()) {
      add(path, "read back without data");
      return;
    }
    auto a = want.bytes();
    auto b = got.bytes();
    if (a.size() != b.size()) {
      add(path, std::to_string(a.size()) + " bytes expected, " + std::to_string(b.size()) + " read");
      return;
    }
    size_t first = a.size(), count = 0;
    for (size_t i = 0; i < a.size(); ++i)
      if (a[i] != b[i]) {
        if (first == a.size()) first = i;
        ++count;
      }
    if (count == 0) return;
    size_t item = block_bytes(want.dtype());  // an element, or a block of a block dtype
    size_t at = first / item * item;
    add(path, std::to_string(count) + " of " + std::to_string(a.size()) + " bytes differ; first at element " +
                  std::to_string(first / item) + (is_block(want.dtype()) ? " (a block)" : "") + ": expected " + hex(a.subspan(at, item)) + ", read " +
                  hex(b.subspan(at, item)));
  }

  Comparison& out_;
  size_t limit_;
};

}  // namespace

std::string Comparison::report() const {
  std::string s;
  for (const auto& d : differences) s += "\n  " + d;
  if (more) s += "\n  ... and " + std::to_string(more) + " more";
  return s;
}

Comparison compare(const Group& expected, const Group& actual, size_t limit) {
  Comparison out;
  Comparer(out, limit).group(expected, actual, "");
  return out;
}

}  // namespace ckpt::conformance

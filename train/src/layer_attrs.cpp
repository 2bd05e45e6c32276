#include "layer_attrs.hpp"

#include <ckpt/errors.hpp>

#include <vector>

namespace ckpt::train::detail {

void LayerAttrs::fail(const std::string& what) const { throw UsageError(path_ + ": " + what); }

std::string LayerAttrs::found(std::string_view name) const {
  const Value* v = spec_.attribute(name);
  if (!v) return "it is missing";
  return "got " + std::string(value_type_name(value_type(*v))) + " " + value_to_string(*v);
}

int64_t LayerAttrs::positive(std::string_view name) const {
  const Value* v = spec_.attribute(name);
  const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr;
  if (!i || *i <= 0) fail(std::string(name) + " must be a positive integer; " + found(name));
  return *i;
}

Pair LayerAttrs::pair(std::string_view name, std::optional<Pair> fallback, int64_t min) const {
  const Value* v = spec_.attribute(name);
  if (!v && fallback) return *fallback;
  auto bad = [&]() {
    fail(std::string(name) + " must be " + (min > 0 ? "a positive" : "a non-negative") +
         " integer or a pair [h, w] of them; " + found(name));
  };
  Pair p;
  if (const int64_t* i = v ? std::get_if<int64_t>(v) : nullptr) {
    p = {*i, *i};
  } else if (const auto* a = v ? std::get_if<std::vector<int64_t>>(v) : nullptr) {
    if (a->size() != 2) bad();
    p = {(*a)[0], (*a)[1]};
  } else {
    bad();
  }
  if (p.h < min || p.w < min) bad();
  return p;
}

bool LayerAttrs::flag(std::string_view name, bool fallback) const {
  const Value* v = spec_.attribute(name);
  if (!v) return fallback;
  const bool* b = std::get_if<bool>(v);
  if (!b) fail(std::string(name) + " must be a bool; " + found(name));
  return *b;
}

int64_t LayerAttrs::integer(std::string_view name, int64_t fallback) const {
  const Value* v = spec_.attribute(name);
  if (!v) return fallback;
  const int64_t* i = std::get_if<int64_t>(v);
  if (!i) fail(std::string(name) + " must be an integer; " + found(name));
  return *i;
}

void write_pair(Group& spec, std::string_view name, Pair p) {
  if (p.h == p.w)
    spec.set(name, p.h);
  else
    spec.set(name, std::vector<int64_t>{p.h, p.w});
}

}  // namespace ckpt::train::detail

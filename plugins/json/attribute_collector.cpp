#include "attribute_collector.hpp"

#include "json_numbers.hpp"
#include "json_strings.hpp"

#include <bit>

namespace ckpt::jsonfmt {

void AttributeCollector::reset(std::string name, size_t group) {
  *this = AttributeCollector{};
  name_ = std::move(name);
  group_ = group;
}

const char* AttributeCollector::label(Elem e) {
  switch (e) {
    case Elem::boolean: return "a boolean";
    case Elem::int64: return "an integer";
    case Elem::float64: return "a number";
    case Elem::string: return "a string";
    case Elem::none: break;
  }
  return "nothing";
}

void AttributeCollector::fail(const std::string& what) const {
  throw AttributeError("attribute " + shown(name_) + ": " + what);
}

void AttributeCollector::mismatch(const char* found) const {
  if (declared_ != Elem::none)
    fail("$type " + shown(type_text_) + " expects " + label(declared_) + ", found " + found);
  fail("array mixes booleans, numbers and strings; an attribute array holds one type");
}

void AttributeCollector::set_type(std::string_view t) {
  bool array = t.size() > 2 && t.substr(t.size() - 2) == "[]";
  std::string_view base = array ? t.substr(0, t.size() - 2) : t;
  Elem e = base == "bool"      ? Elem::boolean
           : base == "int64"   ? Elem::int64
           : base == "float64" ? Elem::float64
           : base == "string"  ? Elem::string
                               : Elem::none;
  if (e == Elem::none)
    fail("unknown $type " + shown(t) + " (expected bool, int64, float64, string, bool[], int64[], float64[] or string[])");
  type_text_ = t;
  declared_ = e;
  declared_array_ = array;
}

void AttributeCollector::start_value(bool array) {
  if (declared_ == Elem::none)
    fail("$type must come before $value");  // it decides whether "NaN" is a string or a float64
  has_value_ = true;
  is_array_ = array;
}

// A number joins float64 elements when declared so, or in a plain array that already has one.
bool AttributeCollector::into_floats() const {
  return declared_ == Elem::float64 || (declared_ == Elem::none && elem_ == Elem::float64);
}

void AttributeCollector::expect(Elem e, const char* found) {
  if ((declared_ != Elem::none && declared_ != e) || (elem_ != Elem::none && elem_ != e)) mismatch(found);
  elem_ = e;
}

void AttributeCollector::add_bool(bool b) {
  expect(Elem::boolean, "a boolean");
  bools_.push_back(b ? 1 : 0);
}

namespace {
// An integer that joins a float64 array must be one exactly: Python reads the literal as an
// exact int, and a rounded float64 would be another value.
bool exact_as_double(int64_t i) {
  const double d = static_cast<double>(i);
  return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && static_cast<int64_t>(d) == i;
}
}  // namespace

void AttributeCollector::add_int(int64_t i) {
  if (into_floats()) {
    if (!exact_as_double(i)) fail(std::to_string(i) + " in a float64 array is not exactly a float64 (Python reads the exact integer)");
    elem_ = Elem::float64;
    floats_.push_back(static_cast<double>(i));
    return;
  }
  expect(Elem::int64, "an integer");
  ints_.push_back(i);
}

void AttributeCollector::add_unsigned(uint64_t u) {
  if (into_floats()) {
    const double d = static_cast<double>(u);
    if (d >= 18446744073709551616.0 || static_cast<uint64_t>(d) != u)
      fail(std::to_string(u) + " in a float64 array is not exactly a float64 (Python reads the exact integer)");
    elem_ = Elem::float64;
    floats_.push_back(d);
    return;
  }
  expect(Elem::int64, "an integer");
  fail(std::to_string(u) + " is outside the int64 range");
}

void AttributeCollector::add_float(double d) {
  if (declared_ == Elem::none && elem_ == Elem::int64) {
    // A plain array mixing integers and fractions is a float64 array.
    for (int64_t i : ints_) {
      if (!exact_as_double(i)) fail(std::to_string(i) + " in a float64 array is not exactly a float64 (Python reads the exact integer)");
      floats_.push_back(static_cast<double>(i));
    }
    ints_ = {};
    elem_ = Elem::float64;
  }
  expect(Elem::float64, "a number");
  floats_.push_back(d);
}

void AttributeCollector::add_string(std::string_view s) {
  if (declared_ == Elem::float64) {
    uint64_t bits = 0;
    if (!parse_nonfinite(s, FloatKind::f64, bits))
      fail(shown(s) + " is not a float64 (expected a number, \"NaN\", \"Infinity\", \"-Infinity\" or \"NaN:0x<bits>\")");
    elem_ = Elem::float64;
    floats_.push_back(std::bit_cast<double>(bits));
    return;
  }
  expect(Elem::string, "a string");
  strings_.emplace_back(s);
}

AttrValue AttributeCollector::collected(bool array) {
  switch (elem_ != Elem::none ? elem_ : declared_) {
    case Elem::boolean:
      if (!array) return AttrValue{bools_.at(0) != 0};
      return std::move(bools_);
    case Elem::int64:
      if (!array) return AttrValue{ints_.at(0)};
      return std::move(ints_);
    case Elem::float64:
      if (!array) return AttrValue{floats_.at(0)};
      return std::move(floats_);
    case Elem::string:
      if (!array) return AttrValue{std::move(strings_.at(0))};
      return std::move(strings_);
    case Elem::none:
      break;
  }
  fail("no element type");  // unreachable: callers check first
}

AttrValue AttributeCollector::finish_array() {
  if (elem_ == Elem::none)
    fail("an empty array has no element type; write {\"$type\": \"int64[]\", \"$value\": []}");
  return collected(true);
}

AttrValue AttributeCollector::finish_typed() {
  if (declared_ == Elem::none) fail("a typed value needs $type");
  if (!has_value_) fail("a typed value needs $value");
  if (declared_array_ != is_array_)
    fail("$type " + shown(type_text_) + (declared_array_ ? " needs an array $value" : " needs a single $value"));
  return collected(is_array_);
}

}  // namespace ckpt::jsonfmt

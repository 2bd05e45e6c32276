// Attribute values: a scalar, an array of one element type, or the typed form
// {"$type": ..., "$value": ...}. Elements go straight into the vector of their type as the
// tokens come, so memory stays proportional to the file.
#include "doc_parser.hpp"

#include <ckpt/sdk.hpp>

namespace ckpt_doc {
namespace {

// An integer that joins a float64 array must be one exactly: Python reads the literal as an
// exact int, and a rounded float64 would be another value.
bool exact_as_double(int64_t i) {
  const double d = static_cast<double>(i);
  return d >= -9223372036854775808.0 && d < 9223372036854775808.0 && static_cast<int64_t>(d) == i;
}

bool exact_as_double(uint64_t u) {
  const double d = static_cast<double>(u);
  return d < 18446744073709551616.0 && static_cast<uint64_t>(d) == u;
}

}  // namespace

void LayoutParser::attr_fail(size_t at, Problem p, Detail d) const {
  d.attribute = attr_.name;
  d.type_text = attr_.type_text;
  d.declared = attr_.declared;
  fail(at, p, d);
}

void LayoutParser::attr_start(size_t group, std::string_view name) {
  attr_ = AttrWork{};
  attr_.name = name;
  attr_.group = group;
}

void LayoutParser::attr_scalar(const Token& t) {
  ckpt::sdk::ValueView a;
  switch (t.kind) {
    case TokenKind::boolean:
      a.type = CKPT_VALUE_BOOL;
      a.b = t.b;
      break;
    case TokenKind::integer:
      a.type = CKPT_VALUE_INT64;
      a.i = t.i;
      break;
    case TokenKind::big_integer: {
      Detail d = detail(Slot::attr);
      d.u = t.u;
      fail(t.at, Problem::int_too_large, d);
    }
    case TokenKind::number:
      a.type = CKPT_VALUE_FLOAT64;
      a.f = d_.number(*this, t);
      break;
    case TokenKind::string:
      a.type = CKPT_VALUE_STRING;
      a.s = keep(t);
      break;
    default:
      mismatch(t);
  }
  tree_.add_attribute(attr_.group, attr_.name, std::move(a));
}

void LayoutParser::attr_set_type(const Token& t) {
  const std::string_view s = t.text;
  const bool array = s.size() > 2 && s.substr(s.size() - 2) == "[]";
  const std::string_view base = array ? s.substr(0, s.size() - 2) : s;
  const Elem e = base == "bool"      ? Elem::boolean
                 : base == "int64"   ? Elem::int64
                 : base == "float64" ? Elem::float64
                 : base == "string"  ? Elem::string
                                     : Elem::none;
  if (e == Elem::none || (!array && !d_.typed_scalars)) {
    Detail d = detail(Slot::type);
    d.text = s;
    attr_fail(t.at, Problem::attr_unknown_type, d);
  }
  attr_.type_text = s;
  attr_.declared = e;
  attr_.declared_array = array;
}

void LayoutParser::attr_start_value(const Token& t, bool array) {
  // $type decides whether "NaN" is a string or a float64.
  if (attr_.declared == Elem::none && d_.type_first) attr_fail(t.at, Problem::attr_type_after_value, detail(Slot::value));
  attr_.has_value = true;
  attr_.is_array = array;
}

// A number joins float64 elements when declared so, or in a plain array that already has one.
bool LayoutParser::into_floats() const {
  return d_.widen_numbers &&
         (attr_.declared == Elem::float64 || (attr_.declared == Elem::none && attr_.elem == Elem::float64));
}

void LayoutParser::attr_expect(const Token& t, Elem e) {
  if ((attr_.declared != Elem::none && attr_.declared != e) || (attr_.elem != Elem::none && attr_.elem != e)) {
    Detail d = detail(top().slot);
    d.found = e;
    d.holds = attr_.declared != Elem::none ? attr_.declared : attr_.elem;
    attr_fail(t.at, Problem::attr_mixed, d);
  }
  attr_.elem = e;
}

void LayoutParser::attr_element(const Token& t) {
  switch (t.kind) {
    case TokenKind::boolean:
      attr_expect(t, Elem::boolean);
      attr_.bools.push_back(t.b ? 1 : 0);
      return;
    case TokenKind::integer:
      if (into_floats()) {
        if (!exact_as_double(t.i)) {
          Detail d = detail(top().slot);
          const std::string text = std::to_string(t.i);
          d.text = text;
          attr_fail(t.at, Problem::attr_inexact, d);
        }
        attr_.elem = Elem::float64;
        attr_.floats.push_back(static_cast<double>(t.i));
        return;
      }
      attr_expect(t, Elem::int64);
      attr_.ints.push_back(t.i);
      return;
    case TokenKind::big_integer: {
      if (into_floats()) {
        if (!exact_as_double(t.u)) {
          Detail d = detail(top().slot);
          const std::string text = std::to_string(t.u);
          d.text = text;
          attr_fail(t.at, Problem::attr_inexact, d);
        }
        attr_.elem = Elem::float64;
        attr_.floats.push_back(static_cast<double>(t.u));
        return;
      }
      if (d_.widen_numbers) attr_expect(t, Elem::int64);
      Detail d = detail(top().slot);
      d.u = t.u;
      attr_fail(t.at, Problem::int_too_large, d);
    }
    case TokenKind::number: {
      const double v = d_.number(*this, t);
      if (d_.widen_numbers && attr_.declared == Elem::none && attr_.elem == Elem::int64) {
        // A plain array mixing integers and fractions is a float64 array.
        for (int64_t i : attr_.ints) {
          if (!exact_as_double(i)) {
            Detail d = detail(top().slot);
            const std::string text = std::to_string(i);
            d.text = text;
            attr_fail(t.at, Problem::attr_inexact, d);
          }
          attr_.floats.push_back(static_cast<double>(i));
        }
        attr_.ints = {};
        attr_.elem = Elem::float64;
      }
      attr_expect(t, Elem::float64);
      attr_.floats.push_back(v);
      return;
    }
    case TokenKind::string:
      if (d_.float_strings && attr_.declared == Elem::float64) {
        double v = 0;
        if (!d_.float_from_string(t.text, v)) {
          Detail d = detail(top().slot);
          d.text = t.text;
          attr_fail(t.at, Problem::attr_not_float, d);
        }
        attr_.elem = Elem::float64;
        attr_.floats.push_back(v);
        return;
      }
      attr_expect(t, Elem::string);
      {
        const std::string_view s = keep(t);
        attr_.strings.push_back({s.data(), s.size()});
      }
      return;
    default:
      mismatch(t);
  }
}

void LayoutParser::attr_finish_array(size_t at) {
  if (attr_.elem == Elem::none) attr_fail(at, Problem::attr_empty_array, detail(Slot::attr));
  attr_collected(true);
}

void LayoutParser::attr_finish_typed(const Frame& f, const Token& t) {
  const size_t at = blame(f, t);
  if (attr_.declared == Elem::none) attr_fail(at, Problem::attr_no_type, detail(Slot::key));
  if (!attr_.has_value) attr_fail(at, Problem::attr_no_value, detail(Slot::key));
  if (attr_.declared_array != attr_.is_array) {
    Detail d = detail(Slot::key);
    d.declared_array = attr_.declared_array;
    attr_fail(at, Problem::attr_type_shape, d);
  }
  // Only where $value may come first: its elements were typed by themselves.
  if (attr_.elem != Elem::none && attr_.elem != attr_.declared) {
    Detail d = detail(Slot::key);
    d.found = attr_.elem;
    d.holds = attr_.declared;
    attr_fail(at, Problem::attr_mixed, d);
  }
  attr_collected(attr_.is_array);
}

void LayoutParser::attr_collected(bool array) {
  ckpt::sdk::ValueView a;
  switch (attr_.elem != Elem::none ? attr_.elem : attr_.declared) {
    case Elem::boolean:
      a.type = array ? CKPT_VALUE_BOOL_ARRAY : CKPT_VALUE_BOOL;
      if (array) a.bools = std::move(attr_.bools);
      else a.b = attr_.bools.at(0) != 0;
      break;
    case Elem::int64:
      a.type = array ? CKPT_VALUE_INT64_ARRAY : CKPT_VALUE_INT64;
      if (array) a.ints = std::move(attr_.ints);
      else a.i = attr_.ints.at(0);
      break;
    case Elem::float64:
      a.type = array ? CKPT_VALUE_FLOAT64_ARRAY : CKPT_VALUE_FLOAT64;
      if (array) a.floats = std::move(attr_.floats);
      else a.f = attr_.floats.at(0);
      break;
    case Elem::string:
      a.type = array ? CKPT_VALUE_STRING_ARRAY : CKPT_VALUE_STRING;
      if (array) a.strings = std::move(attr_.strings);
      else a.s = {attr_.strings.at(0).data, attr_.strings.at(0).size};
      break;
    case Elem::none:
      fail(0, "internal: an attribute with no element type", CKPT_ERR_INTERNAL);
  }
  tree_.add_attribute(attr_.group, attr_.name, std::move(a));
}

}  // namespace ckpt_doc

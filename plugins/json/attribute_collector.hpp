// Collects an attribute value that is a JSON array or a typed {"$type", "$value"} form, one
// element at a time as the SAX parser reports them. Elements go straight into the vector of
// their type, so memory stays proportional to the text.
#pragma once

#include "json_tree.hpp"

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ckpt::jsonfmt {

// What is wrong with the value; the parser adds where it is.
class AttributeError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class AttributeCollector {
 public:
  void reset(std::string name, size_t group);
  const std::string& name() const { return name_; }
  size_t group() const { return group_; }

  // The typed form's "$type"; it must come before "$value".
  void set_type(std::string_view type);
  // The typed form's "$value" begins: an array or one element.
  void start_value(bool array);

  void add_bool(bool b);
  void add_int(int64_t i);
  void add_unsigned(uint64_t u);  // above INT64_MAX
  void add_float(double d);
  void add_string(std::string_view s);

  AttrValue finish_array();  // a plain JSON array
  AttrValue finish_typed();  // the typed form, at its closing brace

 private:
  enum class Elem : uint8_t { none, boolean, int64, float64, string };
  static const char* label(Elem e);
  [[noreturn]] void fail(const std::string& what) const;
  [[noreturn]] void mismatch(const char* found) const;
  bool into_floats() const;
  void expect(Elem e, const char* found);
  AttrValue collected(bool array);

  std::string name_;
  size_t group_ = 0;
  std::string type_text_;        // "$type" as written
  Elem declared_ = Elem::none;   // from "$type"; none for a plain array
  bool declared_array_ = false;
  bool is_array_ = false;
  bool has_value_ = false;
  Elem elem_ = Elem::none;  // the type of the elements so far
  std::vector<uint8_t> bools_;
  std::vector<int64_t> ints_;
  std::vector<double> floats_;
  std::vector<std::string> strings_;
};

}  // namespace ckpt::jsonfmt

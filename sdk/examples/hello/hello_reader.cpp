#include "hello_reader.hpp"

#include "hello_text.hpp"

namespace hello {

using ckpt::sdk::fail;

Reader::Reader(const std::string& path) : file_(path) { parse(); }

void Reader::parse() {
  Cursor in(file_.bytes(), file_.path());
  if (in.left() < kMagic.size() || in.take(kMagic.size(), "the header") != kMagic) in.bad("not a hello file");
  if (auto version = in.word("version"); version != "1")
    fail(CKPT_ERR_UNSUPPORTED, "'" + file_.path() + "' is hello version " + std::string(version) + "; this plugin reads version 1");
  in.expect('\n', "after the header");
  // Exactly one root group, closed at the very end: a file cut short anywhere is an error.
  size_t depth = 0;
  do {
    Record r;
    r.kind = in.next("a record");
    if (r.kind != 'E') {
      in.expect(' ', "after the record type");
      r.name = in.netstring("a name");
    }
    if (records_.empty() && r.kind != 'G') in.bad("the first record must be the root group");
    switch (r.kind) {
      case 'G': ++depth; break;
      case 'E': --depth; break;
      case 'A':
        r.index = attributes_.size();
        attributes_.push_back(parse_attribute(in));
        break;
      case 'T':
        r.index = tensors_.size();
        tensors_.push_back(parse_tensor(in, r.name));
        break;
      default: in.bad("unknown record type '" + std::string(1, r.kind) + "'");
    }
    in.expect('\n', "at the end of the record");
    records_.push_back(std::move(r));
  } while (depth > 0);
  if (!in.at_end()) in.bad("data after the root group's end");
}

Reader::Attribute Reader::parse_attribute(Cursor& in) {
  Attribute a;
  in.expect(' ', "before the attribute type");
  a.type = in.next("the attribute type");
  in.expect(' ', "after the attribute type");
  bool array = a.type >= 'A' && a.type <= 'Z';
  uint64_t count = 1;
  if (array) {
    count = in.number<uint64_t>("element count");
    // Every element takes at least two bytes (" 0"); bounds the allocation below by the file.
    if (count > in.left() / 2) fail(CKPT_ERR_LIMIT, "an attribute claims " + std::to_string(count) + " elements, more than the file holds");
  }
  for (uint64_t i = 0; i < count; ++i) {
    if (array) in.expect(' ', "before an element");
    switch (a.type) {
      case 'b':
      case 'B': {
        char c = in.next("a bool");
        if (c != '0' && c != '1') in.bad("a bool must be 0 or 1");
        a.ints.push_back(c == '1');
        break;
      }
      case 'i':
      case 'I': a.ints.push_back(in.number<int64_t>("int64")); break;
      case 'f':
      case 'F': a.floats.push_back(std::bit_cast<double>(in.hex64("a float64"))); break;
      case 's':
      case 'S': a.strings.push_back(in.netstring("a string")); break;
      default: in.bad("unknown attribute type '" + std::string(1, a.type) + "'");
    }
  }
  return a;
}

Reader::Tensor Reader::parse_tensor(Cursor& in, const std::string& name) {
  Tensor t;
  in.expect(' ', "before the dtype");
  std::string_view dtype = in.word("dtype");
  t.dtype = ckpt::sdk::dtype_from_name(dtype);
  if (t.dtype == 0) in.bad("unknown dtype '" + std::string(dtype) + "'");
  in.expect(' ', "before the rank");
  uint64_t rank = in.number<uint64_t>("rank");
  if (rank > in.left() / 2) fail(CKPT_ERR_LIMIT, "a tensor claims rank " + std::to_string(rank) + ", more than the file holds");
  for (uint64_t i = 0; i < rank; ++i) {
    in.expect(' ', "before a dimension");
    t.shape.push_back(in.number<int64_t>("dimension"));
  }
  in.expect(' ', "before the tensor's bytes");
  t.nbytes = ckpt::sdk::checked_nbytes(t.shape, ckpt::sdk::dtype_size(t.dtype), "tensor '" + name + "'");
  // Skipped, not decoded: reading the bytes is read_tensor's job, so list() stays cheap.
  t.hex_offset = in.pos();
  in.take(2 * t.nbytes, "the tensor's bytes");
  return t;
}

void Reader::list(const ckpt::sdk::Visitor& v) {
  for (const Record& r : records_) {
    switch (r.kind) {
      case 'G': v.begin_group(r.name); break;
      case 'E': v.end_group(); break;
      case 'A': emit(v, r.name, attributes_[r.index]); break;
      case 'T': {
        const Tensor& t = tensors_[r.index];
        v.tensor(r.name, t.dtype, t.shape, t.nbytes, r.index);
        break;
      }
    }
  }
}

void Reader::emit(const ckpt::sdk::Visitor& v, const std::string& name, const Attribute& a) {
  switch (a.type) {
    case 'b': return v.attribute(name, ckpt::sdk::make_bool(a.ints[0] != 0));
    case 'i': return v.attribute(name, ckpt::sdk::make_int(a.ints[0]));
    case 'f': return v.attribute(name, ckpt::sdk::make_float(a.floats[0]));
    case 's': return v.attribute(name, ckpt::sdk::make_string(a.strings[0]));
    case 'B': {
      std::vector<uint8_t> bools(a.ints.begin(), a.ints.end());
      return v.attribute(name, ckpt::sdk::make_bools(bools));
    }
    case 'I': return v.attribute(name, ckpt::sdk::make_ints(a.ints));
    case 'F': return v.attribute(name, ckpt::sdk::make_floats(a.floats));
    case 'S': {
      std::vector<ckpt_str> strings;
      for (const auto& s : a.strings) strings.push_back({s.data(), s.size()});
      return v.attribute(name, ckpt::sdk::make_strings(strings));
    }
  }
}

void Reader::read_tensor(uint64_t id, std::span<std::byte> dst) {
  if (id >= tensors_.size()) fail(CKPT_ERR_NOT_FOUND, "no tensor with id " + std::to_string(id));
  const Tensor& t = tensors_[id];
  if (dst.size() != t.nbytes) fail(CKPT_ERR_INVALID_ARGUMENT, "tensor " + std::to_string(id) + " has " + std::to_string(t.nbytes) + " bytes");
  const auto* hex = reinterpret_cast<const unsigned char*>(file_.data()) + t.hex_offset;
  for (size_t i = 0; i < dst.size(); ++i) {
    int hi = hex_value(hex[2 * i]), lo = hex_value(hex[2 * i + 1]);
    if (hi < 0 || lo < 0)
      fail(CKPT_ERR_FORMAT, "'" + file_.path() + "' at byte " + std::to_string(t.hex_offset + 2 * i) + ": a tensor byte is not two hex digits");
    dst[i] = static_cast<std::byte>(hi << 4 | lo);
  }
}

}  // namespace hello

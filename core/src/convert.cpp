#include "atomic_write.hpp"
#include "shards.hpp"

#include <ckpt/sdk_ggml.hpp>
#include <ckpt/sdk_records.hpp>
#include <ckpt/sharded.hpp>

#include <ckpt/convert.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/signer.hpp>

#include <ckpt/plugin_abi.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <unordered_map>

namespace ckpt {

namespace {

// The nearest dtype the target holds, widening first so that most casts are exact. Complex
// values go only to complex dtypes: dropping an imaginary part is not a cast.
std::optional<DType> fallback(DType d, const FormatInfo& target) {
  using D = DType;
  std::vector<D> order;
  switch (d) {
    case D::f8_e4m3fn:
    case D::f8_e5m2: order = {D::f16, D::bf16, D::f32, D::f64}; break;
    case D::f16: order = {D::f32, D::f64, D::bf16}; break;
    case D::bf16: order = {D::f32, D::f64, D::f16}; break;
    case D::f32: order = {D::f64, D::f16, D::bf16}; break;
    case D::f64: order = {D::f32}; break;
    case D::i8: order = {D::i16, D::i32, D::i64, D::f32}; break;
    case D::u8: order = {D::i16, D::u16, D::i32, D::i64, D::f32}; break;
    case D::i16: order = {D::i32, D::i64, D::f32}; break;
    case D::u16: order = {D::i32, D::u32, D::i64, D::u64, D::f32, D::f64}; break;
    case D::i32: order = {D::i64, D::f64}; break;
    case D::u32: order = {D::i64, D::u64, D::f64}; break;
    case D::i64: order = {D::f64, D::i32}; break;
    case D::u64: order = {D::i64, D::f64}; break;
    case D::boolean: order = {D::u8, D::i8, D::i32, D::i64, D::f32}; break;
    case D::c64: order = {D::c128}; break;
    case D::c128: order = {D::c64}; break;
    default: order = {D::f32, D::f64}; break;  // a block dtype, decoded
  }
  for (D o : order)
    if (target.holds(o)) return o;
  return std::nullopt;
}

bool exact_cast(DType from, DType to) {
  using D = DType;
  auto in = [&](std::initializer_list<D> l) { return std::find(l.begin(), l.end(), to) != l.end(); };
  switch (from) {
    case D::f8_e4m3fn:
    case D::f8_e5m2: return in({D::f16, D::bf16, D::f32, D::f64});
    case D::f16: return in({D::f32, D::f64});
    case D::bf16: return in({D::f32, D::f64});
    case D::f32: return in({D::f64});
    case D::i8: return in({D::i16, D::i32, D::i64, D::f32, D::f64});
    case D::u8: return in({D::i16, D::u16, D::i32, D::u32, D::i64, D::u64, D::f32, D::f64});
    case D::i16: return in({D::i32, D::i64, D::f32, D::f64});
    case D::u16: return in({D::i32, D::u32, D::i64, D::u64, D::f32, D::f64});
    case D::i32: return in({D::i64, D::f64});
    case D::u32: return in({D::i64, D::u64, D::f64});
    case D::c64: return in({D::c128});
    case D::boolean: return true;
    default: return is_block(from) && in({D::f32, D::f64});  // ggml's values are f32 products
  }
}

// Where each output tensor comes from.
struct Source {
  std::string src_path;
  const Tensor* src;  // in the reader's tree
  DType from;
  DType to;
  std::string out_path;
};

struct Plan {
  Document tree;  // the output's shape; tensors have no storage
  // Block-quantized tensors decoded for a target that holds no block dtype: the values are
  // exactly ggml's, so this is a change of encoding, recorded, not a loss.
  std::vector<Loss> dequantized;
  // Tensors encoded into a block dtype (options "quantize"): a loss, and the largest error
  // each got, once written.
  DType quantize_to = DType::f32;
  bool quantize = false;
  bool dequantize_f16 = false;  // option dequantize=f16
  // One per output tensor, in the order a depth-first walk of `tree` meets them: the order in
  // which FormatWriter::write asks for them, so that the k-th request is sources[k] (checked
  // by path).
  std::vector<Source> sources;
  std::vector<Loss> losses;
  // A record of the reader's was left out (meta/@external_references): the source's manifest
  // covered it, so the output's hashes are made afresh.
  bool records_dropped = false;
  // Hashes are computed as the tensors stream: meta goes after every other child of the root
  // and a fresh, empty meta/integrity after every other child of meta, so that the walk meets
  // every tensor before it writes the hashes (fill_integrity fills them in between).
  bool hashes_last = false;
};

void plan_group(const Group& in, Group& out, const std::string& in_prefix, const std::string& out_prefix,
                const std::string& flat_prefix, const FormatInfo& target, Plan& plan, bool flatten) {
  bool attrs = target.can(CKPT_CAP_ATTRIBUTES);
  for (const auto& a : in.attributes()) {
    std::string p = join_path(in_prefix, a.name);
    if (!attrs) {
      plan.losses.push_back({p, "attribute dropped (" + target.name + " holds no attributes)"});
    } else if (is_array(value_type(a.value)) && !target.can(CKPT_CAP_ATTRIBUTE_ARRAYS)) {
      plan.losses.push_back({p, "array attribute dropped (" + target.name + " holds only scalars)"});
    } else if (flatten && !in_prefix.empty()) {
      plan.losses.push_back({p, "attribute of a nested group dropped (" + target.name + " has no nested groups)"});
    } else {
      out.set(a.name, a.value);
    }
  }
  std::vector<const Node*> children;
  for (const auto& c : in.children())
    if (!(plan.hashes_last && in_prefix.empty() && c.name == "meta")) children.push_back(&c);
  if (plan.hashes_last && in_prefix.empty() && in.find("meta")) children.push_back(in.find("meta"));
  for (const Node* cp : children) {
    const Node& c = *cp;
    std::string ip = join_path(in_prefix, c.name);
    // ckpt 0.1's in-file signature was its signer's statement about the file they signed; it
    // says nothing of the output, which whoever converts it signs again.
    if (ip == "meta/signature") continue;
    if (plan.hashes_last && ip == "meta/integrity" && c.is_group()) continue;
    // A target without nested groups cannot hold the record under its path, and its writer
    // records the hashes of what it writes when handed one (GGUF's ckpt.integrity.*:
    // docs/formats/gguf.md): the source's record is checked as its tensors are read, and an
    // empty one handed over to be replaced, not lost.
    if (flatten && attrs && target.can(CKPT_CAP_ATTRIBUTE_ARRAYS) && ip == "meta/integrity" && c.is_group()) {
      if (const Node* m = out.find("meta"); !m || m->is_group()) out.group("meta").group("integrity");
      continue;
    }
    if (c.is_group()) {
      if (flatten) {
        plan_group(c.group(), out, ip, out_prefix, flat_prefix + c.name + ".", target, plan, true);
      } else {
        plan_group(c.group(), out.add_group(c.name), ip, join_path(out_prefix, c.name), "", target, plan, false);
      }
      continue;
    }
    const Tensor& t = c.tensor();
    DType to = t.dtype();
    if (!target.holds(to)) {
      auto f = fallback(to, target);
      // dequantize=f16: a block dtype decoded into f16, which rounds what ggml computes in f32.
      if (is_block(to) && plan.dequantize_f16 && target.holds(DType::f16)) f = DType::f16;
      if (!f) throw UnsupportedError(ip + ": " + target.name + " holds no dtype that " + std::string(name(to)) + " can be cast to");
      const std::string what = std::string(name(to)) + " stored as " + std::string(name(*f)) +
                               (exact_cast(to, *f) ? " (exact)" : " (rounded)");
      (is_block(to) && exact_cast(to, *f) ? plan.dequantized : plan.losses).push_back({ip, what});
      to = *f;
    }
    // Quantized as llama.cpp quantizes a model: the weight matrices (floating, two or more
    // dimensions, rows of whole blocks); vectors (norms, biases) keep their dtype.
    if (plan.quantize && is_floating(to) && t.rank() >= 2 && t.shape().back() % static_cast<int64_t>(block_elements(plan.quantize_to)) == 0) {
      plan.losses.push_back({ip, std::string(name(to)) + " quantized to " + std::string(name(plan.quantize_to))});
      to = plan.quantize_to;
    }
    std::string name_out = flat_prefix + c.name;
    if (!flat_prefix.empty()) plan.losses.push_back({ip, "group path flattened to '" + name_out + "'"});
    if (out.find(name_out)) throw UnsupportedError(ip + ": flattening collides with '" + name_out + "'");
    out.add_tensor(name_out, Tensor(to, t.shape(), nullptr));
    plan.sources.push_back({ip, &t, t.dtype(), to, join_path(out_prefix, name_out)});
  }
}

Plan make_plan(const Document& tree, const FormatInfo& target, bool hashes_last = false,
               std::optional<DType> quantize = std::nullopt, bool dequantize_f16 = false) {
  Plan plan;
  plan.hashes_last = hashes_last;
  if (quantize) {
    plan.quantize = true;
    plan.quantize_to = *quantize;
  }
  plan.dequantize_f16 = dequantize_f16;
  plan_group(tree, plan.tree, "", "", "", target, plan, !target.can(CKPT_CAP_NESTED_GROUPS));
  // A torch file whose object the pytorch reader could not record (meta/@torch_layout_lost,
  // docs/formats/pytorch.md): written to .pt, the document takes ckpt's checkpoint layout and
  // torch.load reads another object than torch.save wrote. A loss of that target only: every
  // other format carries the record, so that a later conversion to .pt names it. The output
  // says the loss in meta/conversion, and holds no record (its writer refuses one).
  if (target.name == "pytorch") {
    if (Group* meta = plan.tree.find_group("meta"); meta && !meta->attribute("torch_layout")) {
      if (const Value* lost = meta->attribute("torch_layout_lost")) {
        const std::string* why = std::get_if<std::string>(lost);
        plan.losses.push_back({"meta/torch_layout_lost", "the object torch.save wrote is not recorded (" +
                                                             (why ? why->substr(0, 1000) : std::string("no reason given")) +
                                                             "): written in ckpt's checkpoint layout, which torch.load "
                                                             "reads as another object"});
        meta->erase_attribute("torch_layout_lost");
      }
    }
  }
  if (hashes_last) {
    Group& meta = plan.tree.group("meta");  // last among the root's children, or made so now
    meta.add_group("integrity");
  }
  return plan;
}


}  // namespace

std::vector<Loss> plan_losses(const Document& tree, const FormatInfo& target) {
  return make_plan(tree, target).losses;
}

std::vector<Loss> private_tree_contents(const Document& tree, const FormatInfo& target) {
  std::vector<Loss> out;
  if (!target.can(CKPT_CAP_PRIVATE_TREE)) return out;
  auto plural = [](size_t n, const char* what) {
    return std::to_string(n) + " " + what + (n == 1 ? "" : "s");
  };
  size_t root_other = 0;
  for (const auto& a : tree.attributes())
    if (value_type(a.value) != ValueType::string) ++root_other;
  if (root_other) out.push_back({"/", plural(root_other, "attribute") + " not of type string"});
  struct Count {
    size_t attributes = 0, empty_groups = 0;
    void of(const Group& g) {
      attributes += g.attributes().size();
      // A group with attributes but no children is not counted: its attributes are.
      if (g.children().empty() && g.attributes().empty()) ++empty_groups;
      for (const auto& c : g.children())
        if (c.is_group()) of(c.group());
    }
  };
  for (const auto& c : tree.children()) {
    if (!c.is_group()) continue;
    Count n;
    n.of(c.group());
    // meta's string attributes are copied beside the root's (what another tool's metadata,
    // safetensors' __metadata__, was read as).
    if (c.name == "meta")
      for (const auto& a : c.group().attributes())
        if (value_type(a.value) == ValueType::string) --n.attributes;
    std::string what;
    if (n.attributes) what = plural(n.attributes, "attribute");
    if (n.empty_groups) what += (what.empty() ? "" : ", ") + plural(n.empty_groups, "empty group");
    if (!what.empty()) out.push_back({c.name, what});
  }
  return out;
}

uint64_t parse_byte_size(const std::string& text) { return detail::parse_size(text); }

ConvertReport convert(const fs::path& src, const fs::path& dst, const ConvertOptions& options) {
  const Registry& reg = options.registry ? *options.registry : Registry::global();
  LoadOptions lo;
  lo.format = options.from;
  lo.format_options = options.read_options;
  lo.registry = &reg;
  auto reader = open(src, lo);
  Format target = reg.for_writing(dst, options.to);
  const Document& tree = reader->tree();
  const FormatInfo& info = target.info();
  auto recorded = recorded_digests(tree);
  const bool had_integrity = tree.find_group_path("meta/integrity") != nullptr;
  // A record that no longer describes the file (an attribute added, a name changed) is not
  // carried into the output nor replaced by a fresh one: that would vouch for the change.
  if (const auto problems = record_problems(tree); !problems.empty())
    throw IntegrityError("'" + src.string() + "': " + problems.front() + "; not converting a damaged checkpoint");

  // What the reader found and could not represent (a reader lists it in meta/@unread): lost
  // in any conversion, so named as a loss like the target's own, and not carried into the
  // output, which says it in meta/conversion/losses instead.
  // quantize=<dtype> and dequantize=f32|f16 are the host's: it casts, names the loss and
  // measures the error.
  Options write_options;
  std::optional<DType> quantize;
  bool dequantize_f16 = false;
  for (const auto& [k, v] : options.write_options) {
    if (k == "dequantize") {
      if (v != "f32" && v != "f16") throw UsageError("option dequantize=" + v + ": expected f32 (exact, the default) or f16");
      dequantize_f16 = v == "f16";
      continue;
    }
    if (k != "quantize") {
      write_options.emplace_back(k, v);
      continue;
    }
    const DType q = dtype_from_name(v);
    if (!is_block(q) || !sdk::ggml::can_quantize(static_cast<uint32_t>(q)))
      throw UsageError("option quantize=" + v + ": ckpt quantizes into q8_0, q4_0 or q4_k");
    if (!info.holds(q)) throw UsageError("option quantize=" + v + ": " + target.name() + " holds no " + v + " tensors");
    quantize = q;
  }
  auto planned = [&](bool hashes_last) {
    Plan p = make_plan(tree, info, hashes_last, quantize, dequantize_f16);
    if (Group* meta = p.tree.find_group("meta")) {
      if (const Value* unread = meta->attribute("unread"); unread && value_type(*unread) == ValueType::string_array) {
        for (const auto& u : std::get<std::vector<std::string>>(*unread)) {
          const size_t colon = u.find(": ");
          if (colon == std::string::npos) p.losses.push_back({"meta/unread", u + " (not read from the source)"});
          else p.losses.push_back({u.substr(0, colon), u.substr(colon + 2) + " (not read from the source)"});
        }
        meta->erase_attribute("unread");
      }
      // The source's references to other files: the output's reader finds its own (a format
      // that keeps them, hdf5, writes them from its own records).
      p.records_dropped = meta->erase_attribute(sdk::kExternalReferencesRecord);
    }
    return p;
  };
  // Every file convert writes records the hashes of what it holds, so that verify checks its
  // data whatever the source was. They are known in advance only when the source recorded them
  // and no byte changes (no loss); otherwise they are computed as the tensors stream, which
  // needs meta (and its integrity group) after them. A sharded output hashes before it writes
  // (one document over several files: an index, not a walk, orders it). A root tensor
  // named meta leaves no room for the record (such a file gets none).
  const Node* root_meta = tree.find("meta");
  const bool can_stream = info.can(CKPT_CAP_NESTED_GROUPS) && info.can(CKPT_CAP_ATTRIBUTES) &&
                          info.can(CKPT_CAP_ATTRIBUTE_ARRAYS) && !options.max_shard_bytes && !options.shards &&
                          (!root_meta || root_meta->is_group());
  if (const Node* n = root_meta && root_meta->is_group() ? root_meta->group().find("integrity") : nullptr;
      (can_stream || options.max_shard_bytes) && n && !n->is_group())
    throw UnsupportedError("'" + src.string() + "': a tensor at meta/integrity, where ckpt records the hashes of the "
                           "file it writes");
  // Planned once, unless only the losses say the recorded hashes will not do.
  Plan plan = planned(can_stream && !had_integrity);
  const bool stream_hashes =
      can_stream && (!had_integrity || !plan.losses.empty() || !plan.dequantized.empty() || plan.records_dropped);
  if (stream_hashes && !plan.hashes_last) plan = planned(true);
  ConvertReport report;
  report.from_format = reader->format().name;
  report.to_format = target.name();
  report.losses = plan.losses;
  report.dequantized = plan.dequantized;
  report.dropped_signer = recorded_signer(src);
  if (!report.dropped_signer) report.dropped_signer = legacy_signer(tree);
  if (!plan.losses.empty() && !options.allow_lossy) {
    std::string msg = "converting '" + src.string() + "' to " + target.name() + " would lose:";
    for (const auto& l : plan.losses) msg += "\n  " + l.path + ": " + l.what;
    msg += "\n(allow it with --allow-lossy)";
    throw UnsupportedError(msg);
  }

  // Every source tensor is read into one buffer of the largest one's size, allocated once, even
  // where the source maps: a mapped tensor's pages stay resident until the reader closes, so
  // converting a 1 GiB safetensors file held 1 GiB resident at its end; this holds the largest
  // tensor. The copy out of the page cache (4-5 GB/s) is small beside the write.
  size_t largest = 0;
  for (const Source& s : plan.sources) largest = std::max(largest, s.src->nbytes());
  const std::unique_ptr<std::byte[]> buf(new std::byte[std::max<size_t>(largest, 1)]);
  std::vector<std::byte> cast_buf;
  // Reads one source tensor and returns its bytes in the output dtype.
  auto fetch = [&](const Source& s, const Tensor& out_t, bool check_hash) -> std::span<const std::byte> {
    const std::span<std::byte> bytes(buf.get(), s.src->nbytes());
    reader->read_into(*s.src, s.src_path, bytes);
    if (check_hash) {
      auto it = recorded.find(s.src_path);
      if (it != recorded.end() && hash_hex(hash_bytes(bytes)) != it->second)
        throw IntegrityError("'" + src.string() + "' at " + s.src_path + ": data does not match its recorded hash " +
                             it->second + "; not converting a damaged checkpoint");
    }
    if (s.from == s.to) return bytes;
    cast_buf.resize(out_t.nbytes());
    cast_elements(s.from, bytes.data(), s.to, cast_buf.data(), out_t.numel());
    if (is_block(s.to)) {
      // The largest error quantizing made, a chunk of whole blocks of both dtypes at a time; a
      // NaN (a block no scale could hold) counts as infinite.
      const size_t per = std::max(block_elements(s.to), block_elements(s.from));
      double worst = 0;
      std::vector<float> back(per), orig(per);
      for (uint64_t i = 0; i < out_t.numel(); i += per) {
        cast_elements(s.to, cast_buf.data() + storage_bytes(s.to, i), DType::f32, reinterpret_cast<std::byte*>(back.data()), per);
        cast_elements(s.from, bytes.data() + storage_bytes(s.from, i), DType::f32, reinterpret_cast<std::byte*>(orig.data()), per);
        for (size_t k = 0; k < per; ++k) {
          const double d = std::fabs(static_cast<double>(back[k]) - static_cast<double>(orig[k]));
          worst = std::isnan(d) ? INFINITY : std::max(worst, d);
        }
      }
      report.quantization_errors.emplace_back(s.src_path, worst);
    }
    return cast_buf;
  };

  // The k-th tensor a depth-first walk of the output meets is sources[k].
  auto source_at = [&](size_t k, const std::string& out_path) -> const Source& {
    if (k >= plan.sources.size() || plan.sources[k].out_path != out_path)
      throw Error("convert: the writer asked for '" + out_path + "' out of the planned order");
    return plan.sources[k];
  };
  // A target without attributes (NumPy's files) has no place for these records: the report
  // says it instead.
  const bool records = info.can(CKPT_CAP_ATTRIBUTES);
  if (records && !plan.dequantized.empty()) {
    Group& conv = plan.tree.group("meta").group("conversion");
    std::vector<std::string> lines;
    for (const auto& l : plan.dequantized) lines.push_back(l.path + ": " + l.what);
    conv.set("from_format", report.from_format);
    conv.set("dequantized", lines);
  }
  if (records && !plan.losses.empty()) {
    Group& meta = plan.tree.group("meta");
    Group& conv = meta.group("conversion");
    std::vector<std::string> lines;
    for (const auto& l : plan.losses) lines.push_back(l.path + ": " + l.what);
    conv.set("from_format", report.from_format);
    conv.set("losses", lines);
  }
  // A sharded output is one document over several files: its hashes cannot stream into a record
  // written after the last tensor, so they are known before the first shard is written (the
  // source's recorded ones where the bytes are unchanged, fresh ones for the rest: one extra
  // read of those), and the record covers meta/@format, which Hugging Face's loaders need in
  // every shard. Without this a sharded output recorded no hashes, or a manifest that its
  // own meta/@format no longer matched.
  if (records && options.max_shard_bytes && (!root_meta || root_meta->is_group())) {
    Group& meta = plan.tree.group("meta");
    if (!meta.attribute("format")) meta.set("format", "pt");
    std::vector<std::pair<std::string, std::string>> hashes;
    const size_t quantized = report.quantization_errors.size();  // the write measures them
    size_t k = 0;
    plan.tree.for_each_tensor([&](const std::string& p, const Tensor& t) {
      const Source& s = source_at(k++, p);
      auto it = recorded.find(s.src_path);
      hashes.emplace_back(p, s.from == s.to && it != recorded.end() ? it->second : hash_hex(hash_bytes(fetch(s, t, true))));
    });
    report.quantization_errors.resize(quantized);
    write_integrity(plan.tree, hashes);
  }
  // The hashes of the output, as the writer takes each tensor: the source's recorded one when
  // the bytes are the source's (fetch has checked it), else the output bytes' own. After the
  // last tensor they go into meta/integrity, which the walk reaches next.
  std::vector<std::pair<std::string, std::string>> streamed;
  if (stream_hashes) streamed.reserve(plan.sources.size());
  auto record_hash = [&](const Source& s, const std::string& p, std::span<const std::byte> bytes) {
    if (!stream_hashes) return;
    auto it = recorded.find(s.src_path);
    streamed.emplace_back(p, s.from == s.to && it != recorded.end() ? it->second : hash_hex(hash_bytes(bytes)));
    if (streamed.size() == plan.sources.size()) fill_integrity(plan.tree, streamed);
  };
  if (stream_hashes && plan.sources.empty()) fill_integrity(plan.tree, streamed);

  uint64_t total = plan.tree.tensor_bytes(), done = 0;
  if (options.shards || options.max_shard_bytes) {
    // A sharded layout, ckpt's or Hugging Face's (ckpt/sharded.hpp): each shard's writer asks
    // for its tensors by path. ckpt's index records every tensor's hash (the shards' own records
    // would each cover a part); Hugging Face's first shard holds the record made above.
    std::unordered_map<std::string, size_t> source_of;
    for (size_t k = 0; k < plan.sources.size(); ++k) source_of.emplace(plan.sources[k].out_path, k);
    sharded::SaveSpec spec;
    spec.target = dst;
    spec.format = target.name();
    spec.format_options = write_options;
    spec.fsync = options.fsync;
    spec.registry = &reg;
    spec.layout = options.shards ? sharded::Layout::ckpt : sharded::Layout::hugging_face;
    const sharded::TensorBytes bytes_of = [&](const std::string& p) -> std::span<const std::byte> {
      const auto it = source_of.find(p);
      if (it == source_of.end()) throw Error("convert: the shard writer asked for '" + p + "', which is not planned");
      const Source& s = plan.sources[it->second];
      const Tensor* out_t = plan.tree.find_tensor_path(p);
      auto bytes = fetch(s, *out_t, true);
      report.tensors++;
      report.bytes += bytes.size();
      done += out_t->nbytes();
      if (options.progress) options.progress(done, total);
      return bytes;
    };
    if (options.shards) {
      if (Group* meta = plan.tree.find_group("meta")) meta->erase("integrity");
      sharded::save_document(plan.tree, spec, *options.shards, bytes_of);
    } else {
      sharded::save_document_by_size(plan.tree, spec, *options.max_shard_bytes, bytes_of);
    }
  } else {
    size_t next = 0;
    detail::write_atomically(dst, target, write_options, options.fsync, [&](FormatWriter& writer) {
      next = 0;
      streamed.clear();
      writer.write(plan.tree, [&](const std::string& p, const Tensor& t) {
        const Source& s = source_at(next++, p);
        auto bytes = fetch(s, t, true);
        record_hash(s, p, bytes);
        report.tensors++;
        report.bytes += bytes.size();
        done += t.nbytes();
        if (options.progress) options.progress(done, total);
        return bytes;
      });
    });
  }
  report.source_verified = had_integrity && !recorded.empty();
  report.private_contents = private_tree_contents(plan.tree, target.info());
  return report;
}

}  // namespace ckpt

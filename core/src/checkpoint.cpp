#include <ckpt/checkpoint.hpp>
#include <ckpt/errors.hpp>

#include <chrono>
#include <ctime>

namespace ckpt {

namespace {
std::string now_iso8601() {
  auto t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

const std::string* string_attr(const Group& g, std::string_view name) {
  const Value* v = g.attribute(name);
  return v ? std::get_if<std::string>(v) : nullptr;
}
}  // namespace

bool is_checkpoint(const Document& doc) {
  const Group* meta = doc.find_group("meta");
  const std::string* schema = meta ? string_attr(*meta, "schema") : nullptr;
  return schema && *schema == kSchemaName;
}

Document Checkpoint::to_document() const {
  Document doc;
  Group& meta = doc.add_group("meta");
  meta.set("schema", kSchemaName);
  meta.set("schema_version", kSchemaVersion);
  meta.set("producer", producer.empty() ? std::string("ckpt 0.1.0") : producer);
  meta.set("created", created.empty() ? now_iso8601() : created);
  if (!user.empty()) meta.add_group("user") = user;
  Group& model = doc.add_group("model");
  model.add_group("spec") = model_spec;
  model.add_group("state") = model_state;
  doc.add_group("optimizer") = optimizer;
  doc.add_group("trainer") = trainer;
  doc.add_group("extra") = extra;
  return doc;
}

Checkpoint Checkpoint::from_document(Document doc, const std::string& source) {
  Checkpoint c;
  if (!is_checkpoint(doc)) {
    // A file some other tool wrote: its tensors at the root are the model's state.
    for (auto& n : doc.children()) {
      if (n.is_tensor()) {
        c.model_state.add_tensor(n.name, n.tensor());
        continue;
      }
      Group& g = n.group();
      // How the source file laid its object out (the pytorch plugin's meta/@torch_layout)
      // describes that file, not a checkpoint built from it, which its writer lays out anew.
      if (n.name == "meta") {
        g.erase_attribute("torch_layout");
        if (g.attributes().empty() && g.children().empty()) continue;
      }
      c.extra.add_group(n.name) = std::move(g);
    }
    for (const auto& a : doc.attributes()) c.extra.set(a.name, a.value);
    return c;
  }
  Group& meta = *doc.find_group("meta");
  const Value* ver = meta.attribute("schema_version");
  const int64_t* v = ver ? std::get_if<int64_t>(ver) : nullptr;
  if (!v) throw FormatError("'" + source + "' at meta/schema_version: expected an int64");
  if (*v < 1 || *v > kSchemaVersion)
    throw FormatError("'" + source + "' at meta/schema_version: version " + std::to_string(*v) +
                      " is not understood by this build (it reads 1.." + std::to_string(kSchemaVersion) + ")");
  if (auto* p = string_attr(meta, "producer")) c.producer = *p;
  if (auto* p = string_attr(meta, "created")) c.created = *p;
  if (Group* u = meta.find_group("user")) c.user = std::move(*u);
  auto take = [&](Group* g, Group& into) {
    if (g) into = std::move(*g);
  };
  if (Group* model = doc.find_group("model")) {
    take(model->find_group("spec"), c.model_spec);
    take(model->find_group("state"), c.model_state);
  }
  take(doc.find_group("optimizer"), c.optimizer);
  take(doc.find_group("trainer"), c.trainer);
  take(doc.find_group("extra"), c.extra);
  return c;
}

}  // namespace ckpt

#include "loaded_plugin.hpp"
#include "small_file.hpp"
#include "status.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/format_io.hpp>
#include <ckpt/registry.hpp>

#include <dlfcn.h>
#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sys/stat.h>
#include <unistd.h>
#include <map>
#include <mutex>
#include <set>

namespace ckpt {

namespace {

// One load per library file at a time: Formats of the same plugin share it, and once every
// object made from it is gone the weak pointer expires and the library unloads.
std::shared_ptr<LoadedPlugin> load_shared(const fs::path& library) {
  static std::mutex mu;
  static std::map<fs::path, std::weak_ptr<LoadedPlugin>> cache;
  std::lock_guard lock(mu);
  auto& slot = cache[library];
  if (auto p = slot.lock()) return p;
  auto p = LoadedPlugin::open(library);
  slot = p;
  return p;
}

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Every extension that `path` ends with, longest first (".tar.gz" before ".gz").
bool has_extension(const fs::path& path, const std::string& ext) {
  std::string name = lower(path.filename().string());
  std::string e = lower(ext);
  return name.size() > e.size() && name.compare(name.size() - e.size(), e.size(), e) == 0;
}

// Differences between what a manifest promised and what the library says.
std::string compare_infos(const PluginInfo& manifest, const PluginInfo& lib) {
  if (manifest.name != lib.name)
    return "manifest names plugin '" + manifest.name + "', library says '" + lib.name + "'";
  if (manifest.formats.size() != lib.formats.size())
    return "manifest lists " + std::to_string(manifest.formats.size()) + " formats, library has " +
           std::to_string(lib.formats.size());
  for (size_t i = 0; i < lib.formats.size(); ++i) {
    const auto& a = manifest.formats[i];
    const auto& b = lib.formats[i];
    if (a.name != b.name) return "manifest format '" + a.name + "' is '" + b.name + "' in the library";
    if (a.extensions != b.extensions) return "format '" + a.name + "': extensions differ";
    if (a.capabilities != b.capabilities) return "format '" + a.name + "': capabilities differ";
    if (a.dtypes != b.dtypes) return "format '" + a.name + "': dtypes differ";
  }
  return {};
}

std::string join(const std::vector<std::string>& v, const char* sep = ", ") {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
  return s;
}

}  // namespace

// ---- Format ---------------------------------------------------------------------------------

Format::Format(std::shared_ptr<const PluginInfo> plugin, size_t index)
    : plugin_(std::move(plugin)), index_(index) {}

std::shared_ptr<LoadedPlugin> Format::load() const {
  if (loaded_) return loaded_;
  auto lib = load_shared(plugin_->library);
  if (!plugin_->manifest.empty()) {
    std::string why = compare_infos(*plugin_, lib->describe());
    if (!why.empty())
      throw PluginError("plugin '" + plugin_->library.string() + "' does not match its manifest '" +
                        plugin_->manifest.string() + "': " + why);
  }
  if (!lib->find(name()))
    throw PluginError("plugin '" + plugin_->library.string() + "' has no format '" + name() + "'");
  loaded_ = lib;
  return lib;
}

int Format::identify(std::span<const uint8_t> head, uint64_t file_size) const {
  auto lib = load();
  return lib->find(name())->identify(head.data(), head.size(), file_size);
}

namespace {
std::vector<ckpt_option> c_options(const Options& o) {
  std::vector<ckpt_option> out;
  for (const auto& [k, v] : o) out.push_back({k.c_str(), v.c_str()});
  return out;
}
}  // namespace

std::unique_ptr<FormatWriter> Format::open_writer(const fs::path& path, const Options& options) const {
  if (!info().can(CKPT_CAP_WRITE)) throw UnsupportedError("format '" + name() + "' cannot write");
  auto lib = load();
  const ckpt_format* f = lib->find(name());
  auto opts = c_options(options);
  ckpt_writer* w = nullptr;
  const ckpt_writer_api* api = nullptr;
  std::string context = "writing '" + path.string() + "' as " + name();
  if (ckpt_status* s = f->open_writer(path.c_str(), opts.data(), opts.size(), &w, &api))
    detail::throw_status(s, context);
  if (!w || !api) throw PluginError(context + ": open_writer returned no writer");
  return std::make_unique<FormatWriter>(lib, name(), path, w, api, info().dtypes);
}

std::shared_ptr<FormatReader> Format::open_reader(const fs::path& path, const Options& options) const {
  if (!info().can(CKPT_CAP_READ)) throw UnsupportedError("format '" + name() + "' cannot read");
  auto lib = load();
  const ckpt_format* f = lib->find(name());
  auto opts = c_options(options);
  ckpt_reader* r = nullptr;
  const ckpt_reader_api* api = nullptr;
  std::string context = "'" + path.string() + "' (" + name() + ")";
  if (ckpt_status* s = f->open_reader(path.c_str(), opts.data(), opts.size(), &r, &api))
    detail::throw_status(s, context);
  if (!r || !api) throw PluginError(context + ": open_reader returned no reader");
  return std::make_shared<FormatReader>(lib, info(), path, r, api, options);
}

// ---- Registry -------------------------------------------------------------------------------

Registry::Registry(std::vector<std::pair<fs::path, std::string>> dirs) {
  for (const auto& [dir, origin] : dirs) scan(dir, origin);
}

void Registry::scan(const fs::path& dir, const std::string& origin) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  std::vector<fs::path> entries;
  for (const auto& e : fs::directory_iterator(dir, ec)) entries.push_back(e.path());
  std::sort(entries.begin(), entries.end());
  const std::string suffix = ".ckpt-plugin.json";
  std::set<fs::path> described;
  for (const auto& p : entries) {
    std::string fn = p.filename().string();
    if (fn.size() <= suffix.size() || fn.compare(fn.size() - suffix.size(), suffix.size(), suffix) != 0)
      continue;
    // A library is accounted for by its manifest even when that manifest turns out broken, so it
    // is reported once, with the manifest's problem.
    described.insert(dir / (fn.substr(0, fn.size() - suffix.size()) + ".so"));
    try {
      PluginInfo info = parse_manifest(p);
      info.origin = origin;
      described.insert(info.library);
      if (info.abi_version != CKPT_ABI_VERSION) {
        skipped_.push_back({p, "ABI version " + std::to_string(info.abi_version) +
                                   ", this host speaks " + std::to_string(CKPT_ABI_VERSION)});
        continue;
      }
      if (!fs::exists(info.library)) {
        skipped_.push_back({p, "library '" + info.library.filename().string() + "' is missing"});
        continue;
      }
      std::string dup;
      for (const auto& other : plugins_) {
        if (other->name == info.name) dup = "plugin '" + info.name + "' already found at " + other->library.string();
        for (const auto& fa : other->formats)
          for (const auto& fb : info.formats)
            if (fa.name == fb.name && dup.empty())
              dup = "format '" + fb.name + "' already provided by " + other->library.string();
      }
      if (!dup.empty()) {
        skipped_.push_back({p, "duplicate: " + dup});
        continue;
      }
      plugins_.push_back(std::make_shared<const PluginInfo>(std::move(info)));
    } catch (const Error& e) {
      skipped_.push_back({p, e.what()});
    }
  }
  for (const auto& p : entries) {
    std::string fn = p.filename().string();
    if (p.extension() == ".so" && fn.rfind("ckpt_", 0) == 0 && !described.count(p))
      skipped_.push_back({p, "no manifest beside it (expected " +
                                 p.stem().string() + suffix + ")"});
  }
}

std::vector<std::pair<fs::path, std::string>> Registry::default_search_path() {
  std::vector<std::pair<fs::path, std::string>> dirs;
  if (const char* env = std::getenv("CKPT_PLUGIN_PATH")) {
    std::string s = env;
    size_t start = 0;
    while (start <= s.size()) {
      size_t colon = s.find(':', start);
      std::string part = s.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      // A relative entry would resolve against whatever folder ckpt runs in, so a library
      // dropped there (a download folder) would run its constructors: only absolute folders.
      if (!part.empty() && part[0] == '/')
        dirs.emplace_back(part, "CKPT_PLUGIN_PATH");
      else if (!part.empty())
        std::cerr << "ckpt: warning: ignoring the relative CKPT_PLUGIN_PATH entry '" << part
                  << "' (plugin folders must be absolute paths)\n";
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  // The install folder is found from where libckpt itself lives, so a relocated prefix works.
  Dl_info info{};
  fs::path lib;
  if (dladdr(reinterpret_cast<void*>(&Registry::default_search_path), &info) && info.dli_fname) {
    std::error_code canon;
    fs::path self = fs::weakly_canonical(fs::path(info.dli_fname), canon);  // not .../bin/../lib
    lib = (canon ? fs::path(info.dli_fname) : self).parent_path();
    dirs.emplace_back(lib / "ckpt" / "plugins", "install");
  }
#ifdef CKPT_BUILD_PLUGIN_DIR
  // Only the libckpt of the build tree searches the build tree: an installed copy must not pick
  // up (or be shadowed by) plugins of the tree it was built in.
  std::error_code ec;
  if (lib.empty() || fs::equivalent(lib, CKPT_BUILD_LIB_DIR, ec))
    dirs.emplace_back(CKPT_BUILD_PLUGIN_DIR, "build");
#endif
  return dirs;
}

Registry& Registry::global() {
  static Registry r(default_search_path());
  return r;
}

std::vector<Format> Registry::formats() const {
  std::vector<Format> out;
  for (const auto& p : plugins_)
    for (size_t i = 0; i < p->formats.size(); ++i) out.emplace_back(p, i);
  return out;
}

std::vector<std::string> Registry::format_names() const {
  std::vector<std::string> out;
  for (const auto& f : formats()) out.push_back(f.name());
  return out;
}

Format Registry::get(std::string_view name) const {
  for (const auto& f : formats())
    if (f.name() == name) return f;
  auto names = format_names();
  throw UsageError("unknown format '" + std::string(name) + "' (known: " +
                   (names.empty() ? std::string("none; is CKPT_PLUGIN_PATH set?") : join(names)) + ")");
}

Format Registry::for_writing(const fs::path& path, std::string_view format) const {
  if (!format.empty() && format != "auto") return get(format);
  const Format* best = nullptr;
  size_t best_len = 0;
  auto all = formats();
  for (const auto& f : all) {
    if (!f.info().can(CKPT_CAP_WRITE)) continue;
    for (const auto& e : f.info().extensions)
      if (has_extension(path, e) && e.size() > best_len) {
        best = &f;
        best_len = e.size();
      }
  }
  if (best) return *best;
  throw UsageError("cannot tell which format to write '" + path.string() +
                   "' in from its extension; name one (known: " + join(format_names()) + ")");
}

Format Registry::for_reading(const fs::path& path, std::string_view format) const {
  if (!format.empty() && format != "auto") return get(format);
  // Only a regular file is opened for reading: a FIFO or a device named as a checkpoint is
  // refused without blocking on it.
  const int fd = detail::open_regular_file(path, "a checkpoint");
  std::vector<uint8_t> head(4096);
  size_t got = 0;
  while (got < head.size()) {
    const ssize_t n = ::read(fd, head.data() + got, head.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    got += static_cast<size_t>(n);
  }
  struct stat st {};
  const uint64_t size = ::fstat(fd, &st) == 0 ? static_cast<uint64_t>(st.st_size) : got;
  ::close(fd);
  head.resize(got);

  auto all = formats();
  auto score = [&](const Format& f) {
    if (!f.info().can(CKPT_CAP_READ)) return 0;
    if (!f.info().magic.empty() && !f.info().magic_matches(head)) return 0;
    try {
      return f.identify(head, size);
    } catch (const PluginError&) {
      return 0;  // a broken plugin must not stop the others from claiming the file
    }
  };
  // The extension proposes, identify confirms.
  const Format* best = nullptr;
  int best_score = 0;
  for (const auto& f : all) {
    bool ext = false;
    for (const auto& e : f.info().extensions) ext = ext || has_extension(path, e);
    if (!ext) continue;
    int s = score(f);
    if (s > best_score) {
      best = &f;
      best_score = s;
    }
  }
  if (best) return *best;
  for (const auto& f : all) {
    int s = score(f);
    if (s > best_score) {
      best = &f;
      best_score = s;
    }
  }
  if (best) return *best;
  throw FormatError("'" + path.string() + "' is in none of the known formats (tried: " +
                    join(format_names()) + ")");
}

void Registry::check_one_reading(const fs::path& path, const Format& format) const {
  const int fd = detail::open_regular_file(path, "a checkpoint");
  struct Closer {
    int fd;
    ~Closer() { ::close(fd); }
  } closer{fd};
  struct stat st {};
  if (::fstat(fd, &st) != 0) return;
  const uint64_t size = static_cast<uint64_t>(st.st_size);
  // A few bytes at a few places: no readahead bringing megabytes of tensor data in with them.
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
  auto read_at = [&](uint64_t at, size_t n) {
    std::vector<uint8_t> b(n);
    const ssize_t got = ::pread(fd, b.data(), n, static_cast<off_t>(at));
    b.resize(got > 0 ? static_cast<size_t>(got) : 0);
    return b;
  };
  const std::vector<uint8_t> head = read_at(0, 4096);
  auto polyglot = [&](const std::string& other, const std::string& why) {
    throw FormatError("'" + path.string() + "' is a " + format.name() + " file and also " + other + " (" + why +
                      "): another tool would read other content from it, so ckpt reads it in neither");
  };
  for (const auto& f : formats()) {
    if (f.name() == format.name() || !f.info().can(CKPT_CAP_READ)) continue;
    if (!f.info().magic.empty() && !f.info().magic_matches(head)) continue;
    int s = 0;
    try {
      s = f.identify(head, size);
    } catch (const PluginError&) {
    }
    if (s >= 90) polyglot("a " + f.name() + " file", f.name() + " recognises it with certainty");
  }
  // libhdf5 looks for its superblock at 0, then at every 512 * 2^k below the end of the file.
  static const uint8_t kHdf5[] = {0x89, 'H', 'D', 'F', 0x0d, 0x0a, 0x1a, 0x0a};
  if (format.name() != "hdf5")
    for (uint64_t at = 0; at + sizeof kHdf5 <= size; at = at ? at * 2 : 512)
      if (read_at(at, sizeof kHdf5) == std::vector<uint8_t>(std::begin(kHdf5), std::end(kHdf5)))
        polyglot("an HDF5 file", "a superblock at byte " + std::to_string(at));
  // Every zip reader starts from the end record at the end of the file. A format whose files
  // are zip archives (torch.save, .npz) declares the local header's magic; a file it reads
  // as one starts with it.
  const bool zip_of_this_format =
      head.size() >= 4 && head[0] == 'P' && head[1] == 'K' && head[2] == 3 && head[3] == 4 &&
      std::any_of(format.info().magic.begin(), format.info().magic.end(),
                  [](const MagicBytes& m) { return m.offset == 0 && m.bytes == std::string("PK\x03\x04", 4); });
  if (!zip_of_this_format && size >= 22) {
    const std::vector<uint8_t> end = read_at(size - 22, 22);
    if (end.size() == 22 && end[0] == 'P' && end[1] == 'K' && end[2] == 5 && end[3] == 6 && end[20] == 0 && end[21] == 0)
      polyglot("a zip archive", "a zip end record ends it");
  }
}

std::shared_ptr<const PluginInfo> Registry::load_library_info(const fs::path& library) {
  auto lib = load_shared(fs::absolute(library));
  auto info = std::make_shared<PluginInfo>(lib->describe());
  info->origin = "explicit";
  info->library = fs::absolute(library);
  fs::path manifest = info->library.parent_path() / (info->library.stem().string() + ".ckpt-plugin.json");
  if (fs::exists(manifest)) {
    PluginInfo m = parse_manifest(manifest);
    std::string why = compare_infos(m, *info);
    if (!why.empty())
      throw PluginError("plugin '" + library.string() + "' does not match its manifest: " + why);
    info->manifest = manifest;
  }
  return info;
}

}  // namespace ckpt

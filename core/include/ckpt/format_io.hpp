// Host-side wrappers over a plugin's writer and reader: C++ values in, statuses turned into
// typed exceptions that name the file and the format.
#pragma once

#include <ckpt/document.hpp>
#include <ckpt/registry.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

struct ckpt_writer;
struct ckpt_writer_api;
struct ckpt_reader;
struct ckpt_reader_api;

namespace ckpt {

class FormatWriter {
 public:
  // `dtypes` is the format's declared mask: the writer is never handed another dtype.
  FormatWriter(std::shared_ptr<LoadedPlugin> lib, std::string format, fs::path path,
               ckpt_writer* w, const ckpt_writer_api* api, uint32_t dtypes);
  ~FormatWriter();
  FormatWriter(const FormatWriter&) = delete;
  FormatWriter& operator=(const FormatWriter&) = delete;

  void begin_group(const std::string& name, uint64_t n_attributes, uint64_t n_children);
  void end_group();
  void attribute(const std::string& name, const Value& value);
  void tensor(const std::string& name, DType dtype, const Shape& shape,
              std::span<const std::byte> data);
  void finish();
  // After the host renamed the finished file into place as `path`: lets the plugin tidy what
  // only it knows of (ONNX external data of earlier saves). Never throws.
  void committed(const fs::path& path) noexcept;

  // Streams a whole document (root group included), then finish().
  void write(const Document& doc);
  // The same, taking each tensor's bytes from `source` (path, listed tensor) as it is reached:
  // how convert streams one tensor at a time.
  using TensorSource = std::function<std::span<const std::byte>(const std::string&, const Tensor&)>;
  void write(const Document& tree, const TensorSource& source);

 private:
  void write_group(const std::string& name, const std::string& path, const Group& g,
                   const TensorSource& source);
  void check(struct ckpt_status* s, const std::string& where);
  std::shared_ptr<LoadedPlugin> lib_;  // first: outlives the plugin object below
  std::string format_;
  fs::path path_;
  ckpt_writer* w_;
  const ckpt_writer_api* api_;
  uint32_t dtypes_;
};

class FormatReader : public std::enable_shared_from_this<FormatReader> {
 public:
  // `options` are the ones the plugin was opened with; layouts may read theirs among them.
  FormatReader(std::shared_ptr<LoadedPlugin> lib, FormatInfo info, fs::path path,
               ckpt_reader* r, const ckpt_reader_api* api, Options options = {});
  ~FormatReader();
  FormatReader(const FormatReader&) = delete;
  FormatReader& operator=(const FormatReader&) = delete;

  // One document over several files of one format, each read by its own reader (a Hugging
  // Face sharded checkpoint: shards.hpp). The trees are merged by path: a tensor comes from
  // exactly one part, a group's attributes must agree wherever they appear.
  static std::shared_ptr<FormatReader> merged(fs::path path, std::vector<std::shared_ptr<FormatReader>> parts);

  // One document whose tensors are assembled from boxes (chunks) held by tensors of other
  // files, each read by its own reader opened when first needed (a sharded checkpoint:
  // ckpt/sharded.hpp). `chunks[i]` are the chunks of the i-th tensor of `tree` in
  // for_each_tensor order; `open_part(k)` opens part k. `self_check` is what verify() reports
  // of the whole (each chunk against its recorded hash).
  // A chunk with an `xxh3` is checked against it the first time any of it is read (all of it
  // then, once); `names` renames the parts' paths in their messages (held descriptors'
  // /proc/self/fd/N back to the files they stand for).
  struct ChunkRef {
    size_t part = 0;
    std::string name;  // the chunk's tensor path in its part
    std::vector<int64_t> offsets, sizes;
    std::string xxh3;  // hex, or empty
  };
  static std::shared_ptr<FormatReader> chunked(fs::path path, FormatInfo info, Document tree,
                                               std::vector<std::vector<ChunkRef>> chunks, size_t parts,
                                               std::function<std::shared_ptr<FormatReader>(size_t part)> open_part,
                                               std::function<std::vector<std::string>(uint64_t& tensors, uint64_t& bytes)> self_check,
                                               std::vector<std::pair<std::string, std::string>> names = {});
  // For a chunked reader: what verify() reports instead of meta/integrity (nullptr otherwise).
  const std::function<std::vector<std::string>(uint64_t& tensors, uint64_t& bytes)>& self_check() const { return self_check_; }

  const FormatInfo& format() const { return info_; }
  const fs::path& path() const { return path_; }

  // The tree with every tensor's dtype and shape but no storage (Tensor::defined() false).
  const Document& tree();
  // Bytes of the tensor at `path` ("model/state/fc1.weight").
  void read_into(const std::string& path, std::span<std::byte> dst);
  // The same for a tensor of tree() itself (found without walking the path); `path` names it
  // in messages.
  void read_into(const Tensor& listed, const std::string& path, std::span<std::byte> dst);
  Tensor read(const std::string& path);
  // A zero-copy view that keeps this reader alive; nullopt when the format cannot map or the
  // bytes are not aligned for the dtype.
  std::optional<Tensor> map(const std::string& path);
  // The box start[i] <= index < start[i] + count[i] of the tensor at `path`, as a new tensor of
  // shape `count` (like h5py's dset[a:b, c:d]). Formats that can read part of a tensor do (HDF5
  // hyperslabs); otherwise the box is copied from a mapping, or from one read of the tensor.
  Tensor read_slice(const std::string& path, std::span<const int64_t> start, std::span<const int64_t> count);
  // The same into `dst` (exactly the box's bytes), as a loader fills the parameters it has.
  void read_slice_into(const std::string& path, std::span<const int64_t> start, std::span<const int64_t> count,
                       std::span<std::byte> dst);
  // The whole document with data: mapped where possible (and `prefer_map`), else read.
  Document load(bool prefer_map = true);
  // Every tensor's bytes, one at a time, depth first: a view of a mapping where the format maps,
  // else read into one buffer reused from tensor to tensor (how verify and signing hash a file).
  void for_each_tensor_bytes(
      const std::function<void(const std::string& path, const Tensor& listed, std::span<const std::byte> bytes)>& f);

 private:
  uint64_t id_of(const std::string& path) const;
  void check_bools(DType dtype, std::span<const std::byte> bytes, const std::string& path) const;
  uint64_t id_of(const Tensor& listed, const std::string& path) const;
  // Reads a tensor a layout lists transposed: blocks of the stored tensor's rows through the
  // plugin's read_slice (or one whole read where it has none), each scattered into `dst`.
  struct Transposed {
    std::vector<int> perm;  // listed dimension i is the stored tensor's dimension perm[i]
    Shape stored;
  };
  void read_transposed(uint64_t id, const Tensor& listed, const Transposed& t, const std::string& path,
                       std::span<std::byte> dst);
  void check(struct ckpt_status* s, const std::string& where);
  std::shared_ptr<LoadedPlugin> lib_;  // first: outlives the plugin object below
  FormatInfo info_;
  fs::path path_;
  ckpt_reader* r_;
  const ckpt_reader_api* api_;
  std::optional<Document> tree_;
  // The plugin's id of each tensor of tree_, by the tensor's address (open addressing); for a
  // chunked reader, the index of its chunks in chunks_.
  std::vector<std::pair<const Tensor*, uint64_t>> ids_;
  std::vector<std::shared_ptr<FormatReader>> parts_;
  // A chunked reader: chunks by tensor id, parts opened as first needed (parts_ holds them).
  std::shared_ptr<FormatReader> part(size_t k);
  void read_chunked(uint64_t id, const Tensor& listed, const std::string& path, std::span<std::byte> dst);
  // A chunk's bytes (mapped, else read whole), checked against its hash the first time.
  Tensor chunk_bytes(const ChunkRef& c, const std::string& path);
  // IntegrityError unless `bytes` (the chunk, whole) has its recorded hash; each chunk once.
  void check_chunk(const ChunkRef& c, std::span<const std::byte> bytes, const std::string& path);
  [[noreturn]] void rethrow_part_error() const;
  bool chunked_ = false;
  std::vector<std::vector<ChunkRef>> chunks_;
  std::vector<std::pair<std::string, std::string>> part_names_;
  std::unordered_map<const ChunkRef*, bool> chunk_checked_;
  std::function<std::shared_ptr<FormatReader>(size_t)> open_part_;
  std::function<std::vector<std::string>(uint64_t&, uint64_t&)> self_check_;
  std::unordered_map<const Tensor*, Transposed> transposed_;  // keyed like ids_
  Options options_;
};

}  // namespace ckpt

// The corpus (make_corpus.py): torchvision state dicts, users' checkpoint dicts, the PyTorch
// tutorial's checkpoint, h5py files, a torch.onnx.export model and scikit-learn estimators
// pickled (protocols 2, 4, 5) and joblib-compressed. Each file goes to every writable format
// and back to its own format (pickles, which ckpt does not write, to msgpack), and the tool
// that made it compares the result with the original: torch.load, h5py, onnx. Pickles are
// compared by ckpt's diff of the two documents. A conversion either keeps everything or is
// refused naming why; the refusals are the list this test expects.
#include <ckpt/convert.hpp>
#include <ckpt/diff.hpp>
#include <ckpt/errors.hpp>
#include <ckpt/integrity.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry.hpp>

#include <gtest/gtest.h>

#include <algorithm>

#include "run_many.hpp"
#include "scratch.hpp"

#include <set>
#include <sstream>

using namespace ckpt;
using ckpt_test::run;
using ckpt_test::run_many;
using ckpt_test::TempDir;
namespace fs = std::filesystem;

namespace {

const fs::path kHere = CKPT_REALWORLD_DIR;

std::string corpus(const std::string& args) {
  return std::string(CKPT_PYTHON) + " " + (kHere / "make_corpus.py").string() + " " + args;
}

}  // namespace

TEST(RealWorld, EveryFileThroughEveryFormatComesBackAsItsToolMadeIt) {
  TempDir tmp("realworld");
  std::string out;
  ASSERT_EQ(run(corpus("write " + tmp.path.string()), out), 0) << out;
  std::vector<std::pair<fs::path, std::string>> files;
  std::istringstream lines(out);
  for (std::string path, kind; lines >> path >> kind;) files.emplace_back(path, kind);
  ASSERT_GE(files.size(), 45u);
  std::vector<Format> writable;
  for (const Format& f : Registry::global().formats())
    if (f.info().can(CKPT_CAP_WRITE) && !f.info().extensions.empty()) writable.push_back(f);
  // Refused, and why: bytes that are not UTF-8 have no place in a JSON or safetensors header.
  const std::set<std::string> expected_refusals = {"user_python_values.pt -> json", "user_python_values.pt -> safetensors"};
  std::set<std::string> refusals;
  size_t round_trips = 0, named_losses = 0;
  ConvertOptions o;
  o.fsync = false;
  // The tools' comparisons run in batches in one Python process (each used to start Python and
  // import torch); a batch is flushed once its files pass 512 MiB, so the scratch folder stays small.
  std::vector<std::vector<std::string>> compares;
  std::vector<std::string> compared_pairs;
  std::vector<fs::path> pending_files;
  uintmax_t pending_bytes = 0;
  auto flush = [&] {
    const auto results = run_many(CKPT_PYTHON, kHere / "make_corpus.py", compares, tmp.path);
    for (size_t i = 0; i < results.size(); ++i)
      EXPECT_EQ(results[i].status, 0) << compared_pairs[i] << ": " << results[i].output;
    for (const fs::path& p : pending_files) fs::remove(p);
    compares.clear();
    compared_pairs.clear();
    pending_files.clear();
    pending_bytes = 0;
  };
  for (const auto& [file, kind] : files) {
    const std::string back_format = kind == "torch" ? "pytorch" : kind == "h5py" ? "hdf5" : kind == "onnx" ? "onnx" : "msgpack";
    const Format& back = Registry::global().get(back_format);
    for (const Format& f : writable) {
      const std::string pair = file.filename().string() + " -> " + f.name();
      SCOPED_TRACE(pair);
      const fs::path mid = tmp.path / ("mid" + f.info().extensions.front());
      const fs::path again = tmp.path / ("again-" + std::to_string(compares.size()) + back.info().extensions.front());
      try {
        o.to = f.name();
        convert(file, mid, o);
      } catch (const UnsupportedError& e) {
        // A format that cannot hold the tree (NumPy's .npz: no attributes; GGUF: no nested
        // groups) refuses to convert without --allow-lossy, naming each loss; the tensors then
        // come through (under flattened names where groups cannot nest).
        const bool holds_tree = f.info().can(CKPT_CAP_ATTRIBUTES) && f.info().can(CKPT_CAP_NESTED_GROUPS);
        const std::string why = e.what();
        if (!holds_tree && why.find("holds no dtype that") != std::string::npos) {
          // Nor every dtype (GGUF has no complex numbers): refused, naming the tensor.
          ++named_losses;
          continue;
        }
        // What the reader could not represent (meta/@unread: a pickle's None values) is lost
        // into every format, named the same way.
        const bool unread = why.find("(not read from the source)") != std::string::npos;
        if ((!holds_tree || unread) && why.find("would lose:") != std::string::npos) {
          ConvertOptions lossy = o;
          lossy.allow_lossy = true;
          convert(file, mid, lossy);
          const Document kept = read_document(mid);
          read_document(file).for_each_tensor([&](const std::string& p, const Tensor& t) {
            const Tensor* k = kept.find_tensor_path(p);
            if (!k && !f.info().can(CKPT_CAP_NESTED_GROUPS)) {
              std::string flat = p;
              std::replace(flat.begin(), flat.end(), '/', '.');
              k = kept.find_tensor_path(flat);
            }
            if (!k) return ADD_FAILURE() << pair << ": tensor " << p << " is missing";
            EXPECT_EQ(k->shape(), t.shape()) << pair << ": " << p;
            if (f.info().holds(t.dtype()) && k->dtype() == t.dtype()) {
              EXPECT_TRUE(std::equal(k->bytes().begin(), k->bytes().end(), t.bytes().begin(), t.bytes().end())) << pair << ": " << p;
            }
          });
          ++named_losses;
          continue;
        }
        refusals.insert(pair);
        EXPECT_TRUE(expected_refusals.count(pair)) << e.what();
        continue;
      } catch (const Error& e) {
        refusals.insert(pair);
        EXPECT_TRUE(expected_refusals.count(pair)) << e.what();
        continue;
      }
      // Every file convert writes records its hashes, though no tool here recorded any; where it
      // has a place for them: a record is a group of attributes.
      const VerifyReport verified = verify(*open(mid));
      if (f.info().can(CKPT_CAP_ATTRIBUTES) && f.info().can(CKPT_CAP_NESTED_GROUPS)) {
        EXPECT_TRUE(verified.has_integrity && verified.ok()) << (verified.problems.empty() ? "no hashes" : verified.problems.front());
      } else {
        EXPECT_TRUE(verified.ok()) << verified.problems.front();
      }
      o.to = back_format;
      convert(mid, again, o);
      if (kind == "pickle") {
        DiffOptions exact;
        exact.ignore_meta = false;
        const Document source = read_document(file);
        const DiffReport d = diff_documents(source, read_document(again), exact);
        // What convert adds: its record of the losses and of the hashes (and meta for them).
        for (const DiffEntry& e : d.entries)
          if (e.path.rfind("meta/conversion", 0) != 0 && e.path.rfind("meta/integrity", 0) != 0 &&
              !(e.path == "meta" && !source.find("meta")))
            ADD_FAILURE() << e.path << ": " << e.detail;
        EXPECT_GT(d.tensors_compared, 0u);
      } else {
        compares.push_back({"compare", kind, file.string(), again.string()});
        compared_pairs.push_back(pair);
        pending_files.push_back(again);
        pending_bytes += fs::file_size(again);
        if (pending_bytes > (uintmax_t{512} << 20)) flush();
      }
      ++round_trips;
    }
  }
  flush();
  EXPECT_EQ(refusals, expected_refusals);
  EXPECT_GE(round_trips + named_losses, files.size() * writable.size() - expected_refusals.size());
  std::cout << files.size() << " files, " << writable.size() << " formats, " << round_trips << " round trips, "
            << named_losses << " refused naming what a format that cannot hold the tree loses (tensors then kept)\n";
}

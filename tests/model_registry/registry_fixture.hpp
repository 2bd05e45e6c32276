// One fixture over both backends: each test gets a fresh registry, an SQLite file in a scratch
// folder or a new database on the throwaway PostgreSQL cluster (started on first use, once per
// test process).
#pragma once

#include "pg_cluster.hpp"

#include <ckpt/document.hpp>
#include <ckpt/io.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <memory>

namespace ckpt_test {

namespace mr = ckpt::model_registry;

inline std::unique_ptr<PgCluster>& pg_cluster_slot() {
  static std::unique_ptr<PgCluster> c;
  return c;
}

inline PgCluster& pg_cluster() {
  auto& c = pg_cluster_slot();
  if (!c) c = std::make_unique<PgCluster>();
  return *c;
}

// Stops the cluster after the last test (a static destructor would run after gtest's output).
class PgEnvironment : public ::testing::Environment {
 public:
  void TearDown() override { pg_cluster_slot().reset(); }
};

class RegistryTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (GetParam() == "sqlite") {
      uri_ = "sqlite://" + (tmp_.path / "registry.db").string();
    } else {
      PgCluster& pg = pg_cluster();
      ASSERT_TRUE(pg.ok()) << "the PostgreSQL tests need a throwaway cluster: " << pg.error();
      static std::atomic<int> n{0};
      db_ = "reg_" + std::to_string(::getpid()) + "_" + std::to_string(n++);
      const std::string err = pg.create_database(db_);
      ASSERT_TRUE(err.empty()) << err;
      uri_ = pg.uri(db_) + "&store=" + (tmp_.path / "store").string();
    }
  }

  std::unique_ptr<mr::ModelRegistry> open(mr::ModelRegistry::Open mode = mr::ModelRegistry::Open::create) {
    return mr::ModelRegistry::open(uri_, mode);
  }
  fs::path path(const std::string& name) const { return tmp_.path / name; }
  // Runs `sql` on the registry's database with the backend's own client (sqlite3, psql): an
  // error message, or empty.
  std::string run_sql(const std::string& sql) const {
    // Inside the shell's single quotes, a quote is '\''.
    std::string quoted;
    for (char c : sql) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    if (GetParam() != "sqlite") return pg_cluster().psql(db_, quoted);
    std::string out;
    return run("sqlite3 " + (tmp_.path / "registry.db").string() + " '" + quoted + "'", out) == 0 ? std::string() : out;
  }

  TempDir tmp_{"model-registry"};
  std::string uri_, db_;
};

// A small checkpoint: `n` f32 tensors of `floats` elements under model/state (tensor i filled
// from `seed + i`, so two documents share the tensors whose seeds agree) and trainer metadata.
inline ckpt::Document make_checkpoint(int n, size_t floats, int seed, double accuracy = 0.5, int64_t step = 100) {
  ckpt::Document doc;
  ckpt::Group& state = doc.group("model").group("state");
  for (int i = 0; i < n; ++i) {
    std::vector<float> v(floats);
    for (size_t k = 0; k < floats; ++k) v[k] = static_cast<float>((seed + i) * 1000003 % 7919) + static_cast<float>(k) * 0.25f;
    state.add_tensor("layer" + std::to_string(i) + ".weight",
                     ckpt::Tensor::from<float>(ckpt::DType::f32, {static_cast<int64_t>(floats)}, v));
  }
  ckpt::Group& trainer = doc.group("trainer");
  trainer.set("step", step).set("seed", int64_t{42}).set("config", "{\"epochs\": 3}");
  trainer.group("metrics").set("test_accuracy", accuracy).set("test_loss", 1.0 - accuracy);
  doc.group("meta").set("producer", "registry test");
  return doc;
}

inline void write_checkpoint(const ckpt::Document& doc, const fs::path& p) {
  ckpt::SaveOptions o;
  o.fsync = false;
  ckpt::write_document(doc, p, o);
}

inline size_t count_blobs(const fs::path& store) {
  size_t n = 0;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(store / "blobs", ec), end; !ec && it != end; it.increment(ec))
    if (it->is_regular_file()) ++n;
  return n;
}

}  // namespace ckpt_test

// `ckpt registry ...` and registry:NAME@ALIAS in other commands, run as a user would (SQLite).
#include "registry_cli_fixture.hpp"

#include <ckpt/registry.hpp>
#include <ckpt/registry/model_registry.hpp>

#include <fstream>
#include <sys/stat.h>
#include <unistd.h>

namespace ckpt_test {
namespace {

TEST_F(RegistryCli, RegisterShowPullAndRegistryInputs) {
  std::string out;
  ASSERT_EQ(registry("register " + (tmp_.path / "a.msgpack").string() + " --name net --alias production --tag team=x", out), 0)
      << out;
  EXPECT_NE(out.find("net/1"), std::string::npos) << out;
  ASSERT_EQ(registry("show net@production", out), 0) << out;
  EXPECT_NE(out.find("metric test_accuracy: 0.875"), std::string::npos) << out;
  EXPECT_NE(out.find("tag team=x"), std::string::npos) << out;
  ASSERT_EQ(registry("show net/1 --tensors", out), 0) << out;
  EXPECT_NE(out.find("tensor model/state/w  f32[4]  16 bytes  blake2b-256:"), std::string::npos) << out;
  ASSERT_EQ(registry("show net/1 --json", out), 0) << out;
  EXPECT_NE(out.find("\"status\": \"READY\""), std::string::npos) << out;
  ASSERT_EQ(registry("list", out), 0) << out;
  EXPECT_NE(out.find("net  1 version, latest 1  @production=1"), std::string::npos) << out;
  ASSERT_EQ(registry("list net", out), 0) << out;
  EXPECT_NE(out.find("net/1  READY"), std::string::npos) << out;
  ASSERT_EQ(registry("register " + (tmp_.path / "a.msgpack").string() + " --name net", out), 0) << out;
  ASSERT_EQ(registry("alias set net production 2", out), 0) << out;
  ASSERT_EQ(registry("history net@production", out), 0) << out;
  EXPECT_NE(out.find("- -> 1  registered"), std::string::npos) << out;
  EXPECT_NE(out.find("1 -> 2  set"), std::string::npos) << out;
  ASSERT_EQ(registry("search --metric test_accuracy --max", out), 0) << out;
  EXPECT_NE(out.find("test_accuracy=0.875"), std::string::npos) << out;
  ASSERT_EQ(registry("pull net@production " + (tmp_.path / "out.safetensors").string(), out), 0) << out;
  EXPECT_TRUE(fs::exists(tmp_.path / "out.safetensors"));
  ASSERT_EQ(registry("verify net/1", out), 0) << out;
  ASSERT_EQ(registry("delete net/1", out), 0) << out;
  ASSERT_EQ(registry("gc", out), 0) << out;
  EXPECT_NE(out.find("removed 0 pending and 1 deleted versions"), std::string::npos) << out;

  // registry:NAME@ALIAS wherever a checkpoint file is taken.
  const std::string env = "CKPT_REGISTRY=" + uri_ + " ";
  ASSERT_EQ(run(env + CKPT_CLI + " convert registry:net@production " + (tmp_.path / "c.safetensors").string(), out), 0) << out;
  const ckpt::Document back = ckpt::read_document(tmp_.path / "c.safetensors");
  EXPECT_EQ(back.find_tensor_path("model/state/w")->data<float>()[3], 4.f);
  EXPECT_NE(run(env + CKPT_CLI + " convert registry:net@nothing " + (tmp_.path / "d.safetensors").string(), out), 0);
  EXPECT_NE(out.find("no alias 'nothing'"), std::string::npos) << out;
}

TEST_F(RegistryCli, BadInputExitsTwoAndChangesNothing) {
  std::string out;
  ASSERT_EQ(registry("register " + (tmp_.path / "a.msgpack").string() + " --name net", out), 0) << out;
  const auto before = fs::last_write_time(tmp_.path / "reg.db");
  struct Case {
    std::string args, expect;
  };
  const Case cases[] = {
      {"show nope", "no model named 'nope'"},
      {"show net@prod", "no alias 'prod'"},
      {"show net/9", "no version 9"},
      {"show 'net/x'", "must be a number"},
      {"alias set net prod 4", "no version 4"},
      {"delete net", "give NAME/VERSION"},
      {"pull net/3 " + (tmp_.path / "o.msgpack").string(), "no version 3"},
      {"register " + (tmp_.path / "missing.msgpack").string() + " --name net", "no such file"},
      {"register " + (tmp_.path / "a.msgpack").string() + " --name 'bad name'", "may hold only"},
      {"tag net/1", "give KEY=VALUE"},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(registry(c.args, out), 2) << c.args << ": " << out;
    EXPECT_NE(out.find(c.expect), std::string::npos) << c.args << ": " << out;
  }
  EXPECT_EQ(run(std::string(CKPT_CLI) + " registry --registry mysql://x/y list", out), 2) << out;
  EXPECT_NE(out.find("unknown scheme"), std::string::npos) << out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " registry --registry sqlite://" + (tmp_.path / "none.db").string() + " list", out), 2);
  EXPECT_NE(out.find("no registry at"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(tmp_.path / "none.db"));
  ASSERT_EQ(run("sqlite3 " + (tmp_.path / "other.db").string() + " 'CREATE TABLE users (id INTEGER)'", out), 0) << out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " registry --registry sqlite://" + (tmp_.path / "other.db").string() + " list", out), 2);
  EXPECT_NE(out.find("not a ckpt model registry"), std::string::npos) << out;
  EXPECT_EQ(run(std::string(CKPT_CLI) + " registry --registry sqlite://" + (tmp_.path / "other.db").string() +
                    " register " + (tmp_.path / "a.msgpack").string() + " --name net",
                out),
            2);
  EXPECT_FALSE(fs::exists(tmp_.path / "other.store"));
  // A register that fails on its input makes no registry either.
  EXPECT_EQ(run(std::string(CKPT_CLI) + " registry --registry sqlite://" + (tmp_.path / "new/reg.db").string() +
                    " register " + (tmp_.path / "missing.msgpack").string() + " --name net",
                out),
            2);
  EXPECT_FALSE(fs::exists(tmp_.path / "new"));
  // Nor does one whose file is not a checkpoint.
  std::ofstream(tmp_.path / "junk.msgpack") << "not a checkpoint";
  EXPECT_NE(run(std::string(CKPT_CLI) + " registry --registry sqlite://" + (tmp_.path / "new/reg.db").string() +
                    " register " + (tmp_.path / "junk.msgpack").string() + " --name net",
                out),
            0);
  EXPECT_FALSE(fs::exists(tmp_.path / "new")) << out;
  EXPECT_EQ(fs::last_write_time(tmp_.path / "reg.db"), before);
  EXPECT_FALSE(fs::exists(tmp_.path / "o.msgpack"));
  ASSERT_EQ(registry("list net", out), 0);
  EXPECT_EQ(out.find("net/2"), std::string::npos) << out;
}

// A user who may read an SQLite registry but not write its folder lists, shows, pulls and
// verifies it: with no writer connected (no -wal, no -shm: opened immutable) and with one
// connected (-wal and a -shm this user may not write: SQLite's read-only WAL).
TEST_F(RegistryCli, ReadOnlyUsersListShowPullAndVerify) {
  std::string out;
  ASSERT_EQ(registry("register " + (tmp_.path / "a.msgpack").string() + " --name net --alias production", out), 0) << out;
  const fs::path pulled = tmp_.path / "pulled";
  fs::create_directories(pulled);
  fs::permissions(pulled, fs::perms::all);
  // As root, the commands run as nobody; otherwise the registry's folder loses its write bit.
  const bool root = ::geteuid() == 0;
  const std::string as = root ? "runuser -u nobody -- " : "";
  if (!root) fs::permissions(tmp_.path, fs::perms::owner_write | fs::perms::group_write | fs::perms::others_write, fs::perm_options::remove);
  struct Restore {
    fs::path p;
    ~Restore() { fs::permissions(p, fs::perms::owner_all, fs::perm_options::add); }
  } restore{tmp_.path};
  auto reader = [&](const std::string& args) { return run(as + CKPT_CLI + " registry --registry " + uri_ + " " + args, out); };
  for (const bool writer_connected : {false, true}) {
    SCOPED_TRACE(writer_connected ? "a writer connected" : "no writer connected");
    std::unique_ptr<ckpt::model_registry::ModelRegistry> writer;
    if (writer_connected) {
      writer = ckpt::model_registry::ModelRegistry::open(uri_);
      writer->list_models();
      ASSERT_TRUE(fs::exists(tmp_.path / "reg.db-wal"));
    } else {
      ASSERT_FALSE(fs::exists(tmp_.path / "reg.db-wal"));
    }
    ASSERT_EQ(reader("list"), 0) << out;
    EXPECT_NE(out.find("net  1 version"), std::string::npos) << out;
    ASSERT_EQ(reader("show net@production"), 0) << out;
    EXPECT_NE(out.find("READY"), std::string::npos) << out;
    const fs::path target = pulled / (writer_connected ? "b.safetensors" : "a.safetensors");
    ASSERT_EQ(reader("pull net@production " + target.string()), 0) << out;
    EXPECT_EQ(ckpt::read_document(target).find_tensor_path("model/state/w")->data<float>()[3], 4.f);
    ASSERT_EQ(reader("verify net/1"), 0) << out;
    // Writing stays refused, with a message, never a crash.
    EXPECT_NE(reader("alias set net staging 1"), 0) << out;
    EXPECT_FALSE(out.empty());
  }
  EXPECT_FALSE(fs::exists(tmp_.path / "reg.db-wal"));
}

// "registry:" always names a registry version, even when a file of that name exists; the file is
// reached with a folder in front (./registry:...).
TEST_F(RegistryCli, RegistryPrefixAlwaysNamesTheRegistry) {
  std::string out;
  ASSERT_EQ(registry("register " + (tmp_.path / "a.msgpack").string() + " --name net --alias production", out), 0) << out;
  ckpt::Document other;
  other.group("model").group("state").add_tensor("w", ckpt::Tensor::from<float>(ckpt::DType::f32, {4}, {9, 9, 9, 9}));
  ckpt::write_document(other, tmp_.path / "registry:net@production", ckpt::Registry::global().get("msgpack"));
  const std::string in = "cd " + tmp_.path.string() + " && CKPT_REGISTRY=" + uri_ + " " + CKPT_CLI + " convert ";
  ASSERT_EQ(run(in + "registry:net@production from-registry.safetensors", out), 0) << out;
  EXPECT_EQ(ckpt::read_document(tmp_.path / "from-registry.safetensors").find_tensor_path("model/state/w")->data<float>()[3], 4.f);
  ASSERT_EQ(run(in + "--from msgpack ./registry:net@production from-file.safetensors", out), 0) << out;
  EXPECT_EQ(ckpt::read_document(tmp_.path / "from-file.safetensors").find_tensor_path("model/state/w")->data<float>()[3], 9.f);
  // A malformed reference says how to name such a file.
  EXPECT_EQ(run(in + "'registry:bad name' x.safetensors", out), 2) << out;
  EXPECT_NE(out.find("./registry:bad name"), std::string::npos) << out;
}

// verify names a damaged blob, exits 1 and sets it aside; a store without its id is refused
// with the command that adopts it, which then works.
TEST_F(RegistryCli, VerifySetsDamagedBlobsAsideAndInitAdoptsAStoreWithoutId) {
  std::string out;
  ASSERT_EQ(registry("register " + (tmp_.path / "a.msgpack").string() + " --name net", out), 0) << out;
  const fs::path store = tmp_.path / "reg.store";
  fs::path victim;
  for (const auto& e : fs::recursive_directory_iterator(store / "blobs"))
    if (e.is_regular_file() && e.file_size() == 16) victim = e.path();  // model/state/w, 4 floats
  ASSERT_FALSE(victim.empty());
  fs::permissions(victim, fs::perms::owner_write, fs::perm_options::add);
  std::ofstream(victim, std::ios::binary | std::ios::in | std::ios::out) << "X";
  EXPECT_EQ(registry("verify net/1", out), 1) << out;
  EXPECT_NE(out.find("model/state/w"), std::string::npos) << out;
  EXPECT_NE(out.find("1 damaged blob(s) moved into the store's tmp/"), std::string::npos) << out;
  EXPECT_FALSE(fs::exists(victim));
  ASSERT_EQ(registry("register " + (tmp_.path / "a.msgpack").string() + " --name net", out), 0) << out;
  EXPECT_EQ(registry("verify net/1", out), 0) << out;

  ASSERT_TRUE(fs::remove(store / ".store-id"));
  ASSERT_EQ(run("sqlite3 " + (tmp_.path / "reg.db").string() + " \"DELETE FROM settings WHERE key = 'store_id'\"", out), 0) << out;
  EXPECT_EQ(registry("list", out), 2) << out;
  EXPECT_NE(out.find("ckpt registry init --adopt-store"), std::string::npos) << out;
  ASSERT_EQ(registry("init --adopt-store", out), 0) << out;
  ASSERT_EQ(registry("verify net/2", out), 0) << out;
}

}  // namespace
}  // namespace ckpt_test

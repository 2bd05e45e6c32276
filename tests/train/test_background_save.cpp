// The checkpoint manager's background save: at most one save in flight, and an error on the
// writer thread comes back to the training thread as the typed error the save threw.
#include "scratch.hpp"

#include <ckpt/errors.hpp>
#include <ckpt/train/manager.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <random>
#include <thread>
#include <unistd.h>

using namespace ckpt;
using namespace ckpt::train;
namespace fs = std::filesystem;

namespace {

using ckpt_test::TempDir;
using ckpt_test::temporaries_in;

// Big enough that a save (hashing, writing, fsync) takes far longer than returning from save().
Checkpoint owned_checkpoint(int64_t elements, float fill) {
  Checkpoint c;
  Tensor t = Tensor::empty(DType::f32, {elements});
  for (float& v : t.mutable_data<float>()) v = fill;
  c.model_state.add_tensor("w", std::move(t));
  return c;
}

CheckpointConfig background_config(const fs::path& dir) {
  CheckpointConfig cc;
  cc.backend = "msgpack";
  cc.dir = dir;
  cc.keep_last = 0;  // keep all, so every save's file can be checked afterwards
  cc.background = true;
  return cc;
}

}  // namespace

TEST(BackgroundSave, AtMostOneSaveIsInFlight) {
  TempDir tmp;
  const fs::path dir = tmp.path / "run";
  CheckpointManager m(background_config(dir), Registry::global());

  // A watcher counts the temporaries, one per save being written, for the whole test.
  std::atomic<bool> done{false};
  std::atomic<size_t> most{0};
  std::atomic<int64_t> looks{0};
  std::thread watcher([&] {
    while (!done) {
      size_t n = temporaries_in(dir);
      if (n > most) most = n;
      ++looks;
    }
  });

  const int saves = 6;
  int returned_before_written = 0;
  for (int i = 1; i <= saves; ++i) {
    m.save(owned_checkpoint(2 << 20, static_cast<float>(i)), i);
    // save() came back: the save before this one is whole on disk, so it is not in flight.
    if (i > 1) {
      EXPECT_TRUE(fs::exists(m.path_for(i - 1))) << "save " << i << " was queued before save " << i - 1 << " finished";
    }
    if (!fs::exists(m.path_for(i))) ++returned_before_written;
  }
  m.wait();
  done = true;
  watcher.join();

  // The saves really ran behind the caller (a synchronous save would pass the checks above).
  EXPECT_GT(returned_before_written, 0);
  EXPECT_GT(looks.load(), saves);
  EXPECT_EQ(most.load(), 1u) << "the watcher saw " << most.load() << " saves being written at once";
  for (int i = 1; i <= saves; ++i) EXPECT_TRUE(fs::exists(m.path_for(i))) << i;
  EXPECT_EQ(temporaries_in(dir), 0u);
}

TEST(BackgroundSave, AWriterErrorReachesTheCallerAsATypedError) {
  TempDir tmp;
  const fs::path dir = tmp.path / "run";
  CheckpointManager m(background_config(dir), Registry::global());
  // The folder turns into a file, so the writer thread's save fails.
  fs::remove_all(dir);
  std::ofstream(dir) << "not a folder";

  m.save(owned_checkpoint(16, 1), 1);  // only queued: the failure happens on the writer thread
  try {
    m.wait();
    FAIL() << "wait() did not report the failed save";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(m.path_for(1).string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("does not exist"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(m.wait());  // reported once

  // Without a wait(), the next save() reports it and queues nothing.
  m.save(owned_checkpoint(16, 2), 2);
  EXPECT_THROW(m.save(owned_checkpoint(16, 3), 3), IoError);
  EXPECT_NO_THROW(m.wait());

  // Once the folder is back, saving works again.
  fs::remove(dir);
  fs::create_directories(dir);
  m.save(owned_checkpoint(16, 4), 4);
  m.wait();
  EXPECT_TRUE(fs::exists(m.path_for(4)));
  EXPECT_FALSE(fs::exists(m.path_for(3)));
}

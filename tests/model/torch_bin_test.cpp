// Hostile .bin checkpoints (tests/model/hostile_bin.py writes them) and index entries that name
// files outside the model directory: each is refused with an error naming the file, quickly and
// without reading past any buffer.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdlib>

#include "longalign/core/error.hpp"
#include "longalign/model/safetensors.hpp"
#include "longalign/model/torch_bin.hpp"
#include "test_paths.hpp"
#include "test_util.hpp"

using namespace longalign;
using namespace longalign::model;
namespace fs = std::filesystem;

namespace {

const fs::path& hostile_dir() { return fixture::python_made_dir("model/hostile_bin.py"); }

// The error CheckpointTensors gives for `dir`, which must be a RuntimeError containing each of `parts`.
void expect_refused(const fs::path& dir, const std::vector<std::string>& parts) {
  const auto t0 = std::chrono::steady_clock::now();
  try {
    CheckpointTensors c(dir);
    ADD_FAILURE() << dir << " loaded";
  } catch (const RuntimeError& e) {
    for (const auto& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\nlacks: " << p;
  }
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 20.0) << dir;
}

}  // namespace

TEST(TorchBin, GoodHandMadeFileLoads) {
  CheckpointTensors c(hostile_dir() / "good");
  EXPECT_EQ(c.view("w").sizes(), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(c.view("w")[3][3].item<float>(), 15.0f);
}

TEST(TorchBin, TensorsReachingPastTheirStorageRecordAreRefused) {
  expect_refused(hostile_dir() / "short_record", {"short_record/pytorch_model.bin", "tensor w", "reaches past its storage"});
  expect_refused(hostile_dir() / "far_offset", {"far_offset/pytorch_model.bin", "offset 1000000000"});
  expect_refused(hostile_dir() / "huge_shape", {"huge_shape/pytorch_model.bin", "tensor w"});
}

TEST(TorchBin, DeepOrStrangePicklesAreRefusedBeforeUnpickling) {
  expect_refused(hostile_dir() / "deep_nesting", {"deep_nesting/pytorch_model.bin", "nest deeper than 64"});
  expect_refused(hostile_dir() / "deep_memo", {"deep_memo/pytorch_model.bin", "changed after it was placed"});
  expect_refused(hostile_dir() / "bad_opcode", {"bad_opcode/pytorch_model.bin", "opcode 0x69"});
  expect_refused(hostile_dir() / "long_string", {"long_string/pytorch_model.bin", "past the end"});
}

TEST(TorchBin, PickleShapeCheckAcceptsWhatPythonWrites) {
  // {"a": [1, (2, 3)], "b": None} as Python's protocol-2 pickler writes it.
  static const char kP[] = "\x80\x02}q\x00(X\x01\x00\x00\x00" "aq\x01]q\x02(K\x01K\x02K\x03\x86q\x03" "eX\x01\x00\x00\x00" "bq\x04Nu.";
  const std::string p(kP, sizeof kP - 1);
  EXPECT_NO_THROW(check_pickle_shape(reinterpret_cast<const uint8_t*>(p.data()), p.size(), "x"));
  static const char kSelf[] = "\x80\x02]q\x00h\x00" "a.";
  const std::string self(kSelf, sizeof kSelf - 1);  // a list placed inside itself
  EXPECT_THROW(check_pickle_shape(reinterpret_cast<const uint8_t*>(self.data()), self.size(), "x"), RuntimeError);
  const std::string nostop = "\x80\x02}";
  EXPECT_THROW(check_pickle_shape(reinterpret_cast<const uint8_t*>(nostop.data()), nostop.size(), "x"), RuntimeError);
}

// An index may only name regular files inside the model directory.
TEST(ModelDirectory, IndexEntriesOutsideTheDirectoryOrNotRegularAreRefused) {
  fixture::TempDir tmp;
  fs::create_directories(tmp / "outside");
  write_safetensors(tmp / "outside" / "w.safetensors", {{"w", torch::ones({4})}});
  auto model_with_index = [&](const std::string& name, const std::string& shard) {
    const fs::path d = tmp / name;
    fs::create_directories(d);
    fixture::write_text(d / "model.safetensors.index.json",
                        "{\"weight_map\": {\"w\": \"" + shard + "\"}}");
    return d;
  };
  expect_refused(model_with_index("up", "../outside/w.safetensors"), {"weight_map entry for w", "'..'"});
  expect_refused(model_with_index("abs", (tmp / "outside" / "w.safetensors").string()), {"weight_map entry for w", "absolute"});
  expect_refused(model_with_index("missing", "nope.safetensors"), {"model.safetensors.index.json", "nope.safetensors", "does not exist"});
  const fs::path link = model_with_index("link", "w.safetensors");
  fs::create_symlink(tmp / "outside" / "w.safetensors", link / "w.safetensors");
  expect_refused(link, {"weight_map entry for w", "outside it"});
  const fs::path fifo = model_with_index("fifo", "w.safetensors");
  ASSERT_EQ(::mkfifo((fifo / "w.safetensors").c_str(), 0644), 0);
  expect_refused(fifo, {"weight_map entry for w", "a FIFO"});
  const fs::path zero = model_with_index("zero", "w.safetensors");
  fs::create_symlink("/dev/zero", zero / "w.safetensors");
  expect_refused(zero, {"weight_map entry for w", "outside it"});
  // The whole model file a symlink to a device inside the directory is still not a regular file.
  const fs::path single = tmp / "single";
  fs::create_directories(single);
  ASSERT_EQ(::mkfifo((single / "model.safetensors").c_str(), 0644), 0);
  expect_refused(single, {"model.safetensors", "a FIFO"});
  // A Hugging Face cache snapshot links into its blobs folder: allowed.
  const fs::path snap = tmp / "models--x--y" / "snapshots" / "abc";
  fs::create_directories(snap);
  fs::create_directories(tmp / "models--x--y" / "blobs");
  write_safetensors(tmp / "models--x--y" / "blobs" / "1234", {{"w", torch::full({4}, 2.0f)}});
  fs::create_symlink("../../blobs/1234", snap / "model.safetensors");
  EXPECT_EQ(CheckpointTensors(snap).view("w")[0].item<float>(), 2.0f);
}

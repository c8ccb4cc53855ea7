// .bin weights through torch::jit::readArchiveAndTensors: what torch::pickle_load runs, here over
// the file (records read as needed) rather than over a copy of the whole file in memory. The C++
// unpickler builds only types it knows (tensors and their storages, containers, numbers,
// strings) and refuses any other name, so unlike Python's torch.load nothing in the file runs.
#include "longalign/model/torch_bin.hpp"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/storage_context.h>
#include <torch/csrc/jit/serialization/import_read.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "longalign/core/error.hpp"
#include "longalign/core/read_file.hpp"

namespace fs = std::filesystem;

namespace longalign::model {
namespace {

const char* const kConvertHint =
    "convert it to safetensors (e.g. in Python: safetensors.torch.save_file(dict(torch.load(path, "
    "weights_only=True)), 'model.safetensors'), keeping the tensor names)";

// The first line of a LibTorch error, without its C++ backtrace.
std::string first_line(const std::exception& e) {
  const auto* c10e = dynamic_cast<const c10::Error*>(&e);
  std::string msg = c10e ? c10e->what_without_backtrace() : e.what();
  return msg.substr(0, msg.find('\n'));
}

// The largest byte any view of `t` reaches in its storage, plus one; nullopt on a negative
// size or stride or an overflow.
std::optional<uint64_t> byte_extent(const at::Tensor& t) {
  const int64_t off = t.storage_offset();
  if (off < 0) return std::nullopt;
  unsigned __int128 last = uint64_t(off);
  bool empty = false;
  for (int64_t d = 0; d < t.dim(); ++d) {
    const int64_t n = t.sizes()[d], st = t.strides()[d];
    if (n < 0 || st < 0) return std::nullopt;
    if (n == 0) empty = true;
    else last += (unsigned __int128)(n - 1) * uint64_t(st);
    if (last > (unsigned __int128)UINT64_MAX / 16) return std::nullopt;
  }
  if (empty) return 0;
  return uint64_t((last + 1) * t.element_size());
}

}  // namespace

NamedTensors read_torch_bin(const fs::path& file) {
  // Callers check the name against its directory (contained_file); this is the last guard
  // against a FIFO, whose open would block.
  if (!fs::is_regular_file(file)) throw RuntimeError(file.string() + " is not a regular file");
  {
    std::ifstream f(file, std::ios::binary);
    if (!f) throw RuntimeError("cannot read " + file.string());
    char magic[4] = {};
    f.read(magic, sizeof magic);
    if (f.gcount() != 4 || std::memcmp(magic, "PK\x03\x04", 4) != 0)
      throw RuntimeError(file.string() + " is not a torch.save zip archive (PyTorch writes that format since 1.6; "
                         "older files are pickles that only Python can read): " + kConvertHint);
  }
  c10::IValue value;
  bool ordered_dict = false;
  try {
    caffe2::serialize::PyTorchStreamReader reader(file.string());
    // Each storage is its zip record, read here at the record's own size, so a pickle that
    // declares a larger storage than the record holds cannot make a tensor reach past it (the
    // unpickler would otherwise trust the declared size).
    const uint64_t file_size = fs::file_size(file);
    auto storages = std::make_shared<torch::jit::DeserializationStorageContext>();
    for (const auto& rec : reader.getAllRecords()) {
      const uint64_t n = reader.getRecordSize(rec);
      if (n > file_size)
        throw RuntimeError(file.string() + ": zip record " + rec + " declares " + std::to_string(n) + " bytes, more than the " +
                           std::to_string(file_size) + "-byte file holds; the archive is damaged (re-save or re-download it)");
      if (rec.rfind("data/", 0) != 0 || rec.size() == 5) continue;
      auto [ptr, got] = reader.getRecord(rec);
      storages->addStorage(rec.substr(5), c10::Storage(c10::Storage::use_byte_size_t(), got, std::move(ptr), nullptr, false));
    }
    // The unpickler turns collections.OrderedDict into None (it expects one only as a tensor's
    // unused backward hooks), so a state dict pickled as one fails at its first item: look at the
    // pickle's first global (torch.save writes protocol 2: PROTO 2, then GLOBAL "module\nname\n").
    const auto [pickle, size] = reader.getRecord("data.pkl");
    constexpr std::string_view kOrderedDict = "\x80\x02" "ccollections\nOrderedDict\n";
    ordered_dict = size >= kOrderedDict.size() &&
                   std::string_view(static_cast<const char*>(pickle.get()), kOrderedDict.size()) == kOrderedDict;
    if (!ordered_dict) {
      check_pickle_shape(static_cast<const uint8_t*>(pickle.get()), size, file.string());
      value = torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"",
                                                /*type_resolver=*/std::nullopt, /*obj_loader=*/std::nullopt,
                                                at::Device(at::kCPU), reader, torch::jit::Unpickler::defaultTypeParser,
                                                storages);
    }
  } catch (const RuntimeError&) {
    throw;
  } catch (const std::exception& e) {
    throw RuntimeError("cannot read " + file.string() + " with LibTorch's unpickler (" + first_line(e) +
                       "); it reads torch.save zip archives of a plain dict of tensors: " + kConvertHint);
  }
  if (ordered_dict)
    throw RuntimeError(file.string() + " holds an OrderedDict (as torch.save(model.state_dict()) writes), which "
                       "LibTorch's unpickler cannot rebuild; it reads a plain dict of tensors, as transformers "
                       "writes .bin shards: " + kConvertHint);
  if (!value.isGenericDict())
    throw RuntimeError(file.string() + " holds a " + std::string(value.tagKind()) + ", not a dict of tensors: " +
                       kConvertHint);
  NamedTensors out;
  for (const auto& kv : value.toGenericDict()) {
    if (!kv.key().isString())
      throw RuntimeError(file.string() + " has a key of type " + std::string(kv.key().tagKind()) +
                         "; a state dict maps tensor names to tensors");
    const std::string& name = kv.key().toStringRef();
    if (!kv.value().isTensor())
      throw RuntimeError(file.string() + ": entry " + name + " is a " + std::string(kv.value().tagKind()) +
                         ", not a tensor");
    const at::Tensor& t = kv.value().toTensor();
    const auto extent = byte_extent(t);
    if (!extent || *extent > t.storage().nbytes())
      throw RuntimeError(file.string() + ": tensor " + truncate_for_message(name, 120) + " (offset " +
                         std::to_string(t.storage_offset()) + ", shape " + c10::str(t.sizes()) + ", strides " +
                         c10::str(t.strides()) + ") reaches past its storage record of " +
                         std::to_string(t.storage().nbytes()) + " bytes; the file is damaged or hand-made: re-save it");
    out.emplace_back(name, t);
  }
  return out;
}

}  // namespace longalign::model

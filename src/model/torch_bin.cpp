// .bin weights through torch::jit::readArchiveAndTensors: what torch::pickle_load runs, here over
// the file (records read as needed) rather than over a copy of the whole file in memory. The C++
// unpickler builds only types it knows (tensors and their storages, containers, numbers,
// strings) and refuses any other name, so unlike Python's torch.load nothing in the file runs.
#include "longalign/model/torch_bin.hpp"

#include <caffe2/serialize/inline_container.h>
#include <torch/csrc/jit/serialization/import_read.h>

#include <cstring>
#include <fstream>
#include <string_view>

#include "longalign/core/error.hpp"

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

}  // namespace

NamedTensors read_torch_bin(const fs::path& file) {
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
    // The unpickler turns collections.OrderedDict into None (it expects one only as a tensor's
    // unused backward hooks), so a state dict pickled as one fails at its first item: look at the
    // pickle's first global (torch.save writes protocol 2: PROTO 2, then GLOBAL "module\nname\n").
    const auto [pickle, size] = reader.getRecord("data.pkl");
    constexpr std::string_view kOrderedDict = "\x80\x02" "ccollections\nOrderedDict\n";
    ordered_dict = size >= kOrderedDict.size() &&
                   std::string_view(static_cast<const char*>(pickle.get()), kOrderedDict.size()) == kOrderedDict;
    if (!ordered_dict)
      value = torch::jit::readArchiveAndTensors("data", /*pickle_prefix=*/"", /*tensor_prefix=*/"",
                                                /*type_resolver=*/std::nullopt, /*obj_loader=*/std::nullopt,
                                                at::Device(at::kCPU), reader);
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
    out.emplace_back(name, kv.value().toTensor());
  }
  return out;
}

}  // namespace longalign::model

// PyTorch .bin weights (what torch.save writes, and transformers' save_pretrained with
// safe_serialization=False), read natively with LibTorch's own unpickler.
#pragma once
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "longalign/model/pickle_shape.hpp"
#include "longalign/model/safetensors.hpp"

namespace longalign::model {

// The tensors of one .bin file: a torch.save zip archive holding a dict of name -> tensor, as
// transformers writes each shard. RuntimeError naming the file for anything else: the pre-1.6
// non-zip format, a top-level OrderedDict (torch.save(model.state_dict()), which LibTorch's
// unpickler cannot rebuild), entries that are not tensors, or a damaged archive. Tensors are
// loaded into memory (CPU, as stored).
// Every storage is the zip record it names, and every tensor's offset, sizes and strides must
// fall inside it; a record larger than the file, a pickle nested deeper than kMaxPickleDepth or
// one that uses an opcode a state dict never needs is refused before LibTorch unpickles it.
NamedTensors read_torch_bin(const std::filesystem::path& file);


}  // namespace longalign::model

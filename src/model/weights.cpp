// Weight loading/saving and init. Loading copies into existing parameters so the model's
// device and dtype decide the result, whatever the file stores.
#include "longalign/model/weights.hpp"

#include <torch/torch.h>

#include "longalign/core/error.hpp"

namespace longalign::model {
namespace {
std::string shape_str(at::IntArrayRef s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}
}  // namespace

void init_weights(LlamaForCausalLMImpl& m, double std, uint64_t seed) {
  torch::NoGradGuard ng;
  auto gen = at::detail::createCPUGenerator(seed);
  for (auto& p : m.named_parameters()) {
    at::Tensor& t = p.value();
    if (t.dim() == 1) t.fill_(1.0);
    else t.copy_(at::normal(0.0, std, t.sizes(), gen, at::TensorOptions().dtype(at::kFloat)));
  }
}

void load_hf_weights(LlamaForCausalLMImpl& m, const std::filesystem::path& dir) {
  CheckpointTensors ckpt(dir);
  torch::NoGradGuard ng;
  for (auto& p : m.named_parameters()) {
    const std::string& name = p.key();
    if (!ckpt.contains(name))
      throw RuntimeError("checkpoint " + dir.string() + " lacks tensor " + name + " that the model config needs");
    at::Tensor src = ckpt.view(name);
    if (src.sizes() != p.value().sizes())
      throw RuntimeError("checkpoint tensor " + name + " has shape " + shape_str(src.sizes()) + " but the config gives " +
                         shape_str(p.value().sizes()) + "; check config.json against the weights");
    p.value().copy_(src);
  }
}

NamedTensors hf_state(LlamaForCausalLMImpl& m, at::ScalarType dtype) {
  NamedTensors out;
  for (auto& p : m.named_parameters())
    out.emplace_back(p.key(), p.value().detach().to(at::kCPU, dtype).contiguous());
  return out;
}

}  // namespace longalign::model

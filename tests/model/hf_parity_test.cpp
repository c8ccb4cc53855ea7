// Parity with HF transformers: our logits on a packed batch of several sequences equal HF's
// logits computed one sequence at a time (fp32, within 1e-4), for GQA/MQA, tied and untied
// heads, and linear and llama3 rope scaling. The models are random ones built by
// tests/model/hf_reference.py, offline.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <stdexcept>

#include "longalign/model/safetensors.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "test_util.hpp"

using namespace longalign;
namespace fs = std::filesystem;

namespace {

const fs::path& reference_dir() {
  static fixture::TempDir dir;
  static bool made = [] {
    std::string cmd = std::string(LONGALIGN_PYTHON) + " " LONGALIGN_SOURCE_DIR "/tests/model/hf_reference.py " +
                      dir.path.string() + " >/dev/null 2>&1";
    return std::system(cmd.c_str()) == 0;
  }();
  if (!made) throw std::runtime_error("could not run tests/model/hf_reference.py with " LONGALIGN_PYTHON "; run scripts/setup.sh");
  return dir.path;
}

void check_variant(const std::string& name) {
  fs::path dir = reference_dir() / name;
  auto cfg = model::load_hf_config(dir / "config.json");
  model::LlamaForCausalLM m(cfg);
  model::load_hf_weights(*m, dir);
  model::SafetensorsFile ref(dir / "reference.safetensors");
  at::Tensor ids = ref.view("input_ids").clone(), cu = ref.view("cu_seqlens").clone(), expect = ref.view("logits");
  std::vector<int64_t> pos;
  int64_t max_len = 0;
  for (int64_t b = 0; b + 1 < cu.size(0); ++b) {
    int64_t len = cu[b + 1].item<int>() - cu[b].item<int>();
    max_len = std::max(max_len, len);
    for (int64_t t = 0; t < len; ++t) pos.push_back(t);
  }
  model::PackedInput in{ids, torch::tensor(pos, torch::kLong), cu, max_len};
  torch::NoGradGuard ng;
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };
  at::Tensor logits = m->logits(m->hidden_states(in, attention));
  ASSERT_EQ(logits.sizes(), expect.sizes());
  double diff = (logits - expect).abs().max().item<double>();
  EXPECT_LT(diff, 1e-4) << name << ": max |ours - HF| = " << diff;
  EXPECT_GT(expect.abs().max().item<double>(), 0.1);  // the oracle is not trivially zero
}

}  // namespace

TEST(HfParity, GqaUntied) { check_variant("gqa_untied"); }
TEST(HfParity, TiedLinearRope) { check_variant("tied_linear"); }
TEST(HfParity, MqaLlama3RopeExplicitHeadDim) { check_variant("llama3_mqa"); }

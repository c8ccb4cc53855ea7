// LoRA parity with transformers + peft (tests/model/peft_reference.py builds the oracle offline):
// an adapter made by peft (random A, nonzero B, saved modules changed; also a regex-targeted
// rslora one) gives peft's logits here, unmerged (the training path) and merged; our merge
// equals peft's merge_and_unload() weight by weight; and an adapter we write loads into peft
// (PeftModel.from_pretrained) with our logits. The same for GLM, whose fused gate_up_proj
// carries one adapter, and for ChatGLM3's fused query_key_value and dense_h_to_4h (peft cannot
// run ChatGLM3 offline; its oracle is the adapter merged by hand into the fused tensors).
//
// Tolerances: both sides run fp32 with different summation orders. The HF parity test measured
// ~1e-6 of the logits' size for the same model shape (hf_parity_test.cpp); the adapter adds one
// product of inner length r <= 8 per projection, a smaller rounding than the base's. 1e-5 of the
// largest logit leaves ~10x room, while a wrong scaling, name or missing saved module errs by
// > 1e-2 (checked below: the adapter changes the logits by far more than the tolerance).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>

#include "longalign/model/lora.hpp"
#include "longalign/model/peft_adapter.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/varlen_attention.hpp"
#include "test_paths.hpp"
#include "test_util.hpp"

using namespace longalign;
namespace fs = std::filesystem;

namespace {

constexpr double kRelTol = 1e-5;

const fs::path& oracle() { return fixture::python_made_dir("model/peft_reference.py"); }

model::LlamaForCausalLM load_base(const std::string& base = "base") {
  auto cfg = model::load_hf_config(oracle() / base / "config.json");
  model::LlamaForCausalLM m(cfg);
  model::load_hf_weights(*m, oracle() / base);
  return m;
}

at::Tensor logits_of(model::LlamaForCausalLMImpl& m, const at::Tensor& ids, const at::Tensor& cu) {
  std::vector<int64_t> pos;
  int64_t max_len = 0;
  for (int64_t b = 0; b + 1 < cu.size(0); ++b) {
    const int64_t len = cu[b + 1].item<int>() - cu[b].item<int>();
    max_len = std::max(max_len, len);
    for (int64_t t = 0; t < len; ++t) pos.push_back(t);
  }
  model::PackedInput in{ids, torch::tensor(pos, torch::kLong), cu, max_len};
  torch::NoGradGuard ng;
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };
  return m.logits(m.hidden_states(in, attention));
}

double rel_diff(const at::Tensor& a, const at::Tensor& b) {
  return (a - b).abs().max().item<double>() / b.abs().max().item<double>();
}

void check_peft_adapter(const std::string& name, const std::string& base = "base") {
  const fs::path dir = oracle() / name;
  model::SafetensorsFile ref(dir / "reference.safetensors");
  const at::Tensor ids = ref.view("input_ids").clone(), cu = ref.view("cu_seqlens").clone(), expect = ref.view("logits");
  auto m = load_base(base);
  const at::Tensor plain = logits_of(*m, ids, cu);
  model::load_adapter(*m, dir);
  const at::Tensor ours = logits_of(*m, ids, cu);
  std::printf("%s: unmerged rel diff %.3g (adapter moves logits by %.3g)\n", name.c_str(), rel_diff(ours, expect),
              rel_diff(plain, expect));
  EXPECT_GT(rel_diff(plain, expect), 100 * kRelTol) << "the oracle adapter must matter";
  EXPECT_LT(rel_diff(ours, expect), kRelTol) << name << " unmerged";
  model::merge_lora(*m);
  EXPECT_FALSE(model::has_lora(*m));
  const at::Tensor merged = logits_of(*m, ids, cu);
  std::printf("%s: merged rel diff %.3g\n", name.c_str(), rel_diff(merged, expect));
  EXPECT_LT(rel_diff(merged, expect), kRelTol) << name << " merged";
}

}  // namespace

TEST(LoraParity, PeftAdapterAllProjectionsWithSavedModules) { check_peft_adapter("peft_adapter"); }
TEST(LoraParity, PeftAdapterRegexTargetsRslora) { check_peft_adapter("peft_rslora"); }
TEST(LoraParity, PeftAdapterOnGlmsFusedGateUp) { check_peft_adapter("peft_glm", "glm_base"); }
TEST(LoraParity, AdapterOnChatGlm3sFusedQueryKeyValue) { check_peft_adapter("peft_chatglm", "chatglm_base"); }

// Our merge against peft's merge_and_unload(), tensor by tensor: W + s B A rounds once here
// (fp64 sum) and a few times in peft (fp32 product, scale, add): ~1e-7 of the weights' size.
namespace {

void check_merge(const std::string& base, const std::string& adapter, const std::string& merged) {
  auto m = load_base(base);
  model::load_adapter(*m, oracle() / adapter);
  model::merge_lora(*m);
  model::SafetensorsFile peft(oracle() / merged / "model.safetensors");
  size_t compared = 0;
  for (const auto& [name, t] : model::hf_state(*m, torch::kFloat)) {
    ASSERT_TRUE(peft.contains(name)) << name;
    const at::Tensor theirs = peft.view(name);
    ASSERT_EQ(t.sizes(), theirs.sizes()) << name;
    EXPECT_LT(rel_diff(t, theirs), kRelTol) << name;
    ++compared;
  }
  EXPECT_EQ(compared, peft.names().size());
}

}  // namespace

TEST(LoraParity, MergeEqualsPeftMergeAndUnload) { check_merge("base", "peft_adapter", "peft_merged"); }
TEST(LoraParity, MergeEqualsPeftMergeAndUnloadOnGlm) { check_merge("glm_base", "peft_glm", "peft_glm_merged"); }

namespace {

// An adapter written here (B and the saved modules moved off their init, as training would),
// loaded by peft onto the same base: peft's logits equal ours.
void check_ours_in_peft(const std::string& base, const std::vector<std::string>& targets,
                        const std::vector<std::string>& saved) {
  auto m = load_base(base);
  model::LoraConfig c;
  c.rank = 4;
  c.alpha = 12;
  c.target_modules = targets;
  c.modules_to_save = saved;
  model::attach_lora(*m, c, 7, "test");
  {
    torch::NoGradGuard ng;
    auto gen = at::detail::createCPUGenerator(99);
    for (auto& p : m->named_parameters())
      if (p.value().requires_grad()) p.value().add_(at::normal(0.0, 0.05, p.value().sizes(), gen));
  }
  fixture::TempDir tmp;
  const fs::path adapter = tmp.path / "adapter";
  fs::create_directories(adapter);
  model::write_adapter_files(adapter, c, (oracle() / base).string(), model::adapter_state(*m, torch::kFloat));
  model::SafetensorsFile ref(oracle() / "peft_adapter" / "reference.safetensors");
  const at::Tensor ids = ref.view("input_ids").clone(), cu = ref.view("cu_seqlens").clone();
  model::write_safetensors(tmp.path / "ids.safetensors", {{"input_ids", ids}, {"cu_seqlens", cu}});
  const std::string cmd = fixture::python() + " " + fixture::source_dir() + "/tests/model/peft_reference.py check " +
                          (oracle() / base).string() + " " + adapter.string() + " " + (tmp.path / "ids.safetensors").string() +
                          " " + (tmp.path / "peft.safetensors").string() + " >" + (tmp.path / "log").string() + " 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "peft could not load our adapter; see " << cmd;
  model::SafetensorsFile theirs(tmp.path / "peft.safetensors");
  const at::Tensor ours = logits_of(*m, ids, cu);
  std::printf("our %s adapter in peft: rel diff %.3g\n", base.c_str(), rel_diff(ours, theirs.view("logits")));
  EXPECT_LT(rel_diff(ours, theirs.view("logits")), kRelTol);
  // The adapter we read back equals the one we wrote (names and values).
  auto back = load_base(base);
  model::load_adapter(*back, adapter);
  EXPECT_EQ(rel_diff(logits_of(*back, ids, cu), ours), 0.0);
}

}  // namespace

TEST(LoraParity, OurAdapterLoadsIntoPeftWithOurLogits) {
  check_ours_in_peft("base", {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
                     {"embed_tokens", "norm", "post_attention_layernorm", "lm_head"});
}

TEST(LoraParity, OurGlmAdapterLoadsIntoPeftWithOurLogits) {
  check_ours_in_peft("glm_base", {"all-linear"}, {"embed_tokens", "norm", "input_layernorm"});
}

// ChatGLM3: an adapter we write has exactly the tensors (names, shapes) of the oracle's, which
// carries peft's names for modeling_chatglm.py's modules, and reads back as written.
TEST(LoraParity, OurChatGlm3AdapterHasPeftsNames) {
  auto m = load_base("chatglm_base");
  const auto c = model::read_adapter_config(oracle() / "peft_chatglm");
  model::attach_lora(*m, c, 3, "test");
  const auto state = model::adapter_state(*m, torch::kFloat);
  model::SafetensorsFile ref(oracle() / "peft_chatglm" / "adapter_model.safetensors");
  EXPECT_EQ(state.size(), ref.names().size());
  for (const auto& [name, t] : state) {
    ASSERT_TRUE(ref.contains(name)) << name;
    EXPECT_EQ(t.sizes(), ref.view(name).sizes()) << name;
  }
}

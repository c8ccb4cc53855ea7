// KV-cached decoding. The cache is a stateful AttentionFn: the model calls attention once per
// layer in order, so the n-th call of a forward belongs to layer n % L. Prefill stores k/v in a
// buffer sized for prompt + max_new tokens; decode writes into it and attends over the prefix.
#include "longalign/eval/generator.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>

#include "longalign/core/error.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/core/rng.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/model/peft_adapter.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/ops/varlen_attention.hpp"

namespace fs = std::filesystem;

namespace longalign::eval {
namespace {

struct KvCache {
  std::vector<at::Tensor> k, v;  // [capacity, Hkv, D] per layer
  int64_t len = 0, capacity = 0, calls = 0;
};

// q [n, Hq, D] are the last n positions of a sequence whose keys are K/V [S, Hkv, D].
at::Tensor attend_to_cache(const at::Tensor& q, const at::Tensor& K, const at::Tensor& V, double scale) {
  const int64_t n = q.size(0), hq = q.size(1), d = q.size(2), hkv = K.size(1), g = hq / hkv, s = K.size(0);
  at::Tensor qg = q.view({n, hkv, g, d}).permute({1, 2, 0, 3}).reshape({hkv, g * n, d}).to(torch::kFloat);
  at::Tensor scores = torch::bmm(qg, K.permute({1, 2, 0}).to(torch::kFloat)) * scale;  // [Hkv, g*n, S]
  if (n > 1) {
    at::Tensor qpos = (torch::arange(n, torch::TensorOptions().device(q.device())) + (s - n)).repeat({g}).view({1, g * n, 1});
    at::Tensor kpos = torch::arange(s, torch::TensorOptions().device(q.device())).view({1, 1, s});
    scores = scores.masked_fill(kpos > qpos, -std::numeric_limits<float>::infinity());
  }
  at::Tensor o = torch::bmm(torch::softmax(scores, -1), V.permute({1, 0, 2}).to(torch::kFloat));  // [Hkv, g*n, D]
  return o.view({hkv, g, n, d}).permute({2, 0, 1, 3}).reshape({n, hq, d}).to(q.scalar_type());
}

model::AttentionFn cached_attention(std::shared_ptr<KvCache> c, int64_t layers) {
  return [c, layers](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& cu,
                     int64_t max_len, double scale) {
    const size_t layer = size_t(c->calls++ % layers);
    const int64_t n = k.size(0);
    if (c->len + n > c->capacity) throw RuntimeError("KV cache overflow");
    if (!c->k[layer].defined()) {
      c->k[layer] = torch::empty({c->capacity, k.size(1), k.size(2)}, k.options());
      c->v[layer] = torch::empty_like(c->k[layer]);
    }
    c->k[layer].narrow(0, c->len, n).copy_(k);
    c->v[layer].narrow(0, c->len, n).copy_(v);
    if (c->len == 0) return ops::varlen_attention(q, k, v, cu, max_len, scale);  // prefill
    return attend_to_cache(q, c->k[layer].narrow(0, 0, c->len + n), c->v[layer].narrow(0, 0, c->len + n), scale);
  };
}

int32_t pick_token(const at::Tensor& logits, const SamplingOptions& o, Rng& rng) {
  if (o.temperature <= 0) return static_cast<int32_t>(logits.argmax().item<int64_t>());
  at::Tensor p = torch::softmax(logits.to(torch::kDouble) / o.temperature, -1).cpu();
  auto [sorted, order] = p.sort(/*dim=*/-1, /*descending=*/true);
  const double* ps = sorted.data_ptr<double>();
  const int64_t* ids = order.data_ptr<int64_t>();
  int64_t keep = 0;
  double mass = 0;
  while (keep < sorted.size(0) && (keep == 0 || mass < o.top_p)) mass += ps[keep++];
  double r = rng.uniform() * mass, acc = 0;
  for (int64_t i = 0; i < keep; ++i)
    if ((acc += ps[i]) >= r) return static_cast<int32_t>(ids[i]);
  return static_cast<int32_t>(ids[keep - 1]);
}

}  // namespace

std::vector<int32_t> middle_truncate(const std::vector<int32_t>& ids, size_t max_tokens) {
  if (ids.size() <= max_tokens) return ids;
  const size_t head = max_tokens / 2, tail = max_tokens - head;
  std::vector<int32_t> out(ids.begin(), ids.begin() + head);
  out.insert(out.end(), ids.end() - tail, ids.end());
  return out;
}

std::unique_ptr<Generator> Generator::load(const fs::path& dir, const std::string& device, const fs::path& tokenizer,
                                           const fs::path& adapter) {
  // A missing config.json, or one that is a directory or FIFO, is the user's to fix (exit 2);
  // one that resolves outside the directory is the directory's fault.
  check_input_file(dir / "config.json", "model config");
  auto cfg = model::load_hf_config(contained_file(dir, "config.json", "model directory " + dir.string(), kMaxConfigFileBytes));
  if (!adapter.empty()) check_input_dir(adapter, "--adapter");
  fs::path tok = tokenizer.empty() ? data::tokenizer_in(dir) : tokenizer;
  if (tokenizer.empty() && !adapter.empty() && fs::exists(data::tokenizer_in(adapter))) tok = data::tokenizer_in(adapter);
  if (!fs::exists(tok)) throw UsageError("no tokenizer: " + tok.string() + " does not exist; pass --tokenizer");
  auto m = std::make_shared<model::LlamaForCausalLMImpl>(cfg);
  model::load_hf_weights(*m, dir);  // checks every tensor's name and shape before copying any
  if (!adapter.empty()) {
    // Merged once (in fp64, rounded once) so that decoding runs the plain model at full speed.
    model::load_adapter(*m, adapter);
    model::merge_lora(*m);
  }
  const bool cuda = device == "cuda" || (device == "auto" && torch::cuda::is_available());
  if (device == "cuda" && !torch::cuda::is_available()) throw UsageError("--device cuda: no GPU is available");
  m->to(cuda ? torch::kCUDA : torch::kCPU, cuda ? torch::kBFloat16 : torch::kFloat);
  m->eval();
  auto g = std::make_unique<Generator>(std::move(m), data::load_tokenizer(tok));
  if (auto gc = contained_file_if_present(dir, "generation_config.json", "model directory " + dir.string(), kMaxConfigFileBytes)) {
    const auto ids = generation_stop_ids(*gc);
    for (int32_t id : ids)
      if (id >= cfg.vocab_size)
        throw RuntimeError(gc->string() + ": eos_token_id " + std::to_string(id) + " is outside the model's vocab_size " +
                           std::to_string(cfg.vocab_size) + "; fix the id (or the file belongs to another model)");
    g->add_stop_ids(ids);
  }
  return g;
}

// Chat models end a turn with their template's closing token (Llama-3 <|eot_id|>, Qwen
// <|im_end|>), which is not the vocabulary's EOS; HF lists them as generation_config.json's
// eos_token_id (a number or a list).
std::vector<int32_t> generation_stop_ids(const fs::path& generation_config) {
  std::vector<int32_t> ids;
  const std::string where = generation_config.string();
  if (!fs::exists(generation_config)) return ids;
  const std::string text = read_regular_file(generation_config, "generation config", kMaxConfigFileBytes);
  check_json_depth(text, where);
  auto j = nlohmann::json::parse(text, nullptr, false);
  // transformers refuses a generation_config.json it cannot parse; ignoring it here would let
  // generation run past the chat model's end-of-turn token.
  if (j.is_discarded()) throw RuntimeError(where + " is not valid JSON; fix or delete it");
  if (!j.is_object()) throw RuntimeError(where + " is not a JSON object; fix or delete it");
  if (!j.contains("eos_token_id") || j["eos_token_id"].is_null()) return ids;
  const auto& e = j["eos_token_id"];
  for (const auto& v : e.is_array() ? e : nlohmann::json::array({e})) {
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > INT32_MAX)
      throw RuntimeError(where + ": eos_token_id must be a non-negative token id or a list of them, not " +
                         truncate_for_message(v.is_structured() ? std::string(v.type_name()) : v.dump(), 40));
    ids.push_back(v.get<int32_t>());
  }
  return ids;
}

Generator::Generator(std::shared_ptr<model::LlamaForCausalLMImpl> m, std::unique_ptr<data::Tokenizer> tok)
    : model_(std::move(m)), tok_(std::move(tok)), stop_ids_{tok_->eos_id()} {}

void Generator::add_stop_ids(const std::vector<int32_t>& ids) { stop_ids_.insert(stop_ids_.end(), ids.begin(), ids.end()); }

bool Generator::is_stop(int32_t id) const { return std::find(stop_ids_.begin(), stop_ids_.end(), id) != stop_ids_.end(); }
Generator::~Generator() = default;

int64_t Generator::context_length() const { return model_->config().max_position_embeddings; }

std::vector<int32_t> Generator::prompt_ids(const std::string& user_text, data::Template t, int64_t max_prompt) const {
  auto encode_prompt = [&](const std::string& user) {
    auto segs = data::render_template(data::Conversation{"", {{user, ""}}}, t);
    segs.resize(segs.size() - 2);  // drop the (empty) answer and its EOS: the model writes those
    return data::encode_segments(segs, *tok_).ids;
  };
  const int64_t frame = int64_t(encode_prompt("").size());
  const std::vector<int32_t> user = tok_->encode(user_text);
  if (frame + int64_t(user.size()) <= max_prompt) return encode_prompt(user_text);
  return encode_prompt(tok_->decode(middle_truncate(user, size_t(std::max<int64_t>(1, max_prompt - frame)))));
}

std::vector<int32_t> Generator::generate(const std::vector<int32_t>& prompt, const SamplingOptions& o,
                                         const std::function<void(int32_t)>& on_token) {
  torch::NoGradGuard ng;
  if (prompt.empty()) throw UsageError("empty prompt");
  const auto dev = model_->parameters().front().device();
  const int64_t layers = model_->config().num_hidden_layers;
  auto cache = std::make_shared<KvCache>();
  cache->k.resize(layers);
  cache->v.resize(layers);
  cache->capacity = int64_t(prompt.size()) + o.max_new_tokens;
  auto attention = cached_attention(cache, layers);
  Rng rng(o.seed);
  std::vector<int32_t> out;
  at::Tensor ids = torch::tensor(std::vector<int64_t>(prompt.begin(), prompt.end()), torch::kLong).to(dev);
  at::Tensor pos = torch::arange(int64_t(prompt.size()), torch::kLong).to(dev);
  int64_t n = int64_t(prompt.size());
  timing_ = {};
  for (int64_t step = 0; step < o.max_new_tokens; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    model::PackedInput in{ids, pos, torch::tensor({0, int32_t(n)}, torch::kInt).to(dev), n};
    at::Tensor h = model_->hidden_states(in, attention);
    cache->len += n;
    int32_t next = pick_token(model_->logits(h.narrow(0, h.size(0) - 1, 1))[0], o, rng);  // .item() syncs
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (step == 0) timing_.prefill_tokens = n, timing_.prefill_s = dt;
    else timing_.decode_tokens += 1, timing_.decode_s += dt;
    if (is_stop(next)) break;
    out.push_back(next);
    if (on_token) on_token(next);
    ids = torch::tensor({int64_t(next)}, torch::kLong).to(dev);
    pos = torch::tensor({cache->len}, torch::kLong).to(dev);
    n = 1;
  }
  return out;
}

std::vector<int32_t> Generator::generate_uncached_greedy(const std::vector<int32_t>& prompt, int64_t max_new) {
  torch::NoGradGuard ng;
  const auto dev = model_->parameters().front().device();
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };
  std::vector<int64_t> seq(prompt.begin(), prompt.end());
  std::vector<int32_t> out;
  for (int64_t step = 0; step < max_new; ++step) {
    const int64_t n = int64_t(seq.size());
    model::PackedInput in{torch::tensor(seq, torch::kLong).to(dev), torch::arange(n, torch::kLong).to(dev),
                          torch::tensor({0, int32_t(n)}, torch::kInt).to(dev), n};
    at::Tensor h = model_->hidden_states(in, attention);
    int32_t next = static_cast<int32_t>(model_->logits(h.narrow(0, n - 1, 1))[0].argmax().item<int64_t>());
    if (is_stop(next)) break;
    out.push_back(next);
    seq.push_back(next);
  }
  return out;
}

}  // namespace longalign::eval

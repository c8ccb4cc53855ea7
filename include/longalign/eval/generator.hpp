// Text generation with a KV cache: the prompt is prefilled through the varlen attention op,
// then each new token attends to the cached keys and values (the prefix is never re-run).
// Greedy or temperature/top-p sampling with a seed, stopping at EOS.
#pragma once
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "longalign/data/chat/chat_template.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"

namespace longalign::model {
class LlamaForCausalLMImpl;
}

namespace longalign::eval {

struct SamplingOptions {
  int64_t max_new_tokens = 256;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;
  uint64_t seed = 0;
};

// Keeps the first and last halves of `ids` when longer than `max_tokens` (LongBench-Chat's rule).
std::vector<int32_t> middle_truncate(const std::vector<int32_t>& ids, size_t max_tokens);

class Generator {
 public:
  // Loads config.json + safetensors (+ tokenizer.model unless `tokenizer` is given) from `dir`.
  // `adapter`: a PEFT LoRA adapter directory merged into those weights (its tokenizer, when it
  // carries one, is the one used).
  static std::unique_ptr<Generator> load(const std::filesystem::path& dir, const std::string& device = "auto",
                                         const std::filesystem::path& tokenizer = {},
                                         const std::filesystem::path& adapter = {});
  Generator(std::shared_ptr<model::LlamaForCausalLMImpl> m, std::unique_ptr<data::Tokenizer> tok);
  void add_stop_ids(const std::vector<int32_t>& ids);  // ends generation as EOS does
  ~Generator();

  const data::Tokenizer& tokenizer() const { return *tok_; }

  // Timing of the last generate() call (device-synchronized), for throughput reports.
  struct Timing {
    int64_t prefill_tokens = 0, decode_tokens = 0;
    double prefill_s = 0, decode_s = 0;
  };
  const Timing& last_timing() const { return timing_; }
  int64_t context_length() const;

  // Chat-formatted prompt ids; the user text is middle-truncated so that prompt + max_new fit.
  std::vector<int32_t> prompt_ids(const std::string& user_text, data::Template t, int64_t max_prompt_tokens) const;

  // New tokens (EOS excluded); `on_token` sees each as it is produced.
  std::vector<int32_t> generate(const std::vector<int32_t>& prompt, const SamplingOptions& opts,
                                const std::function<void(int32_t)>& on_token = {});
  // Greedy decoding that re-runs the whole sequence for every token: the test oracle.
  std::vector<int32_t> generate_uncached_greedy(const std::vector<int32_t>& prompt, int64_t max_new_tokens);

 private:
  std::shared_ptr<model::LlamaForCausalLMImpl> model_;
  std::unique_ptr<data::Tokenizer> tok_;
  std::vector<int32_t> stop_ids_;  // EOS and generation_config.json's eos_token_id
  bool is_stop(int32_t id) const;
  Timing timing_;
};

// generation_config.json's eos_token_id as a list (empty when the file or key is absent).
std::vector<int32_t> generation_stop_ids(const std::filesystem::path& generation_config);

}  // namespace longalign::eval

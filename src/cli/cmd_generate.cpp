// `longalign generate`: one prompt streamed to stdout, or a JSONL batch to a JSONL file.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/eval/generator.hpp"
#include "options.hpp"

namespace longalign::cli {

namespace {

template <typename Flags>
void check_paths(const Flags& f) {
  check_input_dir(f.model, "--model");
  if (!f.tokenizer.empty()) check_input_file(f.tokenizer, "--tokenizer");
  if (!f.prompt_file.empty()) check_input_file(f.prompt_file, "--prompt-file");
  if (f.input.empty()) return;
  check_input_file(f.input, "--input");
  const std::filesystem::path m = f.model;
  check_output_path(f.output, OutputKind::stream, "--output",
                    {f.input, f.tokenizer, m / "config.json", m / "tokenizer.model", m / "tokenizer.json",
                     m / "model.safetensors", m / "pytorch_model.bin"});
}

using Prompts = std::vector<std::pair<nlohmann::json, std::string>>;  // each line and its prompt

// Every line of a --input JSONL, checked before the model spends time on any of them: a bad
// line is reported as FILE:LINE with what is wrong.
Prompts read_prompts(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw UsageError("--input " + path + " cannot be read");
  Prompts prompts;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string at = path + ":" + std::to_string(n) + ": ";
    check_json_depth(line, path + ":" + std::to_string(n));  // its fields are echoed into the output
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded()) throw RuntimeError(at + "not valid JSON");
    if (!j.is_object()) throw RuntimeError(at + "expected a JSON object with a \"prompt\" string, got " + j.type_name());
    const char* key = j.contains("prompt") ? "prompt" : "query";
    if (!j.contains(key)) throw RuntimeError(at + "the object has no \"prompt\" (or \"query\")");
    if (!j[key].is_string()) throw RuntimeError(at + "\"" + key + "\" must be a string, got " + j[key].type_name());
    std::string prompt = j[key].get<std::string>();
    prompts.emplace_back(std::move(j), std::move(prompt));
  }
  if (prompts.empty()) throw RuntimeError("--input " + path + " holds no prompt");
  return prompts;
}

}  // namespace

void add_generate(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("generate", "Generate text with a HF-format Llama model (KV-cached decoding)");
  struct Flags {
    std::string model, adapter, prompt, prompt_file, input, output, tmpl = "llama2", tokenizer, device = "auto";
    int64_t max_context = 0;
    bool timing = false;
    eval::SamplingOptions s;
  };
  auto f = std::make_shared<Flags>();
  f->s.max_new_tokens = 256;
  cmd->add_option("-m,--model", f->model, "Model directory (config.json, safetensors, tokenizer.model or tokenizer.json)")->required();
  cmd->add_option("--adapter", f->adapter, "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), merged into --model's weights");
  auto* p1 = cmd->add_option("-p,--prompt", f->prompt, "Prompt text (streams the answer to stdout)");
  auto* p2 = cmd->add_option("--prompt-file", f->prompt_file, "Read the prompt from a file");
  auto* p3 = cmd->add_option("-i,--input", f->input, "JSONL of {\"prompt\": ...} (also \"query\"); needs --output");
  p1->excludes(p2)->excludes(p3);
  p2->excludes(p3);
  cmd->add_option("-o,--output", f->output, "JSONL output for --input: the input fields plus \"response\"");
  cmd->add_option("--template", f->tmpl, "Chat template: llama2, chatglm3, chatml, raw")->capture_default_str();
  cmd->add_option("-t,--tokenizer", f->tokenizer, "tokenizer.json or sentencepiece .model "
      "(default: MODEL/tokenizer.model, else MODEL/tokenizer.json)");
  cmd->add_option("--max-new-tokens", f->s.max_new_tokens, "Tokens to generate at most")
      ->capture_default_str()
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--temperature", f->s.temperature, "0 = greedy")->capture_default_str()->check(real_range(0, 100));
  cmd->add_option("--top-p", f->s.top_p, "Nucleus sampling mass")->capture_default_str()->check(real_range(0, 1, true));
  cmd->add_option("--seed", f->s.seed, "Sampling seed")->capture_default_str()->check(any_seed());
  cmd->add_option("--max-context", f->max_context, "Context budget (default: the model's); longer prompts are cut in the middle")
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--device", f->device, "auto, cpu or cuda")->capture_default_str()->check(device_name());
  cmd->add_flag("--timing", f->timing, "Report prefill and decode tokens/s on stderr");
  cmd->footer("Examples:\n  longalign generate -m runs/demo/train/checkpoints/step-00000066 -p \"What is 2 + 3?\"\n"
              "  longalign generate -m MODEL -i prompts.jsonl -o answers.jsonl --max-new-tokens 512");
  cmd->callback([&action, f] {
    action = [f] {
      if (f->prompt.empty() && f->prompt_file.empty() && f->input.empty())
        throw UsageError("generate needs --prompt, --prompt-file or --input");
      if (!f->input.empty() && f->output.empty()) throw UsageError("--input needs --output");
      check_paths(*f);
      auto tmpl = data::parse_template(f->tmpl);
      const auto prompts = f->input.empty() ? Prompts{} : read_prompts(f->input);
      auto gen = eval::Generator::load(f->model, f->device, f->tokenizer, f->adapter);
      const int64_t ctx = f->max_context > 0 ? f->max_context : gen->context_length();
      const int64_t budget = ctx - f->s.max_new_tokens;
      if (budget <= 0)
        throw UsageError("--max-new-tokens " + std::to_string(f->s.max_new_tokens) +
                         " leaves no room for the prompt in a context of " + std::to_string(ctx));
      if (f->input.empty()) {
        std::string prompt = f->prompt;
        if (!f->prompt_file.empty()) {
          auto t = read_file(f->prompt_file);
          if (!t) throw UsageError("--prompt-file " + f->prompt_file + " cannot be read");
          prompt = *t;
        }
        std::vector<int32_t> so_far;
        std::string printed;
        gen->generate(gen->prompt_ids(prompt, tmpl, budget), f->s, [&](int32_t id) {
          so_far.push_back(id);  // decode the whole answer so far: pieces join with their spaces
          std::string text = gen->tokenizer().decode(so_far);
          std::fputs(text.substr(std::min(printed.size(), text.size())).c_str(), stdout);
          std::fflush(stdout);
          printed = text;
        });
        std::fputc('\n', stdout);
        if (f->timing) {
          const auto& t = gen->last_timing();
          std::fprintf(stderr, "prefill %lld tokens in %.3f s (%.0f tokens/s); decode %lld tokens in %.3f s (%.1f tokens/s)\n",
                       (long long)t.prefill_tokens, t.prefill_s, t.prefill_tokens / std::max(t.prefill_s, 1e-9),
                       (long long)t.decode_tokens, t.decode_s, t.decode_tokens / std::max(t.decode_s, 1e-9));
        }
        return 0;
      }
      std::string out;
      for (auto [j, prompt] : prompts) {
        j["response"] = gen->tokenizer().decode(gen->generate(gen->prompt_ids(prompt, tmpl, budget), f->s));
        out += j.dump() + "\n";
      }
      write_file_atomic(f->output, out);
      return 0;
    };
  });
}

}  // namespace longalign::cli

// `longalign eval loss`: per-sequence loss and perplexity of a model on JSONL.
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/core/read_file.hpp"
#include "longalign/eval/generator.hpp"
#include "longalign/eval/longbench_chat.hpp"
#include "longalign/eval/loss_eval.hpp"
#include "longalign/eval/needle.hpp"
#include "options.hpp"

namespace longalign::cli {
namespace {
// A model directory as a title names it: a checkpoint (step-N) with its run's name.
std::string model_display_name(const std::filesystem::path& dir) {
  const auto p = std::filesystem::path(dir).lexically_normal();
  const std::string leaf = (p.has_filename() ? p : p.parent_path()).filename().string();
  if (leaf.rfind("step-", 0) == 0) {
    const auto run = (p.has_filename() ? p : p.parent_path()).parent_path().parent_path().filename().string();
    if (!run.empty()) return run + " " + leaf;
  }
  return leaf;
}
}  // namespace


namespace {

// The model directory and the tokenizer every eval command reads, before any loading.
void check_model_paths(const std::filesystem::path& model, const std::filesystem::path& tokenizer) {
  check_input_dir(model, "--model");
  if (!tokenizer.empty()) check_input_file(tokenizer, "--tokenizer");
}

void add_needle(CLI::App& eval, Action& action) {
  auto* cmd = eval.add_subcommand("needle", "Needle-in-a-haystack over context lengths x depths; JSON + labelled heatmap (PNG, SVG)");
  struct Flags {
    std::string model, adapter, tokenizer, tmpl = "llama2", haystack, output = "needle", device = "auto", style = "passkey";
    std::string needle = eval::kSanFranciscoNeedle, question = eval::kSanFranciscoQuestion,
                expected = eval::kSanFranciscoAnswer, judge_url, judge_model = "gpt-4", key_env = "OPENAI_API_KEY";
    std::vector<int64_t> lengths;
    int n_lengths = 10, n_depths = 10;
    int64_t max_length = 0, min_length = 1000;
    eval::JudgeOptions judge;
    bool allow_unscored = false;
  };
  auto f = std::make_shared<Flags>();
  cmd->add_option("-m,--model", f->model, "Model directory")->required();
  cmd->add_option("--adapter", f->adapter, "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), merged into --model's weights");
  cmd->add_option("-t,--tokenizer", f->tokenizer, "tokenizer.json or sentencepiece .model "
      "(default: MODEL/tokenizer.model, else MODEL/tokenizer.json)");
  cmd->add_flag("--allow-unscored", f->allow_unscored, "Exit 0 even when the judge scored some cells not at all");
  cmd->add_option("--style", f->style,
                  "passkey (the synth passkey, scored by the key) or essay (the paper's test: a needle sentence in "
                  "an essay, scored 1-10 by --judge-url or by exact match)")
      ->capture_default_str()
      ->check(one_of({"passkey", "essay"}));
  cmd->add_option("--haystack", f->haystack, "Filler text file, e.g. essays (default: built-in synth filler)");
  cmd->add_option("--needle", f->needle, "essay: the needle sentence")->capture_default_str();
  cmd->add_option("--question", f->question, "essay: the question asked after the text")->capture_default_str();
  cmd->add_option("--needle-answer", f->expected, "essay without a judge: the text a correct answer contains")
      ->capture_default_str();
  cmd->add_option("--judge-url", f->judge_url, "essay: OpenAI-compatible chat-completions URL of a 1-10 judge");
  cmd->add_option("--judge-model", f->judge_model, "Judge model name")->capture_default_str();
  cmd->add_option("--judge-key-env", f->key_env, "Environment variable holding the judge's API key")->capture_default_str();
  cmd->add_option("--lengths", f->lengths, "Context lengths in tokens (default: --num-lengths evenly up to the context)")
      ->delimiter(',')
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--num-lengths", f->n_lengths, "Number of lengths")->capture_default_str()->check(int_range(1, 1000));
  cmd->add_option("--min-length", f->min_length, "essay: shortest context of the default lengths")
      ->capture_default_str()
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--num-depths", f->n_depths, "Number of depths (passkey: 0 to 100%; essay: 10% to 90%)")
      ->capture_default_str()
      ->check(int_range(1, 1000));
  cmd->add_option("--max-length", f->max_length, "Longest context (default: the model's)")->check(int_range(1, kMaxTokens));
  cmd->add_option("--template", f->tmpl, "Chat template")->capture_default_str();
  cmd->add_option("-o,--output", f->output, "Output directory (results.json, heatmap.png, heatmap.svg)")->capture_default_str();
  cmd->add_option("--device", f->device, "auto, cpu or cuda")->capture_default_str()->check(device_name());
  cmd->callback([&action, f] {
    action = [f] {
      check_model_paths(f->model, f->tokenizer);
      if (!f->haystack.empty()) check_input_file(f->haystack, "--haystack");
      check_output_path(f->output, OutputKind::dir, "--output", {f->haystack});
      const bool essay = f->style == "essay";
      auto gen = eval::Generator::load(f->model, f->device, f->tokenizer, f->adapter);
      eval::NeedleOptions o;
      if (essay) o.max_new_tokens = 64;  // room for a sentence; set before the lengths use it
      const int64_t max_len = f->max_length > 0 ? f->max_length : gen->context_length() - o.max_new_tokens;
      o.lengths = !f->lengths.empty() ? f->lengths
                  : essay            ? eval::default_lengths(max_len, f->n_lengths, std::min(f->min_length, max_len))
                                     : eval::default_lengths(max_len, f->n_lengths);
      o.depths = essay ? eval::default_depths(f->n_depths, 0.1, 0.9) : eval::default_depths(f->n_depths);
      // A haystack longer than the model's context is cut down to fit, and its cell would be
      // reported as if that length had been tested.
      for (int64_t len : o.lengths)
        if (len > gen->context_length())
          throw UsageError("--lengths " + std::to_string(len) + " exceeds the model's context of " +
                           std::to_string(gen->context_length()) + " tokens (max_position_embeddings in " + f->model +
                           "/config.json); give lengths up to it");
      o.chat_template = data::parse_template(f->tmpl);
      o.haystack = f->haystack;
      o.output_dir = f->output;
      o.model_name = model_display_name(f->model);
      if (essay) {
        o.needle = f->needle;
        o.question = f->question;
        o.expected = f->expected;
        if (!f->judge_url.empty()) {
          o.judge = f->judge;
          o.judge->chat.url = f->judge_url;
          o.judge->chat.model = f->judge_model;
          if (const char* k = std::getenv(f->key_env.c_str())) o.judge->chat.api_key = k;
        }
      }
      auto r = eval::run_needle(*gen, o);
      if (r.judged)
        std::printf("needle mean judge score %.2f (1-10) over %zu lengths x %zu depths, %zu unscored; results in "
                    "%s/results.json and heatmap.png/.svg\n",
                    r.mean, o.lengths.size(), o.depths.size(), r.unscored, f->output.c_str());
      if (r.judged && r.unscored > 0 && !f->allow_unscored) {
        // A mean over the scored cells alone is not the result asked for (a judge that is down
        // would leave none): say so, with the files kept, instead of exiting 0.
        std::fprintf(stderr, "error: %zu of %zu cells are unscored (the judge gave no score; see the warnings above and "
                             "%s/results.json); re-run when the judge answers, or pass --allow-unscored to accept the partial mean\n",
                     r.unscored, o.lengths.size() * o.depths.size(), f->output.c_str());
        return 1;
      }
      else
        std::printf("needle accuracy %.1f%% over %zu lengths x %zu depths; results in %s/results.json and heatmap.png/.svg\n",
                    r.mean * 100, o.lengths.size(), o.depths.size(), f->output.c_str());
      return 0;
    };
  });
}

void add_longbench_chat(CLI::App& eval, Action& action) {
  auto* cmd = eval.add_subcommand("longbench-chat", "LongBench-Chat: generate, have an LLM judge score, report the mean");
  struct Flags {
    std::string model, adapter, tokenizer, data, output = "longbench_chat", tmpl = "llama2", key_env = "OPENAI_API_KEY",
                                        judge_prompt, device = "auto";
    bool allow_unscored = false;
    eval::LongBenchChatOptions o;
  };
  auto f = std::make_shared<Flags>();
  f->o.judge.chat.model = "gpt-4";
  f->o.judge.score_retries = 4;       // the benchmark asks up to 5 times for a parsable score
  f->o.judge.chat.max_tokens = 1024;  // room for the analysis before the [[score]]
  cmd->add_option("-m,--model", f->model, "Model directory")->required();
  cmd->add_option("--adapter", f->adapter, "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), merged into --model's weights");
  cmd->add_option("-t,--tokenizer", f->tokenizer, "tokenizer.json or sentencepiece .model "
      "(default: MODEL/tokenizer.model, else MODEL/tokenizer.json)");
  cmd->add_option("--data", f->data, "test cases: the benchmark's test_cases.json, or JSONL (idx, prompt or query, answer, optional few_shots)")->required();
  cmd->add_option("--judge-url", f->o.judge.chat.url, "OpenAI-compatible chat-completions URL")->required();
  cmd->add_option("--judge-model", f->o.judge.chat.model, "Judge model name")->capture_default_str();
  cmd->add_option("--judge-key-env", f->key_env, "Environment variable holding the API key")->capture_default_str();
  cmd->add_option("--judge-prompt", f->judge_prompt,
                  "Judge prompt template file: {question} {reference} {examples} {prediction}, or the benchmark's "
                  "prompt_fs.txt with positional {}");
  cmd->add_option("--few-shots", f->o.few_shots,
                  "The benchmark's few_shots.json (scored example answers per idx): judges by its few-shot protocol");
  cmd->add_option("--judge-timeout", f->o.judge.chat.timeout_s, "Seconds a judge request may take")
      ->capture_default_str()
      ->check(real_range(0, 86400, true));
  cmd->add_option("--retries", f->o.judge.chat.max_retries, "HTTP retries with exponential backoff")
      ->capture_default_str()
      ->check(int_range(0, 100));
  cmd->add_option("--max-reply-bytes", f->o.judge.chat.max_reply_bytes, "Largest judge reply accepted (bytes)")
      ->capture_default_str()
      ->check(CLI::Range(uint64_t{1024}, uint64_t{1} << 34));
  cmd->add_option("--backoff-ms", f->o.judge.chat.backoff_ms, "First retry wait")->capture_default_str()->check(int_range(0, 120000));
  cmd->add_option("--max-length", f->o.max_length, "Prompt + answer budget (middle truncation)")
      ->capture_default_str()
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--max-new-tokens", f->o.max_new_tokens, "Answer length")->capture_default_str()->check(int_range(1, kMaxTokens));
  cmd->add_option("--template", f->tmpl, "Chat template")->capture_default_str();
  cmd->add_option("-o,--output", f->output, "Output directory (results.jsonl, report.json); re-runs resume")
      ->capture_default_str();
  cmd->add_option("--device", f->device, "auto, cpu or cuda")->capture_default_str()->check(device_name());
  cmd->add_flag("--allow-unscored", f->allow_unscored, "Exit 0 even when some items got no judge score");
  cmd->callback([&action, f] {
    action = [f] {
      if (const char* k = std::getenv(f->key_env.c_str())) f->o.judge.chat.api_key = k;
      check_model_paths(f->model, f->tokenizer);
      check_input_file(f->data, "--data");
      if (!f->o.few_shots.empty()) check_input_file(f->o.few_shots, "--few-shots");
      if (!f->judge_prompt.empty()) check_input_file(f->judge_prompt, "--judge-prompt");
      check_output_path(f->output, OutputKind::dir, "--output", {f->data, f->o.few_shots, f->judge_prompt});
      if (f->o.max_new_tokens >= f->o.max_length)
        throw UsageError("--max-new-tokens " + std::to_string(f->o.max_new_tokens) + " leaves no room for the prompt in --max-length " +
                         std::to_string(f->o.max_length));
      if (!f->judge_prompt.empty()) {
        auto t = read_file(f->judge_prompt);
        if (!t) throw UsageError("--judge-prompt " + f->judge_prompt + " cannot be read");
        f->o.judge_prompt = *t;
        // Without the prediction the judge scores a prompt that never shows it the answer.
        if (t->find("{prediction}") == std::string::npos && t->find("{}") == std::string::npos)
          throw UsageError("--judge-prompt " + f->judge_prompt + " has no {prediction} placeholder (nor positional {} "
                           "ones), so the judge would never see the model's answer; add {prediction} where it goes");
      }
      f->o.data = f->data;
      f->o.output_dir = f->output;
      f->o.chat_template = data::parse_template(f->tmpl);
      auto gen = eval::Generator::load(f->model, f->device, f->tokenizer, f->adapter);
      auto r = eval::run_longbench_chat(*gen, f->o);
      std::printf("LongBench-Chat score %.1f (x10; mean %.2f) over %zu of %zu items (%zu unscored; %zu judged with "
                  "the few-shot protocol); details in %s\n",
                  r.mean * 10, r.mean, r.scored, r.items, r.items - r.scored, r.fewshot_items, f->output.c_str());
      // A mean over fewer items than asked (a judge that was down) is not the benchmark's score.
      if ((r.scored < r.items || r.items == 0) && !f->allow_unscored) {
        std::fprintf(stderr, "error: %zu of %zu items are unscored (see the warnings above and %s/results.jsonl); re-run "
                             "to judge them (finished answers are kept), or pass --allow-unscored to accept a partial score\n",
                     r.items - r.scored, r.items, f->output.c_str());
        return 1;
      }
      return 0;
    };
  });
}

}  // namespace

void add_eval(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model");
  cmd->require_subcommand(1);
  auto* loss = cmd->add_subcommand("loss", "Per-sequence mean target loss and perplexity on JSONL");
  auto o = std::make_shared<eval::LossEvalOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto tmpl = std::make_shared<std::string>();
  auto tok = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto max_tokens = std::make_shared<int64_t>(65536);
  loss->add_option("-m,--model", o->model_dir, "HF model directory (config.json + safetensors)")->required();
  loss->add_option("--adapter", o->adapter, "PEFT LoRA adapter directory (adapter_config.json + adapter_model.safetensors), merged into --model's weights");
  loss->add_option("-i,--input", *inputs, "JSONL (chat formats or pre-tokenized)")->required();
  loss->add_option("-t,--tokenizer", *tok, "tokenizer.json or sentencepiece .model "
      "(default: MODEL/tokenizer.model, else MODEL/tokenizer.json)");
  loss->add_option("--template", *tmpl,
                   "Chat template: llama2, llama3, qwen, chatglm3, chatml, raw (default: detected from the tokenizer)");
  loss->add_option("--max-tokens", *max_tokens, "Pack size and longest sequence")
      ->capture_default_str()
      ->check(int_range(2, kMaxTokens));
  loss->add_option("-o,--output", *out, "Per-sequence results JSONL");
  loss->add_option("--device", o->device, "auto, cpu or cuda")->capture_default_str()->check(device_name());
  loss->callback([&action, o, inputs, tmpl, tok, out, max_tokens] {
    action = [o, inputs, tmpl, tok, out, max_tokens] {
      o->data.tokenize.inputs.assign(inputs->begin(), inputs->end());
      check_model_paths(o->model_dir, *tok);
      for (const auto& in : o->data.tokenize.inputs) check_input_file(in, "--input");
      if (!out->empty()) {
        std::vector<std::filesystem::path> read = o->data.tokenize.inputs;
        for (const char* f :
             {"config.json", "tokenizer.model", "tokenizer.json", "model.safetensors", "pytorch_model.bin"})
          read.push_back(o->model_dir / f);
        read.push_back(*tok);
        check_output_path(*out, OutputKind::stream, "--output", read);
      }
      if (!tmpl->empty()) {
        o->data.tokenize.chat_template = data::parse_template(*tmpl);
        o->data.tokenize.chat_template_set = true;
      }
      o->data.plan.max_tokens = *max_tokens;
      o->data.tokenizer = *tok;
      o->output = *out;
      auto r = eval::run_loss_eval(*o);
      std::printf("sequences %llu  targets %llu\nmean sequence loss %.4f (ppl %.3f)\ntoken loss %.4f (ppl %.3f)\n",
                  (unsigned long long)r.sequences, (unsigned long long)r.targets, r.mean_sequence_loss,
                  std::exp(r.mean_sequence_loss), r.token_loss, std::exp(r.token_loss));
      return 0;
    };
  });
  add_needle(*cmd, action);
  add_longbench_chat(*cmd, action);
}

}  // namespace longalign::cli

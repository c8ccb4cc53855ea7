// `longalign eval loss`: per-sequence loss and perplexity of a model on JSONL.
#include <cmath>
#include <cstdio>

#include "commands.hpp"
#include "longalign/eval/loss_eval.hpp"

namespace longalign::cli {

void add_eval(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("eval", "Evaluate a model");
  cmd->require_subcommand(1);
  auto* loss = cmd->add_subcommand("loss", "Per-sequence mean target loss and perplexity on JSONL");
  auto o = std::make_shared<eval::LossEvalOptions>();
  auto inputs = std::make_shared<std::vector<std::string>>();
  auto tmpl = std::make_shared<std::string>("llama2");
  auto tok = std::make_shared<std::string>();
  auto out = std::make_shared<std::string>();
  auto max_tokens = std::make_shared<int64_t>(65536);
  loss->add_option("-m,--model", o->model_dir, "HF model directory (config.json + safetensors)")->required();
  loss->add_option("-i,--input", *inputs, "JSONL (chat formats or pre-tokenized)")->required();
  loss->add_option("-t,--tokenizer", *tok, "sentencepiece model (default: MODEL/tokenizer.model)");
  loss->add_option("--template", *tmpl, "Chat template")->capture_default_str();
  loss->add_option("--max-tokens", *max_tokens, "Pack size and longest sequence")->capture_default_str();
  loss->add_option("-o,--output", *out, "Per-sequence results JSONL");
  loss->add_option("--device", o->device, "auto, cpu or cuda")->capture_default_str();
  loss->callback([&action, o, inputs, tmpl, tok, out, max_tokens] {
    action = [o, inputs, tmpl, tok, out, max_tokens] {
      o->data.tokenize.inputs.assign(inputs->begin(), inputs->end());
      o->data.tokenize.chat_template = data::parse_template(*tmpl);
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
}

}  // namespace longalign::cli

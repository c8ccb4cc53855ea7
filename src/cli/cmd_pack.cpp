// `longalign pack`: JSONL -> tokenized dataset + batch plan + stats (see data/pack/pack_job.hpp).
#include <iostream>

#include "commands.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/data/pack/pack_job.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/train/train_config.hpp"
#include "options.hpp"

namespace fs = std::filesystem;

namespace longalign::cli {
namespace {

constexpr int64_t kMaxBatch = 65536;

struct PackFlags {
  std::vector<std::string> inputs;
  std::string config, output, tokenizer, tmpl, format, strategy, weighting, overflow, step_order;
  int64_t max_tokens = 0;
  int batch_size = 0, units_per_step = 0, threads = 0, world_size = 0;
  uint64_t seed = 0;
  bool overwrite = false, skip_invalid = false, no_progress = false;
};

// Defaults, then the config's data section, then the flags the user actually gave.
data::PackOptions resolve(const PackFlags& f, const CLI::App& cmd) {
  data::PackOptions o;
  if (!f.config.empty()) {
    check_input_file(f.config, "--config");
    train::check_data_config(f.config);
    data::apply_data_config(f.config, o);
    // Rank balancing costs units with the config's model; a config that does not resolve one
    // (e.g. its weights are not here and it names no preset) keeps Llama-2-7B's.
    try {
      o.plan.cost = train::load_train_config(f.config, {}, false).data.plan.cost;
    } catch (const UsageError& e) {
      log::info(std::string("cost model: Llama-2-7B (") + e.what() + ")");
    }
  }
  auto given = [&](const char* name) { return cmd.count(name) > 0; };
  if (given("--input")) {
    o.tokenize.inputs.assign(f.inputs.begin(), f.inputs.end());
    o.tokenize.ratios.clear();
  }
  if (given("--output")) o.output = f.output;
  if (given("--tokenizer")) o.tokenizer = f.tokenizer;
  if (given("--template")) {
    o.tokenize.chat_template = data::parse_template(f.tmpl);
    o.tokenize.chat_template_set = true;
  }
  if (given("--format")) o.tokenize.format = data::parse_input_format(f.format);
  if (given("--strategy")) o.plan.strategy = data::parse_strategy(f.strategy);
  if (given("--weighting")) o.plan.weighting = data::parse_weighting(f.weighting);
  if (given("--step-order")) o.plan.step_order = data::parse_step_order(f.step_order);
  if (given("--overflow")) o.tokenize.overflow = data::parse_overflow(f.overflow);
  if (given("--max-tokens")) o.plan.max_tokens = f.max_tokens;
  if (given("--batch-size")) o.plan.batch_size = f.batch_size;
  if (given("--units-per-step")) o.plan.units_per_step = f.units_per_step;
  if (given("--seed")) o.plan.seed = f.seed;
  if (given("--world-size")) o.plan.world_size = f.world_size;
  if (given("--threads")) o.tokenize.threads = f.threads;
  o.overwrite = f.overwrite;
  o.tokenize.skip_invalid = o.tokenize.skip_invalid || f.skip_invalid;
  o.tokenize.progress = !f.no_progress;
  if (o.tokenizer.empty() && !o.tokenize.inputs.empty()) {
    fs::path beside = data::tokenizer_in(o.tokenize.inputs.front().parent_path());
    if (fs::exists(beside)) o.tokenizer = beside;
  }
  return o;
}

// Inputs first (a FIFO is never opened), then the output: it is replaced as a whole, so it
// must be neither an input nor a directory holding one. Returns the output directory.
fs::path check_paths(const data::PackOptions& o, const std::string& config) {
  std::vector<fs::path> inputs = o.tokenize.inputs;
  for (const auto& in : inputs) check_input_file(in, "--input");
  if (!o.tokenizer.empty()) {
    check_input_file(o.tokenizer, "--tokenizer");
    inputs.push_back(o.tokenizer);
  }
  if (!config.empty()) inputs.push_back(config);
  if (o.tokenize.inputs.empty()) return o.output;  // run_pack names what is missing
  const fs::path out = o.output.empty() ? data::default_pack_output(o.tokenize.inputs[0]) : o.output;
  check_output_path(out, OutputKind::replaced_dir, "--output", inputs);
  return out;
}

}  // namespace

void add_pack(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("pack", "Tokenize JSONL and build a batch plan (naive, sorted or packed batches)");
  auto f = std::make_shared<PackFlags>();
  cmd->add_option("-i,--input", f->inputs, "JSONL file(s): LongAlign/OpenAI messages, ShareGPT, Alpaca or "
                                           "pre-tokenized {input_ids, labels}");
  cmd->add_option("-c,--config", f->config, "YAML config whose `data:` section supplies defaults");
  cmd->add_option("-o,--output", f->output, "Output directory (default: INPUT with extension .pack)");
  cmd->add_option("-t,--tokenizer", f->tokenizer,
                  "tokenizer.json (byte-level BPE) or sentencepiece .model (default: data.tokenizer from --config, else "
                  "tokenizer.model, else tokenizer.json, beside the input)");
  cmd->add_option("--template", f->tmpl,
                  "Chat template: llama2, llama3, qwen, chatglm3, chatml, raw (default: data.template from --config, "
                  "else the tokenizer_config.json chat_template beside the tokenizer, else what a tokenizer.json's "
                  "special tokens say, else llama2)");
  cmd->add_option("--format", f->format, "Input format: auto (default), longalign, sharegpt, alpaca, tokens");
  cmd->add_option("--strategy", f->strategy, "Batching: pack (default), sort, naive");
  cmd->add_option("--weighting", f->weighting, "Loss weighting: sequence (default: every sequence counts equally), token, "
                                         "pack_mean (the paper's plain packing loss, for ablations)");
  cmd->add_option("--max-tokens", f->max_tokens, "Longest sequence and pack capacity in tokens (default 65536)")
      ->check(int_range(1, kMaxTokens));
  cmd->add_option("--overflow", f->overflow, "Longer sequences: truncate (default), drop, error");
  cmd->add_option("--batch-size", f->batch_size, "Sequences per micro-batch for naive/sort (default 1)")
      ->check(int_range(1, kMaxBatch));
  cmd->add_option("--units-per-step", f->units_per_step,
                  "Packs or micro-batches per optimizer step (default 8); the world size must divide it")
      ->check(int_range(1, kMaxBatch));
  cmd->add_option("--seed", f->seed, "Shuffle seed (default 42)")->check(any_seed());
  cmd->add_option("--world-size", f->world_size,
                  "Data-parallel world size to plan for (default: units per step / 2): packed steps may give "
                  "ranks different numbers of packs; sorted steps are laid out for it. The plan still runs "
                  "at other world sizes that divide units per step, in blocks")
      ->check(int_range(1, kMaxRanks));
  cmd->add_option("--step-order", f->step_order,
                  "Which packs share a step (pack, 2+ ranks): cost (default: packs of similar cost, so ranks "
                  "finish together: useful-work efficiency ~0.98 at one pack a rank) or mixed (one pack from "
                  "each cost stratum: steps alike, ranks wait at one pack a rank; bench/RESULTS.md)");
  cmd->add_option("--threads", f->threads, "Tokenizer threads (default: all cores)")->check(int_range(1, kMaxThreads));
  cmd->add_flag("--skip-invalid", f->skip_invalid, "Skip malformed JSON / invalid UTF-8 lines instead of failing");
  cmd->add_flag("--overwrite", f->overwrite, "Replace an existing output directory");
  cmd->add_flag("--no-progress", f->no_progress, "No progress output");
  cmd->footer(
      "Examples:\n"
      "  longalign pack --input data.jsonl\n"
      "  longalign pack -i long.jsonl -i sharegpt.jsonl -t tokenizer.model --strategy sort --batch-size 1 "
      "--units-per-step 96\n"
      "  longalign pack --config configs/llama7b_64k.yaml --overwrite");
  cmd->callback([&action, f, cmd] {
    action = [f, cmd] {
      data::PackOptions o = resolve(*f, *cmd);
      const fs::path out = check_paths(o, f->config);
      data::PackStats stats = data::run_pack(o);
      std::cout << stats.summary();
      log::info("wrote " + out.string());
      return 0;
    };
  });
}

}  // namespace longalign::cli

// `longalign demo`: the README's main job on the embedded default, end to end on generated
// data: synth -> tokenizer -> pack (all three strategies, compared) -> train the tiny_cpu
// model -> its needle test -> a summary showing the loss falling, and the run's report.html.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "embedded_config.hpp"
#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/data/pack/pack_job.hpp"
#include "longalign/data/instruct/synth.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/eval/generator.hpp"
#include "longalign/eval/needle.hpp"
#include "longalign/train/run_report.hpp"
#include "longalign/train/trainer.hpp"
#include "options.hpp"

namespace fs = std::filesystem;

namespace longalign::cli {
namespace {

std::string batching_table(const fs::path& dir, const fs::path& jsonl, const fs::path& tok) {
  std::string table = "strategy  steps  batches     tokens    padding  efficiency\n";
  for (auto strategy : {data::Strategy::naive, data::Strategy::sort, data::Strategy::pack}) {
    data::PackOptions po;
    po.tokenize.inputs = {jsonl};
    po.tokenize.progress = false;
    po.tokenizer = tok;
    po.plan.strategy = strategy;
    po.plan.max_tokens = 2048;
    po.plan.batch_size = strategy == data::Strategy::pack ? 1 : 4;
    po.plan.units_per_step = 2;
    po.output = dir / (std::string("data.") + data::to_string(strategy));
    po.overwrite = true;
    data::PackStats st = data::run_pack(po);
    char row[160];
    std::snprintf(row, sizeof row, "%-8s %6llu %8llu %10llu %10llu %10.2f%%\n", data::to_string(strategy),
                  (unsigned long long)st.steps, (unsigned long long)st.batches, (unsigned long long)st.tokens,
                  (unsigned long long)st.padding_tokens, st.efficiency() * 100);
    table += row;
  }
  return table;
}

// Loss every few steps from metrics.jsonl, as a compact curve.
std::string loss_curve(const fs::path& metrics) {
  std::ifstream f(metrics);
  std::vector<std::pair<int64_t, double>> pts;
  std::string line;
  while (std::getline(f, line)) {
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j["loss"].is_number()) pts.emplace_back(j["step"].get<int64_t>(), j["loss"].get<double>());
  }
  std::string out;
  const size_t every = std::max<size_t>(1, pts.size() / 8);
  for (size_t i = 0; i < pts.size(); i += every) {
    char buf[64];
    std::snprintf(buf, sizeof buf, "  step %4lld  loss %.3f\n", (long long)pts[i].first, pts[i].second);
    out += buf;
  }
  return out;
}

// Marks a directory as the demo's own, so that a re-run may replace it.
constexpr const char* kMarker = ".longalign-demo";

// The demo replaces its directory on each run; anything else (a typo'd "-o ." or "-o ~") must
// never be deleted. An empty or missing directory, or one a demo wrote, may go.
void check_replaceable(const fs::path& dir) {
  check_output_path(dir, OutputKind::dir, "--output");
  if (!fs::exists(dir) || fs::is_empty(dir) || fs::exists(dir / kMarker)) return;
  if (fs::exists(dir / "synth.jsonl") && fs::exists(dir / "tiny_cpu.yaml")) return;  // a demo from before the marker
  throw UsageError("--output " + dir.string() + " is not empty and was not written by longalign demo; "
                   "refusing to replace it (pick a new or empty directory)");
}

}  // namespace

void add_demo(CLI::App& app, Action& action) {
  auto* cmd = app.add_subcommand("demo", "Run the built-in demo on generated data (no downloads)");
  auto out = std::make_shared<std::string>("runs/demo");
  auto num = std::make_shared<uint64_t>(400);
  auto sets = std::make_shared<std::vector<std::string>>();
  cmd->add_option("-o,--output", *out, "Demo directory (replaced on each run)")->capture_default_str();
  cmd->add_option("-n,--num", *num, "Synthetic records")->capture_default_str()->check(int_range(10, 1000000));
  cmd->add_option("--set", *sets, "Override a key of the embedded tiny_cpu config, e.g. --set train.epochs=1");
  cmd->callback([&action, out, num, sets] {
    action = [out, num, sets] {
      fs::path dir = fs::absolute(*out);
      check_replaceable(dir);
      fs::remove_all(dir);
      fs::create_directories(dir);
      write_file_atomic(dir / kMarker, "written by longalign demo; the next demo run replaces this directory\n");
      data::SynthOptions so;
      so.num = *num;
      so.long_fraction = 0.4;
      so.min_words = 60;
      so.max_words = 400;
      fs::path jsonl = dir / "synth.jsonl", tok = dir / "tokenizer.model";
      log::info("[1/4] synth: " + std::to_string(so.num) + " records -> " + jsonl.string());
      data::write_synth(so, jsonl);
      log::info("[2/4] tokenizer: training sentencepiece BPE -> " + tok.string());
      data::TokenizerTrainOptions to;
      to.vocab_size = 2000;
      data::train_sentencepiece({jsonl}, tok, to);
      log::info("[3/4] pack: naive, sort and pack strategies, 2048-token budget");
      std::string table = batching_table(dir, jsonl, tok);
      log::info("[4/4] train: the embedded tiny_cpu config (configs/tiny_cpu.yaml)");
      write_file_atomic(dir / "tiny_cpu.yaml", kTinyCpuYaml);
      std::vector<std::string> overrides = {"data.inputs=[" + jsonl.string() + "]", "data.tokenizer=" + tok.string(),
                                            "data.pack_dir=" + (dir / "data.pack").string(),
                                            "output.dir=" + (dir / "train").string()};
      overrides.insert(overrides.end(), sets->begin(), sets->end());
      auto cfg = train::load_train_config(dir / "tiny_cpu.yaml", overrides);
      train::TrainSummary s = train::run_training(cfg, {});
      // The demo model's needle test (passkey style, small grid: a few seconds on 2 cores) beside
      // the run, so that the report shows it with the curves.
      log::info("needle: passkey retrieval of the demo model, 4 lengths x 4 depths");
      eval::NeedleOptions no;
      no.lengths = eval::default_lengths(1024, 4, 256);
      no.depths = eval::default_depths(4);
      no.output_dir = cfg.output.dir / "needle";
      no.model_name = "longalign demo (tiny_cpu)";
      fs::create_directories(no.output_dir);
      auto gen = eval::Generator::load(s.checkpoint, "cpu");
      const eval::NeedleResult needle = eval::run_needle(*gen, no);
      const fs::path report = train::write_run_report(cfg.output.dir);
      std::printf("\n== longalign demo ==\nbatching comparison (same data, same token budget):\n%s\n"
                  "training (%lld steps, %.0f s, %.0f tokens/s), loss:\n%s"
                  "loss %.3f at the first step -> %.3f at the last\ncheckpoint (HF format): %s\n"
                  "needle (passkey) accuracy %.0f%%: %s/heatmap.png\nrun report: %s\n",
                  table.c_str(), (long long)s.steps_done, s.seconds, s.tokens_per_s,
                  loss_curve(cfg.output.dir / "metrics.jsonl").c_str(), s.first_loss, s.last_loss,
                  s.checkpoint.string().c_str(), 100 * needle.mean, no.output_dir.string().c_str(),
                  report.string().c_str());
      return 0;
    };
  });
}

}  // namespace longalign::cli

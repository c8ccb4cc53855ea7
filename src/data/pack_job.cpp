// Orchestrates tokenize -> plan -> stats inside a StagedDir, so a failure at any point
// (bad line, full disk, Ctrl-C via exception) leaves no partial output behind.
#include "longalign/data/pack_job.hpp"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/suggest.hpp"
#include "longalign/data/token_dataset.hpp"

namespace fs = std::filesystem;

namespace longalign::data {
namespace {

template <typename T>
T get(const YAML::Node& node, const std::string& key, const fs::path& file) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw UsageError(file.string() + ": data." + key + " has the wrong type (value: " + YAML::Dump(node) + ")");
  }
}

}  // namespace

void apply_data_config(const fs::path& yaml_file, PackOptions& o) {
  if (!fs::exists(yaml_file)) throw UsageError("config " + yaml_file.string() + " does not exist");
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_file.string());
  } catch (const YAML::Exception& e) {
    throw UsageError(yaml_file.string() + ": invalid YAML: " + e.what());
  }
  YAML::Node data = root["data"];
  if (!data) return;
  if (!data.IsMap()) throw UsageError(yaml_file.string() + ": `data` must be a mapping");
  const fs::path base = yaml_file.parent_path();
  auto path_of = [&](const std::string& s) { return fs::path(s).is_absolute() ? fs::path(s) : base / s; };
  static const std::vector<std::string> keys = {"inputs",     "tokenizer",      "template",  "format",
                                                "strategy",   "weighting",      "max_tokens", "batch_size",
                                                "units_per_step", "seed",       "overflow",  "skip_invalid",
                                                "pack_dir"};
  for (const auto& kv : data) {
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    if (key == "inputs") {
      o.tokenize.inputs.clear();
      for (const auto& s : get<std::vector<std::string>>(v, key, yaml_file)) o.tokenize.inputs.push_back(path_of(s));
    } else if (key == "tokenizer") o.tokenizer = path_of(get<std::string>(v, key, yaml_file));
    else if (key == "template") o.tokenize.chat_template = parse_template(get<std::string>(v, key, yaml_file));
    else if (key == "format") o.tokenize.format = parse_input_format(get<std::string>(v, key, yaml_file));
    else if (key == "strategy") o.plan.strategy = parse_strategy(get<std::string>(v, key, yaml_file));
    else if (key == "weighting") o.plan.weighting = parse_weighting(get<std::string>(v, key, yaml_file));
    else if (key == "max_tokens") o.plan.max_tokens = get<int64_t>(v, key, yaml_file);
    else if (key == "batch_size") o.plan.batch_size = get<int>(v, key, yaml_file);
    else if (key == "units_per_step") o.plan.units_per_step = get<int>(v, key, yaml_file);
    else if (key == "seed") o.plan.seed = get<uint64_t>(v, key, yaml_file);
    else if (key == "overflow") o.tokenize.overflow = parse_overflow(get<std::string>(v, key, yaml_file));
    else if (key == "skip_invalid") o.tokenize.skip_invalid = get<bool>(v, key, yaml_file);
    else if (key == "pack_dir") o.output = path_of(get<std::string>(v, key, yaml_file));
    else {
      std::string near = nearest(key, keys);
      throw UsageError(yaml_file.string() + ": unknown key data." + key +
                       (near.empty() ? "" : " (did you mean data." + near + "?)"));
    }
  }
}

fs::path default_pack_output(const fs::path& first_input) {
  fs::path p = first_input;
  return p.replace_extension(".pack");
}

PackStats run_pack(PackOptions o) {
  if (o.tokenize.inputs.empty()) throw UsageError("pack needs at least one --input file");
  if (o.plan.max_tokens <= 0)
    throw UsageError("--max-tokens must be positive, got " + std::to_string(o.plan.max_tokens));
  if (o.output.empty()) o.output = default_pack_output(o.tokenize.inputs.front());
  o.tokenize.max_length = o.plan.max_tokens;
  for (const auto& in : o.tokenize.inputs)
    if (!fs::is_regular_file(in)) throw UsageError("input " + in.string() + " does not exist or is not a file");

  std::unique_ptr<Tokenizer> tok;
  if (!o.tokenizer.empty()) tok = load_sentencepiece(o.tokenizer);

  StagedDir out(o.output, o.overwrite);  // refuses an existing output unless --overwrite
  PackStats stats;
  DatasetInfo info;
  info.template_name = to_string(o.tokenize.chat_template);
  info.max_length = o.plan.max_tokens;
  if (tok) {
    info.tokenizer_checksum = tok->checksum();
    info.vocab_size = tok->vocab_size();
    info.bos_id = tok->bos_id();
    info.eos_id = tok->eos_id();
  }
  DatasetWriter writer(out.path(), info);
  log::info("tokenizing " + std::to_string(o.tokenize.inputs.size()) + " file(s) with template " +
            info.template_name);
  tokenize_to_dataset(o.tokenize, tok.get(), writer, stats);
  writer.finish();
  if (stats.sequences == 0)
    throw RuntimeError("no usable sequence in the input (" + std::to_string(stats.records) + " records, " +
                       std::to_string(stats.dropped_total()) + " dropped); nothing to pack");

  TokenDataset ds = TokenDataset::open(out.path());
  std::vector<SeqInfo> seqs(ds.size());
  for (size_t i = 0; i < ds.size(); ++i) seqs[i] = {ds[i].length, ds[i].n_targets};
  Plan plan = make_plan(seqs, o.plan);
  save_plan(plan, out.path() / "plan.json");
  for (const auto& s : plan.steps)
    for (const auto& u : s.units) {
      stats.batches += 1;
      stats.padding_tokens += u.padded_tokens - u.tokens;
    }
  stats.steps = plan.steps.size();
  write_file_atomic(out.path() / "stats.json", stats.to_json());

  nlohmann::json cfg = {{"inputs", nlohmann::json::array()},
                        {"tokenizer", o.tokenizer.string()},
                        {"template", info.template_name},
                        {"format", to_string(o.tokenize.format)},
                        {"overflow", to_string(o.tokenize.overflow)},
                        {"skip_invalid", o.tokenize.skip_invalid},
                        {"strategy", to_string(o.plan.strategy)},
                        {"weighting", to_string(o.plan.weighting)},
                        {"max_tokens", o.plan.max_tokens},
                        {"batch_size", o.plan.batch_size},
                        {"units_per_step", o.plan.units_per_step},
                        {"seed", o.plan.seed}};
  for (const auto& in : o.tokenize.inputs) cfg["inputs"].push_back(fs::absolute(in).string());
  write_file_atomic(out.path() / "pack_config.json", cfg.dump(2) + "\n");
  if (tok) fs::copy_file(o.tokenizer, out.path() / "tokenizer.model");
  out.commit();
  return stats;
}

}  // namespace longalign::data

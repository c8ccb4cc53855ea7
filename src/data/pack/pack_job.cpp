// Orchestrates tokenize -> plan -> stats inside a StagedDir, so a failure at any point
// (bad line, full disk, Ctrl-C via exception) leaves no partial output behind.
#include "longalign/data/pack/pack_job.hpp"

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/core/log.hpp"
#include "longalign/core/suggest.hpp"
#include "longalign/data/pack/pack_reader.hpp"
#include "longalign/data/chat/template_detect.hpp"
#include "longalign/data/pack/token_dataset.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"

namespace fs = std::filesystem;

namespace longalign::data {
namespace {

template <typename T>
T get(const YAML::Node& node, const std::string& key, const std::string& where) {
  try {
    return node.as<T>();
  } catch (const YAML::Exception&) {
    throw UsageError(where + ": data." + key + " has the wrong type (value: " + YAML::Dump(node) + ")");
  }
}

}  // namespace

std::string yaml_quoted(const std::string& text) {
  std::string q = "\"";
  for (char ch : text) {
    if (ch == '"' || ch == '\\') q += '\\';
    if (ch == '\n') q += "\\n";
    else if (ch == '\t') q += "\\t";
    else q += ch;
  }
  return q + "\"";
}

void apply_data_config(const fs::path& yaml_file, PackOptions& o) {
  if (!fs::exists(yaml_file)) throw UsageError("config " + yaml_file.string() + " does not exist");
  YAML::Node root;
  try {
    root = YAML::LoadFile(yaml_file.string());
  } catch (const YAML::Exception& e) {
    throw UsageError(yaml_file.string() + ": invalid YAML: " + e.what());
  }
  if (root["data"]) apply_data_section(root["data"], yaml_file.parent_path(), yaml_file.string(), o);
}

void apply_data_section(const YAML::Node& data, const fs::path& base, const std::string& where, PackOptions& o) {
  if (!data.IsMap()) throw UsageError(where + ": `data` must be a mapping");
  auto path_of = [&](const std::string& s) { return (fs::path(s).is_absolute() ? fs::path(s) : base / s).lexically_normal(); };
  static const std::vector<std::string> keys = {"inputs",     "tokenizer",      "template",  "format",
                                                "strategy",   "weighting",      "max_tokens", "batch_size",
                                                "units_per_step", "seed",       "overflow",  "skip_invalid",
                                                "pack_dir",   "world_size", "step_order", "verify"};
  for (const auto& kv : data) {
    if (!kv.first.IsScalar()) throw UsageError(where + ": a key in `data` is not a plain name");
    const std::string key = kv.first.as<std::string>();
    const YAML::Node& v = kv.second;
    try {
      if (key == "inputs") {
        if (!v.IsSequence()) throw UsageError(where + ": data.inputs must be a list of paths or {path, ratio} maps");
        o.tokenize.inputs.clear();
        o.tokenize.ratios.clear();
        for (const auto& item : v) {
          if (item.IsMap()) {
            if (!item["path"]) throw UsageError(where + ": each data.inputs entry needs a `path`");
            o.tokenize.inputs.push_back(path_of(get<std::string>(item["path"], "inputs.path", where)));
            double r = item["ratio"] ? get<double>(item["ratio"], "inputs.ratio", where) : 1.0;
            if (!(r > 0)) throw UsageError(where + ": data.inputs ratio must be positive, got " + std::to_string(r));
            o.tokenize.ratios.push_back(r);
          } else {
            o.tokenize.inputs.push_back(path_of(get<std::string>(item, "inputs", where)));
            o.tokenize.ratios.push_back(1.0);
          }
        }
      } else if (key == "tokenizer") o.tokenizer = path_of(get<std::string>(v, key, where));
      else if (key == "template") {
        o.tokenize.chat_template = parse_template(get<std::string>(v, key, where));
        o.tokenize.chat_template_set = true;
      }
      else if (key == "format") o.tokenize.format = parse_input_format(get<std::string>(v, key, where));
      else if (key == "strategy") o.plan.strategy = parse_strategy(get<std::string>(v, key, where));
      else if (key == "weighting") o.plan.weighting = parse_weighting(get<std::string>(v, key, where));
      else if (key == "max_tokens") o.plan.max_tokens = get<int64_t>(v, key, where);
      else if (key == "batch_size") o.plan.batch_size = get<int>(v, key, where);
      else if (key == "units_per_step") o.plan.units_per_step = get<int>(v, key, where);
      else if (key == "seed") o.plan.seed = get<uint64_t>(v, key, where);
      else if (key == "world_size") o.plan.world_size = get<int>(v, key, where);
      else if (key == "step_order") o.plan.step_order = parse_step_order(get<std::string>(v, key, where));
      else if (key == "overflow") o.tokenize.overflow = parse_overflow(get<std::string>(v, key, where));
      else if (key == "skip_invalid") o.tokenize.skip_invalid = get<bool>(v, key, where);
      else if (key == "pack_dir") o.output = path_of(get<std::string>(v, key, where));
      else if (key == "verify") o.verify = parse_verify(get<std::string>(v, key, where));
      else {
        std::string near = nearest(key, keys);
        throw UsageError(where + ": unknown key data." + key +
                         (near.empty() ? "" : " (did you mean data." + near + "?)"));
      }
    } catch (const UsageError& e) {  // the value parsers (strategy, template, ...) do not know the key
      if (std::string(e.what()).find("data." + key) != std::string::npos) throw;
      throw UsageError(where + ": data." + key + ": " + e.what());
    }
  }
}

std::string data_section_yaml(const PackOptions& o, int indent) {
  std::string pad(indent, ' '), s;
  s += pad + "inputs:" + (o.tokenize.inputs.empty() ? " []" : "") + "\n";
  for (size_t i = 0; i < o.tokenize.inputs.size(); ++i)
    s += pad + "  - {path: " + yaml_quoted(o.tokenize.inputs[i].string()) +
         ", ratio: " + std::to_string(i < o.tokenize.ratios.size() ? o.tokenize.ratios[i] : 1.0) + "}\n";
  if (!o.tokenizer.empty()) s += pad + "tokenizer: " + yaml_quoted(o.tokenizer.string()) + "\n";
  if (o.tokenize.chat_template_set) s += pad + "template: " + to_string(o.tokenize.chat_template) + "\n";
  s += pad + "format: " + to_string(o.tokenize.format) + "\n";
  s += pad + "strategy: " + to_string(o.plan.strategy) + "\n";
  s += pad + "weighting: " + to_string(o.plan.weighting) + "\n";
  s += pad + "max_tokens: " + std::to_string(o.plan.max_tokens) + "\n";
  s += pad + "batch_size: " + std::to_string(o.plan.batch_size) + "\n";
  s += pad + "units_per_step: " + std::to_string(o.plan.units_per_step) + "\n";
  s += pad + "seed: " + std::to_string(o.plan.seed) + "\n";
  if (o.plan.world_size) s += pad + "world_size: " + std::to_string(o.plan.world_size) + "\n";
  s += pad + "step_order: " + to_string(o.plan.step_order) + "\n";
  s += pad + "overflow: " + to_string(o.tokenize.overflow) + "\n";
  s += pad + "skip_invalid: " + (o.tokenize.skip_invalid ? "true" : "false") + "\n";
  if (!o.output.empty()) s += pad + "pack_dir: " + yaml_quoted(o.output.string()) + "\n";
  s += pad + "verify: " + to_string(o.verify) + "\n";
  return s;
}

fs::path default_pack_output(const fs::path& first_input) {
  fs::path p = first_input;
  return p.replace_extension(".pack");
}

std::string pack_config_json(const PackOptions& o) {
  nlohmann::json cfg = {{"inputs", nlohmann::json::array()},
                        {"tokenizer", o.tokenizer.string()},
                        {"template", to_string(o.tokenize.chat_template)},
                        {"format", to_string(o.tokenize.format)},
                        {"overflow", to_string(o.tokenize.overflow)},
                        {"skip_invalid", o.tokenize.skip_invalid},
                        {"strategy", to_string(o.plan.strategy)},
                        {"weighting", to_string(o.plan.weighting)},
                        {"max_tokens", o.plan.max_tokens},
                        {"batch_size", o.plan.batch_size},
                        {"units_per_step", o.plan.units_per_step},
                        {"seed", o.plan.seed},
                        {"world_size", o.plan.world_size},
                        {"step_order", to_string(o.plan.step_order)},
                        {"cost_model", {{"params", o.plan.cost.params}, {"hidden", o.plan.cost.hidden},
                                        {"layers", o.plan.cost.layers}}}};
  for (size_t i = 0; i < o.tokenize.inputs.size(); ++i)
    cfg["inputs"].push_back({{"path", fs::absolute(o.tokenize.inputs[i]).string()},
                             {"bytes", fs::exists(o.tokenize.inputs[i]) ? fs::file_size(o.tokenize.inputs[i]) : 0},
                             {"ratio", i < o.tokenize.ratios.size() ? o.tokenize.ratios[i] : 1.0}});
  if (!o.tokenizer.empty() && fs::exists(o.tokenizer)) cfg["tokenizer_checksum"] = file_checksum(o.tokenizer);
  return cfg.dump(2) + "\n";
}

void resolve_chat_template(PackOptions& o) {
  if (o.tokenize.chat_template_set || o.tokenizer.empty()) return;
  o.tokenize.chat_template = detect_template(o.tokenizer);
  o.tokenize.chat_template_set = true;
}

PackStats run_pack(PackOptions o) {
  if (o.tokenize.inputs.empty()) throw UsageError("pack needs at least one --input file");
  resolve_chat_template(o);
  check_plan_options(o.plan);
  if (o.output.empty()) o.output = default_pack_output(o.tokenize.inputs.front());
  o.tokenize.max_length = o.plan.max_tokens;
  o.tokenize.mix_seed = o.plan.seed;
  for (const auto& in : o.tokenize.inputs)
    if (!fs::is_regular_file(in)) throw UsageError("input " + in.string() + " does not exist or is not a file");

  std::unique_ptr<Tokenizer> tok;
  if (!o.tokenizer.empty()) tok = load_tokenizer(o.tokenizer);

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
  if (stats.sequences == 0) {
    std::string why;
    for (const auto& [reason, n] : stats.dropped) why += (why.empty() ? ": " : ", ") + reason + " " + std::to_string(n);
    throw RuntimeError("no usable sequence in the input (" + std::to_string(stats.records) + " records, " +
                       std::to_string(stats.dropped_total()) + " dropped" + why + "); nothing to pack" +
                       (stats.first_skipped.empty() ? "" : ". First dropped: " + stats.first_skipped));
  }

  TokenDataset ds = TokenDataset::open(out.path());
  const std::vector<SeqInfo> seqs = sequence_infos(ds);
  Plan plan = make_plan(seqs, o.plan);
  save_plan(plan, out.path() / "plan.json");
  for (const auto& s : plan.steps)
    for (const auto& u : s.units) {
      stats.batches += 1;
      stats.padding_tokens += u.padded_tokens - u.tokens;
    }
  stats.steps = plan.steps.size();
  stats.quality = plan_quality(plan, seqs);
  write_file_atomic(out.path() / "stats.json", stats.to_json());

  write_file_atomic(out.path() / "pack_config.json", pack_config_json(o));
  if (tok) copy_tokenizer(o.tokenizer, out.path());
  write_pack_manifest(out.path());  // last: it vouches for every file above
  out.commit();
  return stats;
}

}  // namespace longalign::data

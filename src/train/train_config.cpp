// Table-driven YAML validation for `train`: each section maps its keys to typed setters with
// ranges, so every error can name the exact key, the value and what would be valid.
#include "longalign/train/train_config.hpp"

#include <yaml-cpp/yaml.h>

#include <cmath>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "longalign/core/error.hpp"
#include "longalign/core/option_check.hpp"
#include "longalign/core/output_path.hpp"
#include "longalign/core/suggest.hpp"

namespace fs = std::filesystem;

namespace longalign::train {
namespace {

// Upper limits of integer keys: far beyond any real run, so only a typo or a unit mistake hits
// them, and each error can state a range a person can read.
constexpr int64_t kMaxVocab = int64_t{1} << 24;
constexpr int64_t kMaxTokens = int64_t{1} << 24;
constexpr int64_t kMaxSteps = 1000000000000;  // 1e12
constexpr int64_t kMaxCount = 1000000;

using Setter = std::function<void(const YAML::Node&, const std::string& key)>;
using Section = std::map<std::string, Setter>;

struct Ctx {
  std::string where;
  [[noreturn]] void fail(const std::string& key, const std::string& what, const YAML::Node& v) const {
    throw UsageError(where + ": " + key + " " + what + ", got " + YAML::Dump(v));
  }
  [[noreturn]] void out_of_range(const std::string& key, const YAML::Node& v, const std::string& range) const {
    throw UsageError(where + ": " + longalign::out_of_range(key, YAML::Dump(v), range));
  }
};

template <typename T>
T as(const Ctx& c, const YAML::Node& v, const std::string& key, const char* type) {
  if (!v.IsScalar()) c.fail(key, std::string("must be ") + type, v);
  try {
    return v.as<T>();
  } catch (const YAML::Exception&) {
    c.fail(key, std::string("must be ") + type, v);
  }
}

Setter number(const Ctx& c, double& dst, double lo, double hi, bool lo_open = false) {
  return [&c, &dst, lo, hi, lo_open](const YAML::Node& v, const std::string& key) {
    double x = as<double>(c, v, key, "a number");
    if (std::isnan(x)) c.fail(key, "must be a number (" + range_text(lo, hi, lo_open) + ")", v);
    if (x < lo || x > hi || (lo_open && x == lo)) c.out_of_range(key, v, range_text(lo, hi, lo_open));
    dst = x;
  };
}

// A whole number in [lo, hi]. A number that is whole but too big for int64 (1e30) is reported
// as out of range, not as a type error.
int64_t whole(const Ctx& c, const YAML::Node& v, const std::string& key, int64_t lo, int64_t hi) {
  if (!v.IsScalar()) c.fail(key, "must be a whole number", v);
  int64_t x = 0;
  if (!YAML::convert<int64_t>::decode(v, x)) {
    double d = 0;
    if (YAML::convert<double>::decode(v, d) && std::isfinite(d) && d == std::floor(d))
      c.out_of_range(key, v, range_text(double(lo), double(hi)));
    c.fail(key, "must be a whole number (" + range_text(double(lo), double(hi)) + ")", v);
  }
  if (x < lo || x > hi) c.out_of_range(key, v, range_text(double(lo), double(hi)));
  return x;
}

// The largest value of I that int64 can hold: the default upper bound of an integer key.
template <typename I>
constexpr int64_t max_of() {
  return std::numeric_limits<I>::max() > uint64_t(INT64_MAX) ? INT64_MAX : int64_t(std::numeric_limits<I>::max());
}

template <typename I>
Setter integer(const Ctx& c, I& dst, int64_t lo, int64_t hi = max_of<I>()) {
  return [&c, &dst, lo, hi](const YAML::Node& v, const std::string& key) { dst = static_cast<I>(whole(c, v, key, lo, hi)); };
}

Setter boolean(const Ctx& c, bool& dst) {
  return [&c, &dst](const YAML::Node& v, const std::string& key) { dst = as<bool>(c, v, key, "true or false"); };
}

Setter choice(const Ctx& c, std::string& dst, std::vector<std::string> options) {
  return [&c, &dst, options](const YAML::Node& v, const std::string& key) {
    std::string x = as<std::string>(c, v, key, "a string");
    for (const auto& o : options)
      if (o == x) {
        dst = x;
        return;
      }
    std::string list;
    for (const auto& o : options) list += (list.empty() ? "" : ", ") + o;
    c.fail(key, "must be one of " + list, v);
  };
}

Setter path(const Ctx& c, fs::path& dst, const fs::path& base) {
  return [&c, &dst, base](const YAML::Node& v, const std::string& key) {
    fs::path p = as<std::string>(c, v, key, "a path");
    dst = (p.is_absolute() ? p : base / p).lexically_normal();
  };
}

// `data:` is read by the pack job's own loader; its numeric keys are range-checked here first,
// so they are reported like every other key (data.max_tokens, not --max-tokens).
void check_data_values(const Ctx& c, const YAML::Node& data) {
  if (!data.IsMap()) return;  // apply_data_section names that problem
  const std::vector<std::tuple<std::string, int64_t, int64_t>> limits = {
      {"max_tokens", 1, kMaxTokens}, {"batch_size", 1, 65536}, {"units_per_step", 1, 65536},
      {"world_size", 0, 65536}, {"seed", 0, INT64_MAX}};
  for (const auto& [key, lo, hi] : limits)
    if (data[key]) whole(c, data[key], "data." + key, lo, hi);
  if (!data["inputs"] || !data["inputs"].IsSequence()) return;
  for (const auto& item : data["inputs"])
    if (item.IsMap() && item["ratio"]) {
      double r = 0;
      number(c, r, 0, 1e6, true)(item["ratio"], "data.inputs.ratio");
    }
}

// A list of names, or (when `regex` is given) one string: PEFT's two forms of target_modules.
Setter names(const Ctx& c, std::vector<std::string>& dst, bool* regex) {
  return [&c, &dst, regex](const YAML::Node& v, const std::string& key) {
    const std::string what = regex ? "a list of module names or one regular expression" : "a list of module names";
    if (regex && v.IsScalar()) {
      dst = {as<std::string>(c, v, key, what.c_str())};
      *regex = dst[0] != "all-linear";
      return;
    }
    if (!v.IsSequence() || (regex && v.size() == 0)) c.fail(key, "must be " + what, v);
    dst.clear();
    for (const auto& e : v) dst.push_back(as<std::string>(c, e, key, what.c_str()));
    if (regex) *regex = false;
  };
}

void apply_section(const Ctx& c, const std::string& name, const YAML::Node& node, const Section& keys);

// train.lora: a mapping (LoRA on, rank 16 unless given) or null (off).
Setter lora_section(const Ctx& c, model::LoraConfig& dst) {
  return [&c, &dst](const YAML::Node& v, const std::string& key) {
    if (v.IsNull()) {
      dst = {};
      return;
    }
    dst.rank = 16;
    const Section keys = {{"rank", integer(c, dst.rank, 1, 65536)},
                          {"alpha", number(c, dst.alpha, 0, 1e6, true)},
                          {"dropout", number(c, dst.dropout, 0, 0.99)},
                          {"target_modules", names(c, dst.target_modules, &dst.target_regex)},
                          {"modules_to_save", names(c, dst.modules_to_save, nullptr)}};
    apply_section(c, key, v, keys);
  };
}

YAML::Node load_yaml(const fs::path& file) {
  check_input_file(file, "config");
  try {
    return YAML::LoadFile(file.string());
  } catch (const YAML::Exception& e) {
    throw UsageError(file.string() + ": invalid YAML: " + e.what());
  }
}

void apply_section(const Ctx& c, const std::string& name, const YAML::Node& node, const Section& keys) {
  if (!node.IsMap()) throw UsageError(c.where + ": `" + name + "` must be a mapping");
  std::vector<std::string> names;
  for (const auto& [k, _] : keys) names.push_back(k);
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) throw UsageError(c.where + ": a key in `" + name + "` is not a plain name");
    std::string key = kv.first.as<std::string>();
    auto it = keys.find(key);
    if (it == keys.end()) {
      std::string near = nearest(key, names);
      throw UsageError(c.where + ": unknown key " + name + "." + key + (near.empty() ? "" : " (did you mean " + name + "." + near + "?)"));
    }
    it->second(kv.second, name + "." + key);
  }
}

// The integer layer-shape keys of the model section: they describe a checkpoint, so when one is
// given they must agree with it.
using IntField = int64_t model::LlamaConfig::*;
const std::vector<std::pair<std::string, IntField>> kShapeKeys = {
    {"vocab_size", &model::LlamaConfig::vocab_size},
    {"hidden_size", &model::LlamaConfig::hidden_size},
    {"intermediate_size", &model::LlamaConfig::intermediate_size},
    {"num_hidden_layers", &model::LlamaConfig::num_hidden_layers},
    {"num_attention_heads", &model::LlamaConfig::num_attention_heads},
    {"num_key_value_heads", &model::LlamaConfig::num_key_value_heads},
    {"head_dim", &model::LlamaConfig::head_dim}};

// Named architectures for planning before the weights are at hand (model.preset).
model::LlamaConfig preset_arch(const std::string& name) {
  model::LlamaConfig a;  // the defaults are Llama-2-7B's
  if (name == "llama2-13b") {
    a.hidden_size = 5120;
    a.intermediate_size = 13824;
    a.num_hidden_layers = a.num_attention_heads = a.num_key_value_heads = 40;
  } else if (name == "llama3.1-8b") {  // meta-llama/Llama-3.1-8B's config.json
    a.vocab_size = 128256;
    a.intermediate_size = 14336;
    a.num_key_value_heads = 8;
    a.max_position_embeddings = 131072;
    a.rope_theta = 500000;
    a.rope_scaling = {"llama3", 8.0, 1.0, 4.0, 8192};
    a.bos_token_id = 128000, a.eos_token_id = 128001;
  } else if (name == "qwen2.5-7b") {  // Qwen/Qwen2.5-7B's config.json (its 32K window; YaRN is not modelled)
    a.model_type = "qwen2";
    a.qkv_bias = true;
    a.vocab_size = 152064;
    a.hidden_size = 3584;
    a.intermediate_size = 18944;
    a.num_hidden_layers = 28;
    a.num_attention_heads = 28;
    a.num_key_value_heads = 4;
    a.max_position_embeddings = 32768;
    a.rope_theta = 1000000;
    a.rms_norm_eps = 1e-6;
    a.bos_token_id = 151643, a.eos_token_id = 151643;
  }
  return a;
}

void apply_override(YAML::Node& root, const std::string& spec) {
  size_t eq = spec.find('=');
  size_t dot = spec.find('.');
  if (eq == std::string::npos || dot == std::string::npos || dot > eq)
    throw UsageError("--set expects section.key=value, got '" + spec + "'");
  std::string section = spec.substr(0, dot), key = spec.substr(dot + 1, eq - dot - 1);
  YAML::Node value;
  try {
    value = YAML::Load(spec.substr(eq + 1));
  } catch (const YAML::Exception& e) {
    throw UsageError("--set " + spec + ": value is not valid YAML");
  }
  if (!root[section] || !root[section].IsMap()) root[section] = YAML::Node(YAML::NodeType::Map);
  // A nested key (train.lora.rank=16) reaches into its own mapping.
  if (size_t sub = key.find('.'); sub != std::string::npos) {
    const std::string outer = key.substr(0, sub);
    YAML::Node inner = root[section][outer];
    if (!inner || !inner.IsMap()) root[section][outer] = YAML::Node(YAML::NodeType::Map);
    root[section][outer][key.substr(sub + 1)] = value;
    return;
  }
  root[section][key] = value;
}

// The architecture: the checkpoint's config.json when model.path has one, else the preset and
// the YAML's keys. Layer shapes the YAML (or the preset) states must agree with the checkpoint,
// except that a preset's vocabulary may be smaller (checkpoints pad it, e.g. 32256). Context
// keys (rope_theta, max_position_embeddings, rope_scaling_*) given in the YAML replace the
// checkpoint's: they are how a run sets its context. model.rope_theta is absolute, so a base
// that is already extended (LongAlign-7B-64k-base: 2e6) is never scaled again; rope_theta_scale
// multiplies whatever base results, and giving both is refused as ambiguous.
void resolve_model(const std::string& where, const std::set<std::string>& given, const std::string& preset,
                   ModelSection& m) {
  auto& a = m.arch;
  auto has = [&](const std::string& k) { return given.count(k) > 0; };
  if (has("rope_theta") && has("rope_theta_scale") && m.rope_theta_scale != 1.0)
    throw UsageError(where + ": model.rope_theta (an absolute base) and model.rope_theta_scale are both set; keep one");
  const model::LlamaConfig yaml = a;
  if (!preset.empty()) {
    model::LlamaConfig p = preset_arch(preset);
    for (const auto& [k, field] : kShapeKeys)
      if (!has(k)) a.*field = p.*field;
    // The family and context a preset names, where the YAML does not restate them.
    a.model_type = p.model_type;
    a.qkv_bias = p.qkv_bias, a.o_bias = p.o_bias, a.mlp_bias = p.mlp_bias;
    a.bos_token_id = p.bos_token_id, a.eos_token_id = p.eos_token_id;
    if (!has("rope_theta")) a.rope_theta = p.rope_theta;
    if (!has("max_position_embeddings")) a.max_position_embeddings = p.max_position_embeddings;
    if (!has("rms_norm_eps")) a.rms_norm_eps = p.rms_norm_eps;
    if (!has("rope_scaling_type") && !has("rope_scaling_factor")) a.rope_scaling = p.rope_scaling;
  }
  const fs::path config_json = m.path / "config.json";
  std::error_code unreadable;  // a path the OS refuses (too long, ...): as absent; train names it
  if (!m.path.empty() && fs::exists(config_json, unreadable)) {
    model::LlamaConfig f = model::load_hf_config(config_json);
    for (const auto& [k, field] : kShapeKeys) {
      if (!has(k) && (preset.empty() || k == "vocab_size" || k == "head_dim")) continue;
      if (k == "vocab_size" && a.vocab_size == 0) continue;  // the tokenizer's: nothing to compare
      const int64_t mine = k == "head_dim" ? a.resolved_head_dim() : a.*field;
      const int64_t theirs = k == "head_dim" ? f.resolved_head_dim() : f.*field;
      if (mine != theirs)
        throw UsageError(where + ": model." + k + " is " + std::to_string(mine) + (has(k) ? "" : " (preset " + preset + ")") +
                         " but " + config_json.string() + " says " + std::to_string(theirs));
    }
    if (preset.size() && a.vocab_size > f.vocab_size)
      throw UsageError(where + ": preset " + preset + " has vocab_size " + std::to_string(a.vocab_size) + " but " +
                       config_json.string() + " says " + std::to_string(f.vocab_size));
    if (has("rms_norm_eps") && std::abs(a.rms_norm_eps - f.rms_norm_eps) > 1e-12)
      throw UsageError(where + ": model.rms_norm_eps is " + std::to_string(a.rms_norm_eps) + " but " +
                       config_json.string() + " says " + std::to_string(f.rms_norm_eps));
    if (has("tie_word_embeddings") && a.tie_word_embeddings != f.tie_word_embeddings)
      throw UsageError(where + ": model.tie_word_embeddings disagrees with " + config_json.string());
    if (has("rope_theta")) f.rope_theta = yaml.rope_theta;
    if (has("max_position_embeddings")) f.max_position_embeddings = yaml.max_position_embeddings;
    if (has("rope_scaling_type")) f.rope_scaling.type = yaml.rope_scaling.type;
    if (has("rope_scaling_factor")) f.rope_scaling.factor = yaml.rope_scaling.factor;
    a = f;
  } else if (!m.path.empty() && preset.empty() &&
             std::none_of(kShapeKeys.begin(), kShapeKeys.end(), [&](const auto& kv) { return has(kv.first); })) {
    throw UsageError(where + ": model.path " + m.path.string() +
                     " has no config.json; point it at a HF model directory, or set model.preset to plan without it");
  }
  a.rope_theta *= m.rope_theta_scale;
}

}  // namespace

data::CostModel cost_model_for(model::LlamaConfig a) {
  if (a.vocab_size == 0) a.vocab_size = 32000;  // a scratch model's vocabulary is the tokenizer's, known later
  return {double(a.num_parameters()), double(a.hidden_size), double(a.num_hidden_layers)};
}

TrainConfig load_train_config(const fs::path& file, const std::vector<std::string>& overrides, bool require_data) {
  YAML::Node root = load_yaml(file);
  if (root.IsNull()) root = YAML::Node(YAML::NodeType::Map);
  if (!root.IsMap()) throw UsageError(file.string() + ": the top level must be a mapping");
  for (const auto& o : overrides) apply_override(root, o);

  TrainConfig cfg;
  cfg.source = file.string();
  const fs::path base = file.parent_path();
  Ctx c{file.string()};
  auto& a = cfg.model.arch;
  a.vocab_size = 0;  // scratch models take it from the tokenizer unless set
  std::set<std::string> given;  // model keys the YAML sets
  auto arch = [&](Setter s) {
    return [s, &given](const YAML::Node& v, const std::string& k) {
      given.insert(k.substr(k.find('.') + 1));
      s(v, k);
    };
  };
  const double inf = 1e300;
  std::string rope_type = "default", preset;
  Section model = {
      {"path", path(c, cfg.model.path, base)},
      {"preset", choice(c, preset, {"llama2-7b", "llama2-13b", "llama3.1-8b", "qwen2.5-7b"})},
      {"rope_theta_scale", arch(number(c, cfg.model.rope_theta_scale, 0, inf, true))},
      {"init_std", number(c, cfg.model.init_std, 0, 10, true)},
      {"vocab_size", arch(integer(c, a.vocab_size, 0, kMaxVocab))},  // 0: the tokenizer's
      {"hidden_size", arch(integer(c, a.hidden_size, 1, int64_t{1} << 20))},
      {"intermediate_size", arch(integer(c, a.intermediate_size, 1, int64_t{1} << 22))},
      {"num_hidden_layers", arch(integer(c, a.num_hidden_layers, 1, int64_t{1} << 14))},
      {"num_attention_heads", arch(integer(c, a.num_attention_heads, 1, int64_t{1} << 14))},
      {"num_key_value_heads", arch(integer(c, a.num_key_value_heads, 1, int64_t{1} << 14))},
      {"head_dim", arch(integer(c, a.head_dim, 0, int64_t{1} << 16))},
      {"max_position_embeddings", arch(integer(c, a.max_position_embeddings, 1, int64_t{1} << 30))},
      {"rms_norm_eps", arch(number(c, a.rms_norm_eps, 0, 1, true))},
      {"rope_theta", arch(number(c, a.rope_theta, 0, inf, true))},
      {"rope_scaling_type", arch(choice(c, rope_type, {"default", "linear", "llama3"}))},
      {"rope_scaling_factor", arch(number(c, a.rope_scaling.factor, 0, inf, true))},
      {"tie_word_embeddings", arch(boolean(c, a.tie_word_embeddings))},
  };
  auto& op = cfg.optim;
  Section train = {
      {"lr", number(c, op.lr, 0, 1, true)},
      {"min_lr_ratio", number(c, op.min_lr_ratio, 0, 1)},
      {"warmup_ratio", number(c, op.warmup_ratio, 0, 1)},
      {"schedule", choice(c, op.schedule, {"cosine", "linear", "constant"})},
      {"beta1", number(c, op.beta1, 0, 1)},
      {"beta2", number(c, op.beta2, 0, 1)},
      {"eps", number(c, op.eps, 0, 1, true)},
      {"weight_decay", number(c, op.weight_decay, 0, 1)},
      {"grad_clip", number(c, op.grad_clip, 0, inf)},
      {"epochs", integer(c, op.epochs, 1, kMaxCount)},
      {"max_steps", integer(c, op.max_steps, 0, kMaxSteps)},
      {"activation_checkpointing", boolean(c, op.activation_checkpointing)},
      {"dtype", choice(c, op.dtype, {"auto", "fp32", "bf16", "fp64"})},
      {"device", choice(c, op.device, {"auto", "cpu", "cuda"})},
      {"loss_chunk_tokens", integer(c, op.loss_chunk_tokens, 1, kMaxTokens)},
      {"tiled_mlp_tokens", integer(c, op.tiled_mlp_tokens, 0, kMaxTokens)},
      {"offload_activations", boolean(c, op.offload_activations)},
      {"max_bad_steps", integer(c, op.max_bad_steps, 1, kMaxCount)},
      {"seed", integer(c, op.seed, 0)},
      {"lora", lora_section(c, op.lora)},
  };
  Section attention = {{"backend", choice(c, cfg.attention_backend, {"auto", "cuda", "flash", "reference"})},
                       {"deterministic", boolean(c, cfg.attention_deterministic)}};
  Section checkpoint = {{"every_steps", integer(c, cfg.checkpoint.every_steps, 0, kMaxSteps)},
                        {"keep_last", integer(c, cfg.checkpoint.keep_last, 1, kMaxCount)},
                        {"max_shard_mb", integer(c, cfg.checkpoint.max_shard_mb, 1, kMaxCount)},
                        {"at_end", boolean(c, cfg.checkpoint.at_end)}};
  Section output = {{"dir", path(c, cfg.output.dir, base)},
                    {"log_every", integer(c, cfg.output.log_every, 1, kMaxSteps)},
                    {"tensorboard", boolean(c, cfg.output.tensorboard)}};
  Section distributed = {{"zero", integer(c, cfg.distributed.zero, 0, 3)},
                         {"offload_optimizer", boolean(c, cfg.distributed.offload_optimizer)},
                         {"timeout_s", number(c, cfg.distributed.timeout_s, 0, 86400, true)},
                         {"backend", choice(c, cfg.distributed.backend, {"auto", "nccl", "store"})},
                         {"bucket_mb", number(c, cfg.distributed.bucket_mb, 0, 1e6, true)},
                         {"build_concurrency", integer(c, cfg.distributed.build_concurrency, 0, kMaxCount)},
                         {"sequence_parallel", integer(c, cfg.distributed.sequence_parallel, 1, kMaxCount)}};
  const std::map<std::string, const Section*> sections = {{"model", &model},           {"train", &train},
                                                          {"attention", &attention},   {"checkpoint", &checkpoint},
                                                          {"output", &output},         {"distributed", &distributed}};
  std::vector<std::string> names = {"model", "data", "train", "attention", "checkpoint", "output", "distributed"};
  for (const auto& kv : root) {
    if (!kv.first.IsScalar()) throw UsageError(c.where + ": a top-level key is not a plain section name");
    std::string name = kv.first.as<std::string>();
    if (name == "data") {
      check_data_values(c, kv.second);
      data::apply_data_section(kv.second, base, file.string(), cfg.data);
      continue;
    }
    auto it = sections.find(name);
    if (it == sections.end()) {
      std::string near = nearest(name, names);
      throw UsageError(file.string() + ": unknown section '" + name + "'" + (near.empty() ? "" : " (did you mean '" + near + "'?)"));
    }
    apply_section(c, name, kv.second, *it->second);
  }
  a.rope_scaling.type = rope_type;

  resolve_model(file.string(), given, preset, cfg.model);
  model::LlamaConfig check = cfg.model.arch;
  if (check.vocab_size == 0) check.vocab_size = 1;  // filled from the tokenizer at train time
  check.validate(file.string() + ": model");
  if (cfg.optim.lora.enabled()) model::resolve_lora_targets(cfg.model.arch, cfg.optim.lora, file.string() + ": train.lora");
  if (cfg.optim.offload_activations && !cfg.optim.activation_checkpointing && cfg.distributed.zero != 3)
    throw UsageError(file.string() + ": train.offload_activations offloads the inputs that activation checkpointing "
                     "keeps; set train.activation_checkpointing: true (or distributed.zero: 3, which always checkpoints)");
  if (std::string why = sequence_parallel_problem(cfg.model.arch.num_attention_heads, cfg.model.arch.num_key_value_heads,
                                                  cfg.distributed.sequence_parallel);
      !why.empty())
    throw UsageError(file.string() + ": distributed.sequence_parallel: " + why);
  cfg.data.plan.cost = cost_model_for(cfg.model.arch);
  if (require_data && cfg.data.tokenize.inputs.empty() && cfg.data.output.empty())
    throw UsageError(file.string() + ": data needs `inputs` (JSONL to pack) or `pack_dir` (a `longalign pack` output)");
  return cfg;
}

std::string sequence_parallel_problem(int64_t heads, int64_t kv_heads, int n) {
  if (n < 1) return "the degree must be at least 1";
  if (heads % n != 0)
    return "the model's " + std::to_string(heads) + " attention heads do not split over " + std::to_string(n) +
           " ranks; use a degree that divides " + std::to_string(heads);
  if (kv_heads % n != 0 && n % kv_heads != 0)
    return "the model's " + std::to_string(kv_heads) + " key/value heads neither split over " + std::to_string(n) +
           " ranks nor divide " + std::to_string(n) + " (to be replicated); use a degree that divides " +
           std::to_string(kv_heads) + " or a multiple of it";
  return "";
}

void check_data_config(const fs::path& file) {
  const YAML::Node root = load_yaml(file);
  if (root.IsMap() && root["data"]) check_data_values(Ctx{file.string()}, root["data"]);
}

void check_inputs_exist(const TrainConfig& c) {
  auto need = [&](const fs::path& p, const std::string& key) { check_input_file(p, c.source + ": " + key); };
  if (!c.model.path.empty()) need(c.model.path / "config.json", "model.path");
  if (!c.data.tokenizer.empty()) need(c.data.tokenizer, "data.tokenizer");
  for (const auto& in : c.data.tokenize.inputs) need(in, "data.inputs");
  if (c.data.tokenize.inputs.empty()) need(c.data.output / "plan.json", "data.pack_dir");
}

std::string to_yaml(const TrainConfig& c) {
  const auto& a = c.model.arch;
  const auto& o = c.optim;
  std::ostringstream s;
  s << "model:\n";
  // rope_theta below is the resolved base (any rope_theta_scale applied), so reloading this
  // file gives the same model.
  if (!c.model.path.empty()) s << "  path: " << data::yaml_quoted(c.model.path.string()) << "\n";
  s << "  vocab_size: " << a.vocab_size << "\n  hidden_size: " << a.hidden_size
      << "\n  intermediate_size: " << a.intermediate_size << "\n  num_hidden_layers: " << a.num_hidden_layers
      << "\n  num_attention_heads: " << a.num_attention_heads << "\n  num_key_value_heads: " << a.num_key_value_heads
      << "\n  head_dim: " << a.resolved_head_dim() << "\n  max_position_embeddings: " << a.max_position_embeddings
      << "\n  rms_norm_eps: " << a.rms_norm_eps << "\n  rope_theta: " << a.rope_theta
      << "\n  rope_scaling_type: " << a.rope_scaling.type << "\n  rope_scaling_factor: " << a.rope_scaling.factor
      << "\n  tie_word_embeddings: " << (a.tie_word_embeddings ? "true" : "false") << "\n  init_std: " << c.model.init_std
      << "\n";
  s << "data:\n" << data::data_section_yaml(c.data, 2);
  s << "train:\n  lr: " << o.lr << "\n  min_lr_ratio: " << o.min_lr_ratio << "\n  warmup_ratio: " << o.warmup_ratio
    << "\n  schedule: " << o.schedule << "\n  beta1: " << o.beta1 << "\n  beta2: " << o.beta2 << "\n  eps: " << o.eps
    << "\n  weight_decay: " << o.weight_decay << "\n  grad_clip: " << o.grad_clip << "\n  epochs: " << o.epochs
    << "\n  max_steps: " << o.max_steps << "\n  activation_checkpointing: " << (o.activation_checkpointing ? "true" : "false")
    << "\n  dtype: " << o.dtype << "\n  device: " << o.device << "\n  loss_chunk_tokens: " << o.loss_chunk_tokens
    << "\n  tiled_mlp_tokens: " << o.tiled_mlp_tokens
    << "\n  offload_activations: " << (o.offload_activations ? "true" : "false")
    << "\n  max_bad_steps: " << o.max_bad_steps << "\n  seed: " << o.seed << "\n";
  if (o.lora.enabled()) {
    auto list = [](const std::vector<std::string>& v) {
      std::string out = "[";
      for (size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + data::yaml_quoted(v[i]);
      return out + "]";
    };
    s << "  lora:\n    rank: " << o.lora.rank << "\n    alpha: " << o.lora.resolved_alpha()
      << "\n    dropout: " << o.lora.dropout << "\n    target_modules: "
      << (o.lora.target_regex ? data::yaml_quoted(o.lora.target_modules.at(0)) : list(o.lora.target_modules))
      << "\n    modules_to_save: " << list(o.lora.modules_to_save) << "\n";
  }
  s << "attention:\n  backend: " << c.attention_backend
    << "\n  deterministic: " << (c.attention_deterministic ? "true" : "false") << "\n";
  s << "checkpoint:\n  every_steps: " << c.checkpoint.every_steps << "\n  keep_last: " << c.checkpoint.keep_last
    << "\n  max_shard_mb: " << c.checkpoint.max_shard_mb << "\n  at_end: " << (c.checkpoint.at_end ? "true" : "false")
    << "\n";
  s << "output:\n  dir: " << data::yaml_quoted(fs::absolute(c.output.dir).lexically_normal().string()) << "\n  log_every: " << c.output.log_every
    << "\n  tensorboard: " << (c.output.tensorboard ? "true" : "false") << "\n";
  s << "distributed:\n  zero: " << c.distributed.zero
    << "\n  offload_optimizer: " << (c.distributed.offload_optimizer ? "true" : "false") << "\n  timeout_s: " << c.distributed.timeout_s
    << "\n  backend: " << c.distributed.backend << "\n  bucket_mb: " << c.distributed.bucket_mb
    << "\n  build_concurrency: " << c.distributed.build_concurrency
    << "\n  sequence_parallel: " << c.distributed.sequence_parallel << "\n";
  return s.str();
}

}  // namespace longalign::train

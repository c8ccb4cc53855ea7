// Packs the input into a temporary directory (pack strategy, so no padding is computed),
// runs the model without gradients and splits the per-token NLL back into sequences.
#include "longalign/eval/loss_eval.hpp"

#include <torch/torch.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "longalign/core/atomic_file.hpp"
#include "longalign/core/error.hpp"
#include "longalign/data/pack/batch.hpp"
#include "longalign/data/pack/batch_tensors.hpp"
#include "longalign/model/peft_adapter.hpp"
#include "longalign/model/weights.hpp"
#include "longalign/data/pack/pack_reader.hpp"
#include "longalign/data/tokenize/tokenizer.hpp"
#include "longalign/ops/lm_loss.hpp"
#include "longalign/ops/varlen_attention.hpp"

namespace fs = std::filesystem;

namespace longalign::eval {

LossEvalResult run_loss_eval(LossEvalOptions o) {
  auto cfg = model::load_hf_config(o.model_dir / "config.json");
  model::check_weight_shapes(o.model_dir, cfg);
  if (!o.adapter.empty()) model::read_adapter_config(o.adapter);  // before any packing
  if (o.data.tokenizer.empty() && !o.adapter.empty() && fs::exists(data::tokenizer_in(o.adapter)))
    o.data.tokenizer = data::tokenizer_in(o.adapter);
  if (o.data.tokenizer.empty() && fs::exists(data::tokenizer_in(o.model_dir)))
    o.data.tokenizer = data::tokenizer_in(o.model_dir);
  if (!o.output.empty()) check_writable_parent(o.output);

  char tmpl[] = "/tmp/longalign-eval-XXXXXX";
  if (!::mkdtemp(tmpl)) throw RuntimeError("cannot create a temporary directory");
  struct Cleanup {
    fs::path p;
    ~Cleanup() { std::error_code ec; fs::remove_all(p, ec); }
  } cleanup{tmpl};
  o.data.output = cleanup.p / "pack";
  o.data.plan.strategy = data::Strategy::pack;
  o.data.plan.units_per_step = 1;
  o.data.tokenize.progress = false;
  data::run_pack(o.data);
  auto [ds, plan] = data::open_pack(o.data.output, data::Verify::cheap);  // just written: the cheap check
  if (ds.info().vocab_size > cfg.vocab_size)
    throw UsageError("the tokenizer has more tokens than the model's vocab_size " + std::to_string(cfg.vocab_size));

  const bool cuda = o.device == "cuda" || (o.device == "auto" && torch::cuda::is_available());
  const torch::Device dev = cuda ? torch::kCUDA : torch::kCPU;
  model::LlamaForCausalLM m(cfg);
  model::load_hf_weights(*m, o.model_dir);
  if (!o.adapter.empty()) {
    model::load_adapter(*m, o.adapter);
    model::merge_lora(*m);
  }
  m->to(dev, cuda ? torch::kBFloat16 : torch::kFloat);
  m->eval();
  torch::NoGradGuard ng;
  auto attention = [](auto&&... a) { return ops::varlen_attention(a...); };

  std::vector<double> seq_loss(ds.size(), 0.0);
  double total_nll = 0;
  LossEvalResult r;
  for (const auto& step : plan.steps)
    for (const auto& unit : step.units) {
      data::Batch b = data::make_batch(ds, unit, data::Strategy::pack);
      data::BatchTensors t = data::to_tensors(b);
      model::PackedInput in{t.input_ids.to(dev), t.position_ids.to(dev), t.cu_seqlens.to(dev), t.max_seqlen};
      at::Tensor nll = ops::per_token_nll(m->hidden_states(in, attention), m->lm_head_weight(), t.labels.to(dev)).cpu();
      for (size_t k = 0; k < unit.seqs.size(); ++k) {
        const uint32_t i = unit.seqs[k];
        double s = nll.narrow(0, b.cu_seqlens[k], b.cu_seqlens[k + 1] - b.cu_seqlens[k]).sum().item<double>();
        seq_loss[i] = s / ds[i].n_targets;
        total_nll += s;
        r.targets += ds[i].n_targets;
      }
    }
  std::string lines;
  for (size_t i = 0; i < ds.size(); ++i) {
    r.mean_sequence_loss += seq_loss[i];
    if (!o.output.empty())
      lines += nlohmann::json{{"sequence", i}, {"tokens", ds[i].length}, {"targets", ds[i].n_targets},
                              {"loss", seq_loss[i]}, {"ppl", std::exp(seq_loss[i])}}.dump() + "\n";
  }
  // Atomic and checked: a directory, a full disk or a vanished parent fails the run (exit 1)
  // instead of leaving nothing behind under a success.
  if (!o.output.empty()) write_file_atomic(o.output, lines);
  r.sequences = ds.size();
  r.mean_sequence_loss /= double(std::max<size_t>(1, ds.size()));
  r.token_loss = total_nll / double(std::max<uint64_t>(1, r.targets));
  return r;
}

}  // namespace longalign::eval

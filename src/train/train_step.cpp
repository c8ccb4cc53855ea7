// The step function; see the header. Each unit's loss already carries the epoch-normalized
// weights, so summing micro-step losses over units and ranks gives the step loss directly.
#include "longalign/train/train_step.hpp"

#include <torch/torch.h>

#include <cmath>

#include "longalign/data/pack/batch.hpp"
#include "longalign/data/pack/batch_tensors.hpp"

namespace longalign::train {

StepResult train_step(ParallelModel& pm, const StepInputs& in) {
  const data::Plan& plan = *in.plan;
  const int sp = in.sequence_parallel;
  const int rank = in.comm ? in.comm->rank() : 0, dp_world = (in.comm ? in.comm->world() : 1) / sp;
  const auto my_units = data::rank_units(plan, in.plan_step, dp_world, rank / sp);
  // Under lockstep every rank runs the same number of micro-steps: a rank with fewer units than
  // the busiest (a short final step, or a plan that gives ranks different numbers of packs)
  // runs idle ones.
  const size_t micro = pm.lockstep() ? data::step_micro_steps(plan, in.plan_step, dp_world) : my_units.size();
  double loss_sum = 0;
  int64_t tokens = 0;
  for (size_t j = 0; j < micro; ++j) {
    if (j >= my_units.size()) {
      pm.idle_micro_step();
      continue;
    }
    data::Batch b = data::make_batch(*in.ds, plan.steps[in.plan_step].units[my_units[j]], plan.options.strategy, in.pad_id);
    data::BatchTensors t = data::to_tensors(b);
    MicroBatch mb{{t.input_ids.to(in.device), t.position_ids.to(in.device), t.cu_seqlens.to(in.device), t.max_seqlen},
                  t.labels.to(in.device),
                  t.weights.to(in.device)};
    loss_sum += pm.micro_step(mb, j + 1 == my_units.size());
    if (rank % sp == 0) tokens += int64_t(b.input_ids.size());  // a unit counts once in its group
  }
  pm.finish_gradients(!my_units.empty());

  // Loss weights are global, so summing over ranks gives the step's loss and gradient; the stop
  // request travels with them so that every rank stops after the same step.
  StepResult r;
  r.stop_requested = in.stop_requested;
  if (in.comm) {
    at::Tensor t = torch::tensor(std::vector<double>{loss_sum, double(tokens), in.stop_requested ? 1.0 : 0.0}, torch::kDouble);
    in.comm->all_reduce_sum(t);
    loss_sum = t[0].item<double>();
    tokens = int64_t(t[1].item<double>());
    r.stop_requested = t[2].item<double>() > 0;
  }
  r.tokens = tokens;
  r.micro_steps = int64_t(data::step_micro_steps(plan, in.plan_step, dp_world));
  // The weights of a step sum to M/M̄ (see batch_plan.hpp): the logged loss divides by that sum,
  // so it is the step's mean per-sequence (or per-token) loss, comparable across steps.
  double weight_sum = 0;
  for (const auto& u : plan.steps[in.plan_step].units)
    for (size_t k = 0; k < u.seqs.size(); ++k) weight_sum += u.weights[k] * (*in.ds)[u.seqs[k]].n_targets;
  r.loss = loss_sum / weight_sum;
  // The gradient is weight_sum times the step's mean-loss gradient. Clipping it against
  // grad_clip * weight_sum clips that mean exactly as a per-step-normalized trainer would and
  // keeps the M/M̄ scale, so a crowded step is never clipped harder for being crowded (which
  // would undo the equal weight of its sequences). The logged norm is the mean's.
  AdamW& opt = pm.optimizer();
  r.grad_norm = opt.clip_grad_norm(in.grad_clip * weight_sum, in.comm) / weight_sum;
  if (!std::isfinite(r.loss) || !std::isfinite(r.grad_norm)) {
    opt.zero_grad();
    r.skipped = true;
    return r;
  }
  opt.step(in.lr);
  pm.after_update();
  return r;
}

}  // namespace longalign::train

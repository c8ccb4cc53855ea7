// Memory model, per rank. Weights in param_bytes; the low-precision .grad of one micro-step plus
// the fp32 gradient accumulator; fp32 master + two Adam moments (master aliases the weights in
// fp32). Activations per token and layer, in the weight dtype: what autograd keeps for RMSNorm
// (plus its fp32 upcast), q/k/v, attention output, the SwiGLU intermediates and residuals; the
// SwiGLU part counts one chunk when the MLP is tiled (train.tiled_mlp_tokens).
//
// ZeRO-3 follows the trainer's sharded model: parameters in groups (the embedding, each decoder
// layer, the head = final norm + LM head, whose LM head is the embedding group when tied), each
// group flattened and split evenly over the ranks (padded to a multiple of W). A rank keeps its
// shards of the weights, of the fp32 gradient accumulator and (unless offloaded) of the fp32
// master and the moments; full groups exist only while gathered or while their gradients are
// being reduce-scattered. Offload moves master, moments and accumulators to host memory.
// The gather and reduce-scatter schedule modelled here is src/train/sharded_model.cpp's (what is
// prefetched when, how many reduce-scatters in flight): a change there belongs here too.
#include "longalign/train/memory_estimate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "longalign/core/error.hpp"
#include "longalign/train/train_config.hpp"

namespace longalign::train {
namespace {

// Ranks sharing one host's memory: the GPUs of a node, at most the world.
int ranks_per_node(const MemoryInputs& in) { return std::max(1, std::min(in.gpus_per_node, in.world_size)); }

constexpr double kGiB = double(1 << 30);

// Parameter counts of the ZeRO-3 groups.
struct Groups {
  int64_t embed = 0, layer = 0, head = 0;  // head: final norm, plus the LM head when untied
  int64_t layers = 0;
  bool tied = false;
};

Groups groups_of(const model::LlamaConfig& c) {
  Groups g;
  const int64_t vh = c.vocab_size * c.hidden_size;
  g.tied = c.tie_word_embeddings;
  g.embed = vh;
  g.head = c.hidden_size + (g.tied ? 0 : vh);
  g.layers = c.num_hidden_layers;
  // What is left of num_parameters() once the embedding and head are taken out: one formula for
  // the parameter count, so biases and fused projections cannot be counted differently here.
  g.layer = (c.num_parameters() - g.embed - g.head) / g.layers;
  return g;
}

// A group's shard on one rank: the flat group padded to a multiple of W, split evenly.
int64_t shard(int64_t n, int64_t w) { return (n + w - 1) / w; }
int64_t padded(int64_t n, int64_t w) { return shard(n, w) * w; }

}  // namespace

MemoryEstimate estimate_memory(const model::LlamaConfig& c, const MemoryInputs& in) {
  if (in.zero_stage < 0 || in.zero_stage > 3)
    throw UsageError("ZeRO stage " + std::to_string(in.zero_stage) + " does not exist: 0, 1, 2 or 3");
  if (in.world_size < 1) throw UsageError("world size must be at least 1");
  const int sp = std::max(1, in.sequence_parallel);
  const double n = double(c.num_parameters()), pb = double(in.param_bytes), w = double(in.world_size);
  // Under sequence parallelism a rank computes its slice of the micro-step (padded to a multiple
  // of the degree), and after the exchange keeps max(kv heads, degree) / degree kv heads for every
  // token of it (replicated where there are fewer kv heads than ranks): per slice token, that is
  // max(kv heads, degree) heads' worth (the model's kv heads without it).
  const double kv_rank = double(std::max<int64_t>(c.num_key_value_heads, sp) * c.resolved_head_dim());
  const double h = double(c.hidden_size), inter = double(c.intermediate_size);
  const double t = std::ceil(double(in.tokens) / sp);
  const bool z3 = in.zero_stage == 3;
  MemoryEstimate e;
  if (in.world_size % sp != 0)
    e.invalid = "sequence parallelism over " + std::to_string(sp) + " ranks needs a world size that is a multiple of it";
  else if (std::string why = sequence_parallel_problem(c.num_attention_heads, c.num_key_value_heads, sp); !why.empty())
    e.invalid = "sequence parallelism: " + why;
  e.offload = in.offload_optimizer;
  e.offload_activations = in.offload_activations && (in.checkpointing || z3);
  e.ranks_per_node = ranks_per_node(in);
  if (z3 && !in.checkpointing && e.invalid.empty())
    e.invalid = "ZeRO-3 recomputes each layer in backward (gathering it again), so it always trains as with activation checkpointing on";

  // Parameters a rank owns: everything below ZeRO-3; its shard of each group at ZeRO-3.
  const Groups g = groups_of(c);
  const int64_t wi = in.world_size;
  const double owned = z3 ? double(shard(g.embed, wi) + g.layers * shard(g.layer, wi) + shard(g.head, wi)) : n;
  // LoRA: what trains (gets a gradient, a master and moments), and the adapters' own weights.
  const bool lora = in.lora_trained > 0;
  const double trained = lora ? double(in.lora_trained) : n, adapter = double(in.lora_adapter);
  const double trained_owned = !z3 ? trained : lora ? trained / w : owned;  // full SFT: the padded shards

  if (z3) {
    // Gathered buffers hold the padded group (shard x W). What is live at once: the embedding and
    // the first layer (prefetched); a layer and the next one (forward) or the previous one
    // (backward); the head with the last layer prefetched for backward, plus the embedding when
    // tied (it is the LM head).
    const double emb = double(padded(g.embed, wi)), lay = double(padded(g.layer, wi)), head = double(padded(g.head, wi));
    const double at_head = head + (g.tied ? emb : 0.0) + lay;
    // A world of one gathers nothing: its shards are the whole groups.
    e.weights_gathered = wi == 1 ? 0.0 : pb * std::max({g.layers >= 2 ? 2.0 * lay : 0.0, emb + lay, at_head});
    e.weights = owned * pb + e.weights_gathered + adapter * pb / w;
    // Backward: one group's low-precision gradients (at the head: the head's, plus the
    // embedding's when tied), flattened into an fp32 buffer of the padded group. make_room() keeps
    // at most one reduce-scatter in flight while the next buffer is made, so two flat buffers
    // coexist, and each in-flight job holds an fp32 output of one shard. They are on
    // the GPU with or without offload: NCCL reduces there.
    // Under LoRA only trained parameters get a .grad: at most all of them in one group.
    const double lowp_all = double(std::max(g.layer, g.head + (g.tied ? g.embed : 0)));
    const double lowp = lora ? std::min(lowp_all, trained) : lowp_all;
    const int64_t big = std::max({g.layer, g.embed, g.head});
    // A world of one adds each group's .grad to its accumulator directly: two groups' in flight
    // while backward produces a third; the embedding's gradient is gathered from the token
    // gradients into one fp32 buffer at the end of backward, the first layer's .grad in flight.
    const auto grads_of = [&](int64_t params) { return lora ? std::min(double(params), trained) : double(params); };
    e.grad_buffers = wi == 1 ? std::max(3.0 * lowp * pb, grads_of(g.embed) * 4.0 + grads_of(g.layer) * pb)
                             : lowp * pb + 2.0 * double(padded(big, wi)) * 4.0 + 1.0 * double(shard(big, wi)) * 4.0;
  } else {
    e.weights = (n + adapter) * pb;
    e.grad_buffers = trained * pb;  // the whole low-precision .grad of a micro-step (frozen: none)
  }
  e.grads = e.grad_buffers;

  // fp32 state (fp64 for fp64 weights): master (none for weights already in that dtype, which are
  // their own master; offloaded, the CPU update needs a copy of its own), two moments, the
  // gradient accumulator.
  const double sb = std::max(4.0, pb);
  const double opt_div = z3 ? 1.0 : (in.zero_stage >= 1 ? w : 1.0);
  const double acc_div = z3 ? 1.0 : (in.zero_stage >= 2 ? w : 1.0);
  // ZeRO-3 keeps a gradient shard for the whole group (frozen parts stay zero) under LoRA too.
  const double master = (pb == sb && !in.offload_optimizer) ? 0.0 : trained_owned * sb / opt_div;
  const double moments = trained_owned * 2.0 * sb / opt_div;
  const double grad_acc = (z3 ? owned : trained) * sb / acc_div;
  if (in.offload_optimizer) {
    e.host_master = master;
    e.host_moments = moments;
    e.host_grad_acc = grad_acc;
  } else {
    e.grads += grad_acc;
    e.optimizer = master + moments;
  }

  // A layer's activations per token while it runs with a graph (the recompute of a checkpointed
  // layer), in two parts. The MLP's: gate, up, silu(gate) and their product (4 x intermediate),
  // plus LoRA dropout's mask and dropped input of each adapted MLP projection. The rest, as the
  // layer's autograd Functions keep it: the two norms' outputs and the residual (3 x hidden),
  // rotated q and k, v and the attention output (2 q + 2 kv), one fp32 rstd per norm and log-sum-
  // exp per head; the gradients in flight while attention runs backward (hidden + q + 2 kv); A(x)
  // of every adapter and the attention projections' dropout (model/rms_norm.hpp, rope.hpp: the
  // norms and RoPE keep only their inputs, whoever else keeps them).
  const double q = double(c.num_attention_heads * c.resolved_head_dim()), sb_act = pb > 4 ? pb : 4.0;
  const double per_token_mlp = pb * (4 * inter + 2.0 * double(in.lora_dropout_mlp_width));
  // Sequence parallelism adds the exchange's buffers: q, k and v (or the output and its gradient)
  // in their sent and received layouts, one of the two alive beside what attention keeps.
  const double per_token_rest = pb * (4 * h + 3 * q + 4 * kv_rank + double(in.lora_rank_per_layer) +
                                      2.0 * double(in.lora_dropout_attn_width) + (sp > 1 ? q + 2 * kv_rank : 0.0)) +
                                sb_act * double(2 + c.num_attention_heads);
  // Tiled (ops/tiled_mlp.hpp), the MLP keeps only its input (the post-attention norm's output,
  // counted in the rest) and its intermediates exist for one chunk at a time, in its forward
  // and while its backward recomputes that chunk.
  const bool tiled = in.tiled_mlp_tokens > 0;
  const double mlp_live = (tiled ? std::min(t, double(in.tiled_mlp_tokens)) : t) * per_token_mlp;
  const double layers = double(c.num_hidden_layers);
  // Checkpointed: every layer's input is kept, and one layer's activations exist while it is
  // recomputed for its backward. ZeRO-3 always runs that way. Offloaded, the inputs wait in host
  // memory and the GPU holds two: the layer's being recomputed and the next one's, prefetched.
  // Otherwise every layer keeps its own (its MLP's too, unless tiled).
  const double inputs = layers * t * h * pb;
  if (e.offload_activations) e.host_activations = inputs;
  if (e.uses_host()) e.host_overhead = kHostOverheadPerRank;
  e.activations = (in.checkpointing || z3) ? (e.offload_activations ? 2 * t * h * pb : inputs) + t * per_token_rest + mlp_live
                                           : layers * t * (per_token_rest + h * pb) + (tiled ? mlp_live : layers * mlp_live);
  e.logits = 2.0 * double(in.loss_chunk_tokens) * double(c.vocab_size) * 4.0;  // logits + softmax grad, fp32
  // CUDA context, allocator slack, the hidden-sized tensors of the layer running backward (its
  // gradient in and out, its output, the embedding's); ZeRO-3 frees the recomputed output before
  // the layer's backward runs (sharded_model.cpp).
  e.workspace = 1.5 * kGiB + t * h * pb * (z3 ? 3 : 4);
  return e;
}

std::string MemoryEstimate::table() const {
  char buf[1024];
  std::string s;
  if (weights_gathered > 0)
    std::snprintf(buf, sizeof buf, "  weights      %8.2f GiB  (shard %.2f + gathered %.2f)\n", weights / kGiB,
                  (weights - weights_gathered) / kGiB, weights_gathered / kGiB);
  else
    std::snprintf(buf, sizeof buf, "  weights      %8.2f GiB\n", weights / kGiB);
  s += buf;
  std::snprintf(buf, sizeof buf,
                "  gradients    %8.2f GiB\n  optimizer    %8.2f GiB\n"
                "  activations  %8.2f GiB\n  logits chunk %8.2f GiB\n  workspace    %8.2f GiB\n  total        %8.2f GiB\n",
                grads / kGiB, optimizer / kGiB, activations / kGiB, logits / kGiB, workspace / kGiB, total() / kGiB);
  s += buf;
  if (uses_host()) {
    s += std::string("  host memory (") + (offload && offload_activations ? "optimizer and activations offloaded"
                                           : offload                     ? "optimizer offloaded"
                                                                         : "activations offloaded") + "):\n";
    if (offload) {
      std::snprintf(buf, sizeof buf, "    fp32 master       %8.2f GiB\n    Adam moments      %8.2f GiB\n"
                    "    grad accumulator  %8.2f GiB\n", host_master / kGiB, host_moments / kGiB, host_grad_acc / kGiB);
      s += buf;
    }
    if (offload_activations) {
      std::snprintf(buf, sizeof buf, "    layer inputs      %8.2f GiB\n", host_activations / kGiB);
      s += buf;
    }
    std::snprintf(buf, sizeof buf, "    process, staging  %8.2f GiB\n    per rank          %8.2f GiB\n",
                  host_overhead / kGiB, host_per_rank() / kGiB);
    s += buf;
    const std::string per_node = "per node, " + std::to_string(ranks_per_node) + (ranks_per_node == 1 ? " rank" : " ranks");
    std::snprintf(buf, sizeof buf, "    %-18s%8.2f GiB\n", per_node.c_str(), host_per_node() / kGiB);
    s += buf;
  }
  return s;
}

std::string fit_verdict(const MemoryEstimate& e, const MemoryLimits& limits) {
  char buf[256];
  std::string shortfall;
  if (limits.gpu_bytes > 0 && e.total() > limits.gpu_bytes) {
    std::snprintf(buf, sizeof buf, "GPU memory %.1f GB > %.1f GB", e.total() / 1e9, limits.gpu_bytes / 1e9);
    shortfall = buf;
  }
  if (e.uses_host() && limits.host_bytes > 0 && e.host_per_node() > limits.host_bytes) {
    std::snprintf(buf, sizeof buf, "host memory %.1f GB per node > %.1f GB", e.host_per_node() / 1e9,
                  limits.host_bytes / 1e9);
    shortfall += (shortfall.empty() ? "" : "; ") + std::string(buf);
  }
  if (!shortfall.empty()) return "does NOT fit: " + shortfall;
  if (limits.gpu_bytes <= 0) return e.uses_host() && limits.host_bytes > 0 ? "host memory suffices (GPU memory not known)" : "";
  if (e.uses_host() && limits.host_bytes <= 0) return "fits (GPU; host memory not checked: --host-memory)";
  return "fits";
}

std::string memory_plan(const model::LlamaConfig& arch, MemoryInputs in, const std::vector<int>& stages,
                        const std::vector<bool>& checkpointing, const MemoryLimits& limits) {
  std::string s = startup_line(arch.num_parameters(), ranks_per_node(in), limits.host_bytes, in.build_concurrency);
  char buf[512];
  if (in.tiled_mlp_tokens > 0)
    std::snprintf(buf, sizeof buf, "MLP tiled in chunks of %lld tokens (train.tiled_mlp_tokens): its intermediates count one chunk\n",
                  (long long)in.tiled_mlp_tokens);
  else
    std::snprintf(buf, sizeof buf, "MLP untiled (train.tiled_mlp_tokens 0): its intermediates count the whole micro-step\n");
  s += buf;
  if (in.sequence_parallel > 1) {
    std::snprintf(buf, sizeof buf,
                  "sequence parallel over %d ranks (distributed.sequence_parallel): each computes %lld of the micro-step's "
                  "%lld tokens\n",
                  in.sequence_parallel, (long long)((in.tokens + in.sequence_parallel - 1) / in.sequence_parallel),
                  (long long)in.tokens);
    s += buf;
  }
  if (in.offload_activations)
    s += "layer inputs offloaded (train.offload_activations): host memory keeps them, the GPU two at a time\n";
  if (in.offload_optimizer) {
    const int per_node = ranks_per_node(in);
    if (limits.host_bytes > 0)
      std::snprintf(buf, sizeof buf,
                    "optimizer offloaded: fp32 master, Adam moments and gradient accumulators in host memory; "
                    "%d rank%s per node, host memory %.1f GB per node (%s)\n",
                    per_node, per_node == 1 ? "" : "s", limits.host_bytes / 1e9, limits.host_source.c_str());
    else
      std::snprintf(buf, sizeof buf,
                    "optimizer offloaded: fp32 master, Adam moments and gradient accumulators in host memory; "
                    "%d rank%s per node; host memory not checked (give the training nodes' with --host-memory)\n",
                    per_node, per_node == 1 ? "" : "s");
    s += buf;
  }
  for (bool ckpt : checkpointing) {
    in.checkpointing = ckpt;
    for (int z : stages) {
      in.zero_stage = z;
      const MemoryEstimate e = estimate_memory(arch, in);
      const char* onoff = ckpt ? "on" : "off";
      if (!e.invalid.empty()) {
        std::snprintf(buf, sizeof buf, "\nZeRO-%d, activation checkpointing %s: not possible: %s\n", z, onoff,
                      e.invalid.c_str());
        s += buf;
        continue;
      }
      std::string verdict = fit_verdict(e, limits);
      if (in.lora_trained > 0) {
        MemoryInputs full = in;
        full.lora_trained = full.lora_adapter = full.lora_rank_per_layer = 0;
        full.lora_dropout_attn_width = full.lora_dropout_mlp_width = 0;
        std::snprintf(buf, sizeof buf, "%s(full SFT: %.1f GB)", verdict.empty() ? "" : " ", estimate_memory(arch, full).total() / 1e9);
        verdict += buf;
      }
      if (e.uses_host())
        std::snprintf(buf, sizeof buf, "\nZeRO-%d, activation checkpointing %s: %.1f GB per GPU, %.1f GB host per node%s%s\n",
                      z, onoff, e.total() / 1e9, e.host_per_node() / 1e9, verdict.empty() ? "" : " -> ", verdict.c_str());
      else
        std::snprintf(buf, sizeof buf, "\nZeRO-%d, activation checkpointing %s: %.1f GB%s%s\n", z, onoff,
                      e.total() / 1e9, verdict.empty() ? "" : " -> ", verdict.c_str());
      s += buf;
      s += e.table();
    }
  }
  return s;
}

int64_t max_tokens_that_fit(const model::LlamaConfig& c, MemoryInputs in, const MemoryLimits& limits) {
  auto fits = [&](int64_t tokens) {
    in.tokens = tokens;
    const MemoryEstimate e = estimate_memory(c, in);
    return e.invalid.empty() && (limits.gpu_bytes <= 0 || e.total() <= limits.gpu_bytes) &&
           (!e.uses_host() || limits.host_bytes <= 0 || e.host_per_node() <= limits.host_bytes);
  };
  // Memory grows with tokens, so the largest fitting multiple of 1024 is found by bisection.
  int64_t lo = 0, hi = int64_t(1) << 16;  // in units of 1024 tokens: up to 64M tokens
  if (!fits(1024)) return 0;
  lo = 1;
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    (fits(mid * 1024) ? lo : hi) = mid;
  }
  return lo * 1024;
}

std::string max_tokens_plan(const model::LlamaConfig& arch, const MemoryInputs& in, const std::vector<int>& stages,
                            const MemoryLimits& limits) {
  // The configuration, then each memory option it lacks added in turn (the order a user would
  // reach for them: free, then host memory per GPU, then the optimizer's host memory).
  struct Variant {
    std::string name;
    MemoryInputs in;
  };
  std::vector<Variant> variants = {{"as configured", in}};
  MemoryInputs next = in;
  next.checkpointing = true;
  if (next.tiled_mlp_tokens == 0) {
    next.tiled_mlp_tokens = 8192;
    variants.push_back({"+ tiled MLP (8192)", next});
  }
  if (!next.offload_activations) {
    next.offload_activations = true;
    variants.push_back({"+ activation offload", next});
  }
  if (!next.offload_optimizer) {
    next.offload_optimizer = true;
    variants.push_back({"+ optimizer offload", next});
  }
  // Last, sequence parallelism over a node's ranks: the largest degree the heads and world take.
  if (next.sequence_parallel == 1)
    for (int d = ranks_per_node(in); d > 1; --d)
      if (in.world_size % d == 0 && sequence_parallel_problem(arch.num_attention_heads, arch.num_key_value_heads, d).empty()) {
        next.sequence_parallel = d;
        variants.push_back({"+ Ulysses SP (" + std::to_string(d) + ")", next});
        break;
      }
  auto k = [](int64_t t) { return t == 0 ? std::string("none") : std::to_string(t / 1024) + "K"; };
  char buf[256];
  std::snprintf(buf, sizeof buf, "longest micro-step that fits %.0f GB per GPU%s, in tokens (K = 1024):\n",
                limits.gpu_bytes / 1e9, limits.host_bytes > 0 ? " and the host memory given" : "");
  std::string s = buf;
  std::string head = "  " + std::string(8, ' ');
  for (const auto& v : variants) {
    std::snprintf(buf, sizeof buf, " %22s", v.name.c_str());
    head += buf;
  }
  s += head + "\n";
  for (int z : stages) {
    std::snprintf(buf, sizeof buf, "  ZeRO-%d  ", z);
    std::string row = buf;
    for (auto v : variants) {
      v.in.zero_stage = z;
      const int64_t t = max_tokens_that_fit(arch, v.in, limits);
      std::string cell = k(t);
      if (t > 0) {
        v.in.tokens = t;
        const MemoryEstimate e = estimate_memory(arch, v.in);
        if (e.uses_host()) cell += " (" + std::to_string(int(std::lround(e.host_per_node() / 1e9))) + " GB host)";
      }
      std::snprintf(buf, sizeof buf, " %22s", cell.c_str());
      row += buf;
    }
    s += row + "\n";
  }
  s += "host: per node, for " + std::to_string(ranks_per_node(in)) + (ranks_per_node(in) == 1 ? " rank" : " ranks") +
       " (--gpus-per-node); checkpointing on in every column after the first\n";
  if (variants.back().in.sequence_parallel > 1)
    s += "SP: each micro-step split over " + std::to_string(variants.back().in.sequence_parallel) +
         " ranks of a node (distributed.sequence_parallel), each holding its slice of the tokens\n";
  return s;
}

MemoryInputs memory_inputs(const TrainConfig& cfg, int world_size, int gpus_per_node) {
  const auto& d = cfg.data.plan;
  MemoryInputs in;
  in.tokens = d.strategy == data::Strategy::pack ? d.max_tokens : d.max_tokens * d.batch_size;
  in.param_bytes = cfg.optim.dtype == "fp64" ? 8 : cfg.optim.dtype == "fp32" ? 4 : 2;
  in.loss_chunk_tokens = cfg.optim.loss_chunk_tokens;
  in.checkpointing = cfg.optim.activation_checkpointing;
  in.world_size = world_size;
  in.zero_stage = cfg.distributed.zero;
  in.offload_optimizer = cfg.distributed.offload_optimizer;
  in.build_concurrency = cfg.distributed.build_concurrency;
  in.gpus_per_node = gpus_per_node > 0 ? gpus_per_node : std::min(world_size, 8);
  if (cfg.optim.lora.enabled()) {
    const auto counts = model::lora_parameter_counts(cfg.model.arch, cfg.optim.lora);
    in.lora_trained = counts.total();
    in.lora_adapter = counts.adapter;
    const auto& a = cfg.model.arch;
    const auto targets = model::resolve_lora_targets(a, cfg.optim.lora, "train.lora");
    in.lora_rank_per_layer = cfg.optim.lora.rank * int64_t(targets.adapted.size()) / a.num_hidden_layers;
    auto ends = [](const std::string& s, const std::string& tail) {
      return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
    };
    int64_t attn = 0, mlp = 0;
    for (const auto& name : targets.adapted) {
      if (ends(name, "o_proj")) attn += a.num_attention_heads * a.resolved_head_dim();
      else if (ends(name, "q_proj") || ends(name, "k_proj") || ends(name, "v_proj")) attn += a.hidden_size;
      else if (ends(name, "down_proj")) mlp += a.intermediate_size;
      else mlp += a.hidden_size;  // gate_proj, up_proj, gate_up_proj (one mask for its parts)
    }
    if (cfg.optim.lora.dropout > 0) {
      in.lora_dropout_attn_width = attn / a.num_hidden_layers;
      in.lora_dropout_mlp_width = mlp / a.num_hidden_layers;
    }
  }
  in.tiled_mlp_tokens = cfg.optim.tiled_mlp_tokens;
  in.offload_activations = cfg.optim.offload_activations;
  in.sequence_parallel = cfg.distributed.sequence_parallel;
  return in;
}

int build_ranks_at_once(double host_bytes, int64_t params, int configured) {
  if (configured > 0) return configured;
  if (host_bytes <= 0) return 0;
  const double copy = kStartupBytesPerParam * double(params);
  return int(std::clamp(std::floor(0.5 * host_bytes / copy), 1.0, 1e6));
}

std::string startup_line(int64_t params, int ranks_per_node, double host_bytes, int configured) {
  const double copy = kStartupBytesPerParam * double(params);
  const int at_once = build_ranks_at_once(host_bytes, params, configured);
  char buf[384];
  if (at_once == 0) {
    std::snprintf(buf, sizeof buf,
                  "start-up: each rank builds the full model on the host first (%.1f GB: fp32 weights and a 16-bit load "
                  "buffer); %d at once need %.1f GB per node (give --host-memory to plan the turns)\n",
                  copy / 1e9, ranks_per_node, copy * ranks_per_node / 1e9);
  } else {
    const int k = std::min(at_once, ranks_per_node), waves = (ranks_per_node + k - 1) / k;
    std::snprintf(buf, sizeof buf,
                  "start-up: each rank builds the full model on the host first (%.1f GB: fp32 weights and a 16-bit load "
                  "buffer); %d of this node's %d at a time, %d wave%s, %.1f GB%s\n",
                  copy / 1e9, k, ranks_per_node, waves, waves == 1 ? "" : "s", copy * k / 1e9,
                  copy > host_bytes && host_bytes > 0 ? " -> does NOT fit: one copy exceeds the host memory" : "");
  }
  return buf;
}

double host_memory_total() {
  double total = 0;
  std::ifstream f("/proc/meminfo");
  std::string line;
  while (std::getline(f, line)) {
    std::istringstream ls(line);
    std::string key, unit;
    double kb = 0;
    if (ls >> key >> kb >> unit && key == "MemTotal:") total = unit == "kB" ? kb * 1024.0 : 0.0;
  }
  // Under Slurm or Kubernetes the job's cgroup limit, not the machine, is what can be used:
  // cgroup v2's memory.max ("max" when unlimited), else v1's limit (a huge number when unlimited).
  for (const char* path : {"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}) {
    std::ifstream c(path);
    double limit = 0;
    if (c >> limit && limit > 0 && (total == 0 || limit < total)) total = limit;
  }
  return total;
}

}  // namespace longalign::train

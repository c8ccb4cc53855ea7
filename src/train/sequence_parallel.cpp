// Ulysses slicing and the attention exchange; see the header.
#include "longalign/train/sequence_parallel.hpp"

#include <torch/torch.h>

namespace longalign::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::variable_list;

struct Group : torch::CustomClassHolder {
  std::shared_ptr<Collectives> comm;
};

// [S, H, D] on each of n ranks (rank j holding tokens j*S..) -> [n*S, H/n, D]: every token, the
// rank's block of H/n heads. Chunk j of the exchange is head block j of this rank's tokens.
at::Tensor seq_to_heads(const at::Tensor& x, Collectives& c) {
  const int64_t n = c.world(), s = x.size(0), h = x.size(1), d = x.size(2);
  at::Tensor in = x.reshape({s, n, h / n, d}).permute({1, 0, 2, 3}).contiguous();
  at::Tensor out = at::empty_like(in);
  c.all_to_all(out, in);
  return out.view({n * s, h / n, d});
}

// The inverse: [n*S, H/n, D] -> [S, H, D]; chunk j goes back to rank j, the owner of those tokens.
at::Tensor heads_to_seq(const at::Tensor& y, Collectives& c) {
  const int64_t n = c.world(), s = y.size(0) / n, hb = y.size(1), d = y.size(2);
  at::Tensor in = y.contiguous();
  at::Tensor out = at::empty_like(in);
  c.all_to_all(out, in);  // [n (head block), S, H/n, D]
  return out.view({n, s, hb, d}).permute({1, 0, 2, 3}).reshape({s, n * hb, d});
}

// Each exchange's gradient is the other exchange of the incoming gradient.
struct SeqToHeads : torch::autograd::Function<SeqToHeads> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& x, c10::intrusive_ptr<Group> g) {
    ctx->saved_data["g"] = c10::IValue::make_capsule(g);
    return seq_to_heads(x, *g->comm);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto g = c10::static_intrusive_pointer_cast<Group>(ctx->saved_data["g"].toCapsule());
    return {heads_to_seq(grad[0], *g->comm), at::Tensor()};
  }
};

struct HeadsToSeq : torch::autograd::Function<HeadsToSeq> {
  static at::Tensor forward(AutogradContext* ctx, const at::Tensor& y, c10::intrusive_ptr<Group> g) {
    ctx->saved_data["g"] = c10::IValue::make_capsule(g);
    return heads_to_seq(y, *g->comm);
  }
  static variable_list backward(AutogradContext* ctx, variable_list grad) {
    auto g = c10::static_intrusive_pointer_cast<Group>(ctx->saved_data["g"].toCapsule());
    return {seq_to_heads(grad[0], *g->comm), at::Tensor()};
  }
};

}  // namespace

MicroBatch slice_for_rank(const MicroBatch& full, int n, int r) {
  const int64_t t = full.in.input_ids.size(0), padded = (t + n - 1) / n * n, pad = padded - t, s = padded / n;
  MicroBatch b = full;
  if (pad > 0) {
    auto like = [&](const at::Tensor& x) { return x.options(); };
    b.in.input_ids = torch::cat({full.in.input_ids, torch::zeros({pad}, like(full.in.input_ids))});
    b.in.position_ids = torch::cat({full.in.position_ids, torch::arange(pad, like(full.in.position_ids))});
    b.labels = torch::cat({full.labels, torch::full({pad}, -100, like(full.labels))});
    b.weights = torch::cat({full.weights, torch::zeros({pad}, like(full.weights))});
    b.in.cu_seqlens = torch::cat({full.in.cu_seqlens, torch::full({1}, padded, like(full.in.cu_seqlens))});
    b.in.max_seqlen = std::max(full.in.max_seqlen, pad);
  }
  b.in.input_ids = b.in.input_ids.narrow(0, r * s, s);
  b.in.position_ids = b.in.position_ids.narrow(0, r * s, s);
  b.labels = b.labels.narrow(0, r * s, s);
  b.weights = b.weights.narrow(0, r * s, s);
  return b;
}

model::AttentionFn ulysses_attention(model::AttentionFn inner, std::shared_ptr<Collectives> group) {
  auto g = c10::make_intrusive<Group>();
  g->comm = std::move(group);
  return [inner = std::move(inner), g](const at::Tensor& q, const at::Tensor& k, const at::Tensor& v,
                                       const at::Tensor& cu, int64_t max_len, double scale) {
    const int64_t n = g->comm->world(), kv = k.size(1);
    at::Tensor kr = k, vr = v;
    if (kv % n != 0) {  // n is a multiple of kv (sequence_parallel_problem)
      kr = k.repeat_interleave(n / kv, 1);
      vr = v.repeat_interleave(n / kv, 1);
    }
    at::Tensor o = inner(SeqToHeads::apply(q, g), SeqToHeads::apply(kr, g), SeqToHeads::apply(vr, g), cu, max_len, scale);
    return HeadsToSeq::apply(o, g);
  };
}

}  // namespace longalign::train

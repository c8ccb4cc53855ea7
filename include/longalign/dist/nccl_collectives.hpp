// Collectives over c10d's ProcessGroupNCCL (rendezvous through a TCPStore), one GPU per rank.
// Built only when the CUDA toolkit and NCCL headers are found.
#pragma once
#include <memory>

#include "longalign/dist/dist_env.hpp"
#include "longalign/train/collectives.hpp"

namespace longalign::dist {

std::shared_ptr<train::Collectives> make_nccl_collectives(const DistEnv& env, double timeout_s);

}  // namespace longalign::dist

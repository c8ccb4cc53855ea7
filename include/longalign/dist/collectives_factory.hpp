// Picks the collectives backend for a run: NCCL (ProcessGroupNCCL) for GPU training when this
// build has it, the TCPStore backend otherwise. Also selects cuda:LOCAL_RANK for the process.
#pragma once
#include <memory>
#include <string>

#include "longalign/dist/dist_env.hpp"
#include "longalign/train/collectives.hpp"

namespace longalign::dist {

// backend: "auto" | "store" | "nccl"; `cuda` says whether training runs on GPUs.
std::shared_ptr<train::Collectives> make_collectives(const DistEnv& env, const std::string& backend, bool cuda,
                                                     double timeout_s);

bool built_with_nccl();

}  // namespace longalign::dist

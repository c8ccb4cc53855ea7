// Collectives over a c10d TCPStore (rendezvous at MASTER_ADDR:MASTER_PORT, rank 0 hosts it):
// every rank publishes its buffer under a key and reads the others', summing in rank order.
// O(world x size) traffic through one server: meant for CPU training and tests (the role Gloo
// has in PyTorch; Gloo's C++ headers are not shipped with the pip wheel). Any wait longer than
// `timeout_s` fails with an error naming the operation, so a dead or hung peer never hangs us.
#pragma once
#include <memory>

#include "longalign/dist/dist_env.hpp"
#include "longalign/train/collectives.hpp"

namespace longalign::dist {

std::shared_ptr<train::Collectives> make_store_collectives(const DistEnv& env, double timeout_s);

}  // namespace longalign::dist

// Backend choice; see the header.
#include "longalign/dist/collectives_factory.hpp"

#include "longalign/core/error.hpp"
#include "longalign/dist/store_collectives.hpp"
#ifdef LONGALIGN_HAVE_NCCL
#include "longalign/dist/nccl_collectives.hpp"
#endif

namespace longalign::dist {

bool built_with_nccl() {
#ifdef LONGALIGN_HAVE_NCCL
  return true;
#else
  return false;
#endif
}

std::shared_ptr<train::Collectives> make_collectives(const DistEnv& env, const std::string& backend, bool cuda,
                                                     double timeout_s) {
  const bool nccl = backend == "nccl" || (backend == "auto" && cuda && built_with_nccl());
  if (!nccl) return make_store_collectives(env, timeout_s);
#ifdef LONGALIGN_HAVE_NCCL
  if (!cuda) throw UsageError("distributed.backend nccl needs train.device cuda");
  return make_nccl_collectives(env, timeout_s);
#else
  throw UsageError("distributed.backend nccl: this build has no NCCL (CUDA toolkit and nccl.h were not found)");
#endif
}

}  // namespace longalign::dist

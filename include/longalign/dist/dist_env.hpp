// Who this process is in a multi-process job, from the launcher's environment: torchrun's
// (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), Slurm's
// (SLURM_PROCID, SLURM_LOCALID, SLURM_NTASKS, first host of SLURM_JOB_NODELIST) or Open MPI's
// (OMPI_COMM_WORLD_RANK, _LOCAL_RANK, _SIZE, _LOCAL_SIZE).
#pragma once
#include <map>
#include <string>

namespace longalign::dist {

struct DistEnv {
  int rank = 0, local_rank = 0, world_size = 1, local_world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  std::string source = "none";  // torchrun | slurm | openmpi | none
  bool distributed() const { return world_size > 1; }
};

// `env` defaults to the process environment. UsageError on inconsistent values.
DistEnv read_dist_env();
DistEnv read_dist_env(const std::map<std::string, std::string>& env);

// The first host of a Slurm node list: "gpu[03-05,09],cpu1" -> "gpu03".
std::string first_slurm_host(const std::string& nodelist);

}  // namespace longalign::dist

// Launcher environment parsing; torchrun's variables win, then Slurm's, then Open MPI's.
#include "longalign/dist/dist_env.hpp"

#include <cstdlib>

#include "longalign/core/error.hpp"

extern char** environ;

namespace longalign::dist {
namespace {

int to_int(const std::map<std::string, std::string>& env, const std::string& key, int fallback) {
  auto it = env.find(key);
  if (it == env.end() || it->second.empty()) return fallback;
  try {
    size_t used = 0;
    int v = std::stoi(it->second, &used);
    if (used != it->second.size()) throw std::invalid_argument("trailing characters");
    return v;
  } catch (const std::exception&) {
    throw UsageError("environment variable " + key + "=" + it->second + " is not an integer");
  }
}

std::string get(const std::map<std::string, std::string>& env, const std::string& key, const std::string& fallback) {
  auto it = env.find(key);
  return it == env.end() || it->second.empty() ? fallback : it->second;
}

}  // namespace

std::string first_slurm_host(const std::string& list) {
  size_t end = list.find_first_of(",[");
  std::string prefix = list.substr(0, end);
  if (end == std::string::npos || list[end] == ',') return prefix;
  size_t close = list.find(']', end);
  std::string range = list.substr(end + 1, close - end - 1);
  return prefix + range.substr(0, range.find_first_of(",-"));
}

DistEnv read_dist_env(const std::map<std::string, std::string>& env) {
  DistEnv d;
  if (env.count("WORLD_SIZE") || env.count("RANK")) {
    d.source = "torchrun";
    d.rank = to_int(env, "RANK", 0);
    d.world_size = to_int(env, "WORLD_SIZE", 1);
    d.local_rank = to_int(env, "LOCAL_RANK", d.rank);
    d.local_world_size = to_int(env, "LOCAL_WORLD_SIZE", d.world_size);
  } else if (env.count("SLURM_PROCID")) {
    d.source = "slurm";
    d.rank = to_int(env, "SLURM_PROCID", 0);
    d.world_size = to_int(env, "SLURM_NTASKS", 1);
    d.local_rank = to_int(env, "SLURM_LOCALID", 0);
    d.local_world_size = to_int(env, "SLURM_NTASKS_PER_NODE", d.world_size);
    d.master_addr = first_slurm_host(get(env, "SLURM_JOB_NODELIST", get(env, "SLURM_NODELIST", "127.0.0.1")));
  } else if (env.count("OMPI_COMM_WORLD_RANK")) {
    d.source = "openmpi";
    d.rank = to_int(env, "OMPI_COMM_WORLD_RANK", 0);
    d.world_size = to_int(env, "OMPI_COMM_WORLD_SIZE", 1);
    d.local_rank = to_int(env, "OMPI_COMM_WORLD_LOCAL_RANK", 0);
    d.local_world_size = to_int(env, "OMPI_COMM_WORLD_LOCAL_SIZE", d.world_size);
  }
  d.master_addr = get(env, "MASTER_ADDR", d.master_addr);
  d.master_port = to_int(env, "MASTER_PORT", d.master_port);
  if (d.world_size < 1 || d.rank < 0 || d.rank >= d.world_size)
    throw UsageError("inconsistent launcher environment: rank " + std::to_string(d.rank) + " of world size " +
                     std::to_string(d.world_size) + " (from " + d.source + ")");
  if (d.local_rank < 0 || d.local_rank >= d.local_world_size)
    throw UsageError("inconsistent launcher environment: local rank " + std::to_string(d.local_rank) + " of " +
                     std::to_string(d.local_world_size));
  if (d.master_port <= 0 || d.master_port > 65535) throw UsageError("MASTER_PORT must be a TCP port");
  return d;
}

DistEnv read_dist_env() {
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string kv = *e;
    size_t eq = kv.find('=');
    if (eq != std::string::npos) env[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return read_dist_env(env);
}

}  // namespace longalign::dist

// Launcher environments: torchrun, Slurm (with node-list expansion) and Open MPI, and the
// errors for inconsistent values.
#include <gtest/gtest.h>

#include "longalign/core/error.hpp"
#include "longalign/dist/dist_env.hpp"

using namespace longalign;
using dist::read_dist_env;

TEST(DistEnv, Torchrun) {
  auto d = read_dist_env({{"RANK", "3"}, {"LOCAL_RANK", "1"}, {"WORLD_SIZE", "4"}, {"LOCAL_WORLD_SIZE", "2"},
                          {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"}});
  EXPECT_EQ(d.source, "torchrun");
  EXPECT_EQ(d.rank, 3);
  EXPECT_EQ(d.local_rank, 1);
  EXPECT_EQ(d.world_size, 4);
  EXPECT_EQ(d.master_addr, "node7");
  EXPECT_EQ(d.master_port, 1234);
  EXPECT_TRUE(d.distributed());
  EXPECT_FALSE(read_dist_env(std::map<std::string, std::string>{}).distributed());
}

TEST(DistEnv, SlurmAndOpenMpi) {
  auto s = read_dist_env({{"SLURM_PROCID", "5"}, {"SLURM_LOCALID", "1"}, {"SLURM_NTASKS", "8"},
                          {"SLURM_NTASKS_PER_NODE", "4"}, {"SLURM_JOB_NODELIST", "gpu[03-05,09],cpu1"}});
  EXPECT_EQ(s.source, "slurm");
  EXPECT_EQ(s.rank, 5);
  EXPECT_EQ(s.world_size, 8);
  EXPECT_EQ(s.master_addr, "gpu03");
  EXPECT_EQ(dist::first_slurm_host("a1,b2"), "a1");
  EXPECT_EQ(dist::first_slurm_host("node[12,14]"), "node12");
  auto o = read_dist_env({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "4"},
                          {"OMPI_COMM_WORLD_LOCAL_RANK", "0"}, {"OMPI_COMM_WORLD_LOCAL_SIZE", "2"},
                          {"MASTER_ADDR", "head"}});
  EXPECT_EQ(o.source, "openmpi");
  EXPECT_EQ(o.rank, 2);
  EXPECT_EQ(o.master_addr, "head");
}

TEST(DistEnv, InconsistentValuesAreUsageErrors) {
  EXPECT_THROW(read_dist_env({{"RANK", "4"}, {"WORLD_SIZE", "4"}}), UsageError);
  EXPECT_THROW(read_dist_env({{"RANK", "x"}, {"WORLD_SIZE", "4"}}), UsageError);
  EXPECT_THROW(read_dist_env({{"RANK", "0"}, {"WORLD_SIZE", "2"}, {"MASTER_PORT", "99999"}}), UsageError);
}

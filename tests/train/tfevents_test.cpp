// TensorBoard event files: the record framing checked by hand, and the file read back by
// TensorBoard's own reader (from the venv) as the independent oracle.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>

#include "longalign/train/tfevents.hpp"
#include "test_paths.hpp"
#include "test_util.hpp"

using namespace longalign;

TEST(TfEvents, RecordFramingByHand) {
  std::string rec = train::TfEventsWriter::frame_record("abc");
  ASSERT_EQ(rec.size(), 8u + 4 + 3 + 4);
  EXPECT_EQ(rec[0], 3);
  for (int i = 1; i < 8; ++i) EXPECT_EQ(rec[i], 0);
  EXPECT_EQ(rec.substr(12, 3), "abc");
  // Scalar event: wall_time (tag 0x09, 8 bytes), step (0x10, varint 300 = ac 02), summary (0x2a ...).
  std::string ev = train::TfEventsWriter::encode_scalar_event("x", 1.0f, 300, 0.0);
  EXPECT_EQ(uint8_t(ev[0]), 0x09);
  EXPECT_EQ(uint8_t(ev[9]), 0x10);
  EXPECT_EQ(uint8_t(ev[10]), 0xac);
  EXPECT_EQ(uint8_t(ev[11]), 0x02);
  EXPECT_EQ(uint8_t(ev[12]), 0x2a);
}

TEST(TfEvents, TensorBoardReadsOurScalarsBack) {
  fixture::TempDir tmp;
  {
    train::TfEventsWriter w(tmp.path);
    for (int s = 1; s <= 3; ++s) w.scalar("train/loss", 1.0f / s, s, 1700000000.0 + s);
  }
  std::string cmd = fixture::python() +
                    " -c \"import glob,sys;from tensorboard.backend.event_processing.event_file_loader import "
                    "EventFileLoader as L;from tensorboard.util import tensor_util as T;"
                    "f=glob.glob(sys.argv[1]+'/events.out.tfevents.*')[0];"
                    "[print(e.step, v.tag, round(float(T.make_ndarray(v.tensor)) if v.HasField('tensor') else v.simple_value,4)) "
                    "for e in L(f).Load() for v in e.summary.value]\" " + tmp.path.string();
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  ASSERT_TRUE(p);
  std::string out;
  char buf[256];
  while (fgets(buf, sizeof buf, p.get())) out += buf;
  EXPECT_EQ(out, "1 train/loss 1.0\n2 train/loss 0.5\n3 train/loss 0.3333\n");
}

#include "common/wav.h"

#include <gtest/gtest.h>

#include <string>

#include "common/wav_for_test.h"

namespace trl {
namespace {

TEST(Wav, WavSecondsRoundUp) {
  EXPECT_EQ(WavSeconds(Wav(16000, 32000, 32000)), 2);
  EXPECT_EQ(WavSeconds(Wav(16000, 32001, 32001)), 3);
  EXPECT_EQ(WavSeconds(Wav(16000, 0, 0)), 0);
  // A data chunk longer than the file: the bytes present count.
  EXPECT_EQ(WavSeconds(Wav(16000, 0xffffffff, 16000)), 1);
  EXPECT_EQ(WavSeconds(Wav(0, 100, 100)), 0);  // no byte rate
  EXPECT_EQ(WavSeconds("not a wav file at all"), 0);
  EXPECT_EQ(WavSeconds(""), 0);
  EXPECT_EQ(WavSeconds(Wav(16000, 32000, 32000).substr(0, 30)), 0);  // cut inside fmt
}

}  // namespace
}  // namespace trl

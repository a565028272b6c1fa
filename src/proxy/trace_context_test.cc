#include "proxy/trace_context.h"

#include <gtest/gtest.h>

#include <string>

namespace trl {
namespace {

constexpr std::string_view kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

TEST(TraceContextTest, AValidTraceparentGivesItsTraceId) {
  EXPECT_EQ(TraceIdOf(kValid), "4bf92f3577b34da6a3ce929d0e0e4736");
  // A later version may carry more fields after a dash.
  EXPECT_EQ(TraceIdOf("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-extra"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
}

TEST(TraceContextTest, AnythingElseIsRefused) {
  std::string upper(kValid);
  upper[10] = 'F';
  const std::string_view bad_values[] = {
      std::string_view(""),
      kValid.substr(0, 54),                                         // short
      std::string_view(upper),                                      // uppercase
      "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // version ff
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01",    // zero trace id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",    // zero parent id
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",  // v00 with more
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x",   // no dash before more
      "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",    // separator
      "00-4bf92f3577b34da6a3ce929d0e0e473g-00f067aa0ba902b7-01",    // not hex
  };
  for (std::string_view bad : bad_values) {
    EXPECT_EQ(TraceIdOf(bad), "") << bad;
  }
}

}  // namespace
}  // namespace trl

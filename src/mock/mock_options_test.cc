#include "mock/mock_options.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

namespace trl {
namespace {

MockOptions Parse(std::vector<const char*> args) {
  args.insert(args.begin(), "mock-llm");
  return ParseMockArgs(static_cast<int>(args.size()), args.data());
}

TEST(MockOptionsTest, Defaults) {
  MockOptions options = Parse({});
  EXPECT_EQ(options.host, "127.0.0.1");
  EXPECT_EQ(options.port, 8000);
  EXPECT_EQ(options.models, std::vector<std::string>{"mock-model"});
  EXPECT_EQ(options.max_output, 16);
  EXPECT_EQ(options.DefaultMaxOutput(), 16);
  EXPECT_EQ(options.ttft, std::chrono::milliseconds(20));
  EXPECT_EQ(options.TokenInterval(), std::chrono::milliseconds(20));
  EXPECT_EQ(options.threads, 1);
  EXPECT_FALSE(options.stamp_tokens);
}

TEST(MockOptionsTest, AllFlags) {
  MockOptions options = Parse({"--listen", "0.0.0.0:0", "--models=a,b", "--max-output", "4",
                               "--ttft", "1.5s", "--tokens-per-second=0", "--threads", "2"});
  EXPECT_EQ(options.host, "0.0.0.0");
  EXPECT_EQ(options.port, 0);
  EXPECT_EQ(options.models, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(options.max_output, 4);
  EXPECT_EQ(options.ttft, std::chrono::milliseconds(1500));
  EXPECT_EQ(options.TokenInterval(), std::chrono::nanoseconds(0));
  EXPECT_EQ(options.threads, 2);
  EXPECT_FALSE(options.stamp_tokens);
  EXPECT_EQ(Parse({"--listen", "[::1]:9"}).host, "::1");
  EXPECT_FALSE(options.faults);
  // The flags without a value, anywhere on the line.
  options = Parse({"--stamp-tokens", "--threads", "3"});
  EXPECT_TRUE(options.stamp_tokens);
  EXPECT_FALSE(options.faults);
  EXPECT_EQ(options.threads, 3);
  EXPECT_TRUE(Parse({"--threads", "3", "--stamp-tokens"}).stamp_tokens);
  options = Parse({"--faults", "--threads", "3"});
  EXPECT_TRUE(options.faults);
  EXPECT_FALSE(options.stamp_tokens);
}

// --default-max-output follows --max-output unless given, wherever --max-output stands.
TEST(MockOptionsTest, DefaultMaxOutput) {
  EXPECT_EQ(Parse({"--max-output", "4"}).DefaultMaxOutput(), 4);
  MockOptions options = Parse({"--default-max-output", "100", "--max-output", "4"});
  EXPECT_EQ(options.max_output, 4);
  EXPECT_EQ(options.DefaultMaxOutput(), 100);
  EXPECT_EQ(Parse({"--max-output=8", "--default-max-output=2"}).DefaultMaxOutput(), 2);
}

TEST(MockOptionsTest, Durations) {
  EXPECT_EQ(ParseMockDuration("0ms"), std::chrono::nanoseconds(0));
  EXPECT_EQ(ParseMockDuration("0"), std::chrono::nanoseconds(0));
  EXPECT_EQ(ParseMockDuration("20ms"), std::chrono::milliseconds(20));
  EXPECT_EQ(ParseMockDuration("2s"), std::chrono::seconds(2));
  EXPECT_EQ(ParseMockDuration("250us"), std::chrono::microseconds(250));
  EXPECT_THROW(ParseMockDuration("20"), std::invalid_argument);
  EXPECT_THROW(ParseMockDuration("ms"), std::invalid_argument);
  EXPECT_THROW(ParseMockDuration("5m"), std::invalid_argument);
}

TEST(MockOptionsTest, RejectsBadValuesNamingTheFlag) {
  auto message_of = [](std::vector<const char*> args) -> std::string {
    try {
      Parse(std::move(args));
    } catch (const std::invalid_argument& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(message_of({"--max-output", "0"}).find("--max-output"), std::string::npos);
  EXPECT_NE(message_of({"--default-max-output", "0"}).find("--default-max-output"),
            std::string::npos);
  EXPECT_NE(message_of({"--default-max-output", "x"}).find("expected an integer >= 1"),
            std::string::npos);
  EXPECT_NE(message_of({"--ttft", "fast"}).find("--ttft"), std::string::npos);
  EXPECT_NE(message_of({"--listen", "nohost"}).find("--listen"), std::string::npos);
  EXPECT_NE(message_of({"--models", "a,,b"}).find("--models"), std::string::npos);
  EXPECT_NE(message_of({"--tokens-per-second", "-1"}).find("--tokens-per-second"),
            std::string::npos);
  EXPECT_NE(message_of({"--threads", "0"}).find("--threads"), std::string::npos);
  EXPECT_NE(message_of({"--bogus", "1"}).find("--bogus"), std::string::npos);
  EXPECT_NE(message_of({"--threads"}).find("missing value"), std::string::npos);
}

}  // namespace
}  // namespace trl

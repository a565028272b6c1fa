// RedisClient against real redis-server processes (tests/fakes/redis_server.h).
#include "redis/redis_client.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <thread>

#include "fakes/redis_server.h"
#include "fakes/run_awaitable.h"

namespace trl::redis {
namespace {

using namespace std::chrono_literals;
using testing::RedisServer;

SteadyTime In(std::chrono::milliseconds d) { return std::chrono::steady_clock::now() + d; }

class RedisClientTest : public ::testing::Test {
 protected:
  void SetUp() override { server_ = testing::StartRedis(); }

  // Not started: a test may add scripts first.
  std::unique_ptr<RedisClient> MakeClient(ClientOptions options = {}) {
    if (options.urls.empty()) options.urls = {server_->Url()};
    return testing::MakeRedisClient(std::move(options), /*start=*/false);
  }

  Result Run(RedisClient& client, std::vector<std::string> args,
             std::chrono::milliseconds timeout = 2000ms) {
    return RunAwaitable(client.Execute(std::move(args), "", In(timeout)));
  }

  // Polls until the client answers PING again (bounded: the client retries on its own; this
  // only watches for it).
  bool WaitUntilAnswering(RedisClient& client) {
    for (int i = 0; i < 400; ++i) {
      if (Run(client, {"PING"}, 200ms).Ok()) return true;
      std::this_thread::sleep_for(10ms);
    }
    return false;
  }

  std::unique_ptr<RedisServer> server_;
};

TEST_F(RedisClientTest, PipelinesManyCommandsOnOneConnection) {
  auto client = MakeClient();
  client->Start();
  // Below ClientOptions::max_pending (4096): on a busy machine all of them may be queued before
  // the client's thread sends the first, and more than the bound would be refused (by design).
  constexpr int kCommands = 4000;
  std::atomic<int> ok{0};
  boost::asio::io_context io;
  for (int i = 0; i < kCommands; ++i) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          // GCC 12 cannot keep a braced list alive across co_await: name it.
          std::vector<std::string> args = {"INCR", "counter"};
          Result r = co_await client->Execute(std::move(args), "", In(5000ms));
          if (r.Ok() && r.reply->type == REDIS_REPLY_INTEGER) ++ok;
        },
        boost::asio::detached);
  }
  io.run();
  EXPECT_EQ(ok.load(), kCommands);
  EXPECT_EQ(server_->CommandText({"GET", "counter"}), std::to_string(kCommands));
  EXPECT_EQ(client->Stats().connects, 1u);  // all of them on one connection
}

TEST_F(RedisClientTest, ErrorRepliesAreReplies) {
  auto client = MakeClient();
  client->Start();
  Result r = Run(*client, {"NOSUCHCOMMAND"});
  ASSERT_EQ(r.status, ResultStatus::kOk);
  EXPECT_TRUE(IsError(r.reply.get()));
  EXPECT_FALSE(r.Ok());
}

TEST_F(RedisClientTest, NoScriptIsAnsweredByEval) {
  auto client = MakeClient();
  const Script& script = client->AddScript("return 'x' .. ARGV[1]");
  client->Start();
  auto call = [&] {
    return RunAwaitable(
        client->Execute({"EVALSHA", script.sha, "0", "1"}, "", In(2000ms), &script));
  };
  Result first = call();
  ASSERT_TRUE(first.Ok());
  EXPECT_EQ(ReplyText(*first.reply), "x1");
  EXPECT_EQ(client->Stats().noscript, 0u);  // loaded by the connection's handshake
  ASSERT_EQ(server_->CommandText({"SCRIPT", "FLUSH"}), "OK");
  Result second = call();
  ASSERT_TRUE(second.Ok());
  EXPECT_EQ(ReplyText(*second.reply), "x1");
  EXPECT_EQ(client->Stats().noscript, 1u);
  Result third = call();  // EVAL cached it again
  ASSERT_TRUE(third.Ok());
  EXPECT_EQ(client->Stats().noscript, 1u);
}

TEST_F(RedisClientTest, TimesOutWhileTheServerIsPaused) {
  auto client = MakeClient();
  client->Start();
  ASSERT_TRUE(Run(*client, {"PING"}).Ok());
  server_->Pause();
  const auto start = std::chrono::steady_clock::now();
  Result r = Run(*client, {"PING"}, 50ms);
  const auto took = std::chrono::steady_clock::now() - start;
  // The server is stopped, so this answer can only be the deadline's.
  EXPECT_EQ(r.status, ResultStatus::kTimeout);
  EXPECT_GE(took, 50ms);
  server_->Resume();
  EXPECT_TRUE(WaitUntilAnswering(*client));
}

TEST_F(RedisClientTest, PendingCommandsAreBounded) {
  ClientOptions options;
  options.max_pending = 8;
  auto client = MakeClient(options);
  client->Start();
  ASSERT_TRUE(Run(*client, {"PING"}).Ok());
  server_->Pause();
  std::atomic<int> rejected{0}, timed_out{0};
  boost::asio::io_context io;
  for (int i = 0; i < 20; ++i) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          std::vector<std::string> args = {"PING"};
          Result r = co_await client->Execute(std::move(args), "", In(300ms));
          if (r.status == ResultStatus::kUnavailable) ++rejected;
          if (r.status == ResultStatus::kTimeout) ++timed_out;
        },
        boost::asio::detached);
  }
  io.run();
  server_->Resume();
  EXPECT_EQ(timed_out.load(), 8);
  EXPECT_EQ(rejected.load(), 12);
}

TEST_F(RedisClientTest, ClientKillMidLoadLosesNoCommand) {
  auto client = MakeClient();
  client->Start();
  ASSERT_TRUE(Run(*client, {"PING"}).Ok());
  constexpr int kWorkers = 50, kPerWorker = 200;
  std::atomic<int> done{0}, failed{0};
  std::thread killer;
  boost::asio::io_context io;
  for (int w = 0; w < kWorkers; ++w) {
    boost::asio::co_spawn(
        io,
        [&]() -> boost::asio::awaitable<void> {
          for (int i = 0; i < kPerWorker; ++i) {
            std::vector<std::string> args = {"PING"};
            Result r = co_await client->Execute(std::move(args), "", In(2000ms));
            if (!r.Ok()) ++failed;
            // Kill the connection twice while commands are in flight.
            int n = ++done;
            if (n == kWorkers * kPerWorker / 3 || n == 2 * kWorkers * kPerWorker / 3) {
              server_->CommandText({"CLIENT", "KILL", "TYPE", "normal"});
            }
          }
        },
        boost::asio::detached);
  }
  io.run();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(done.load(), kWorkers * kPerWorker);
  ClientStats stats = client->Stats();
  EXPECT_EQ(stats.drops, 2u);
  EXPECT_EQ(stats.connects, 3u);
}

TEST_F(RedisClientTest, ShutdownEndsPendingCallsAtOnce) {
  auto client = MakeClient();
  client->Start();
  ASSERT_TRUE(Run(*client, {"PING"}).Ok());
  server_->Pause();
  Result r;
  std::thread caller([&] { r = Run(*client, {"PING"}, 600'000ms); });
  for (int i = 0; i < 10'000 && client->Stats().in_flight == 0; ++i) {
    std::this_thread::sleep_for(1ms);  // a bounded poll: until the call is under way
  }
  ASSERT_EQ(client->Stats().in_flight, 1u);
  client->Shutdown();  // the call would otherwise wait for Redis (paused) for ten minutes
  caller.join();
  server_->Resume();
  EXPECT_EQ(r.status, ResultStatus::kUnavailable);
  EXPECT_EQ(Run(*client, {"PING"}).status, ResultStatus::kUnavailable);
}

TEST_F(RedisClientTest, ShutdownAsACallStartsEndsIt) {
  // A call counted in flight, but not yet handed to the client's thread, when Shutdown began:
  // it was handed off after that thread had ended, never ran, and its caller waited for ever
  // (seen under TSAN). Shutdown now waits for the hand-off; the call ends unavailable (or,
  // when it got there first, answered).
  for (int round = 0; round < 200; ++round) {
    auto client = MakeClient();
    client->Start();
    Result r;
    std::atomic<bool> done{false};
    std::thread caller([&] {
      r = Run(*client, {"PING"}, 600'000ms);
      done.store(true);
    });
    while (client->Stats().in_flight == 0 && !done.load()) std::this_thread::yield();
    client->Shutdown();
    caller.join();
    EXPECT_TRUE(r.status == ResultStatus::kUnavailable || r.Ok()) << "round " << round;
  }
}

TEST_F(RedisClientTest, FailsFastWhileDownAndComesBackOnItsOwn) {
  auto client = MakeClient();
  client->Start();
  ASSERT_TRUE(Run(*client, {"SET", "k", "v"}).Ok());
  server_->Kill();
  // Whether the client has noticed yet or not, no answer can come: every call fails, and once
  // the node is known down, at once (not at the deadline).
  Result r = Run(*client, {"PING"}, 10'000ms);
  EXPECT_NE(r.status, ResultStatus::kOk);
  const auto start = std::chrono::steady_clock::now();
  r = Run(*client, {"PING"}, 10'000ms);
  EXPECT_EQ(r.status, ResultStatus::kUnavailable);
  EXPECT_LT(std::chrono::steady_clock::now() - start, 10'000ms);
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  EXPECT_TRUE(WaitUntilAnswering(*client));
  Result get = Run(*client, {"GET", "k"});
  ASSERT_EQ(get.status, ResultStatus::kOk);
  EXPECT_EQ(get.reply->type, REDIS_REPLY_NIL);  // a fresh server (no persistence)
}

TEST_F(RedisClientTest, StartsBeforeRedisIsThere) {
  std::string url = server_->Url();
  server_->Kill();
  ClientOptions options;
  options.urls = {url};
  auto client = MakeClient(options);
  client->Start();
  EXPECT_NE(Run(*client, {"PING"}, 200ms).status, ResultStatus::kOk);
  std::string error;
  ASSERT_TRUE(server_->Restart(&error)) << error;
  EXPECT_TRUE(WaitUntilAnswering(*client));
}

TEST_F(RedisClientTest, UserPasswordAndDatabaseFromTheUrl) {
  ASSERT_EQ(server_->CommandText({"ACL", "SETUSER", "app", "on", ">s3cret", "~*", "+@all"}), "OK");
  ClientOptions options;
  options.urls = {"redis://app:s3cret@" + server_->Address() + "/2"};
  auto client = MakeClient(options);
  client->Start();
  Result info = Run(*client, {"CLIENT", "INFO"});
  ASSERT_TRUE(info.Ok());
  std::string text(ReplyText(*info.reply));
  EXPECT_NE(text.find(" db=2 "), std::string::npos) << text;
  EXPECT_NE(text.find(" user=app "), std::string::npos) << text;

  options.urls = {"redis://app:wrong@" + server_->Address()};
  auto refused = MakeClient(options);
  refused->Start();
  Result r = Run(*refused, {"PING"});
  EXPECT_EQ(r.status, ResultStatus::kUnavailable);
}

TEST(RedisClientTlsTest, RedissVerifiesTheServerCertificate) {
  std::string error;
  auto server = RedisServer::StartTls(&error);
  if (!server) {
    testing::SkipWithoutRedis("no TLS redis-server: " + error);
    return;
  }
  ClientOptions options;
  options.urls = {server->Url()};

  // Not trusted (the system's CAs do not include the test CA): no connection.
  ::setenv("SSL_CERT_FILE", "/nonexistent", 1);
  auto untrusted = RedisClient::Create(options, &error);
  ASSERT_TRUE(untrusted) << error;
  untrusted->Start();
  EXPECT_EQ(RunAwaitable(untrusted->Execute({"PING"}, "", In(2000ms))).status,
            ResultStatus::kUnavailable);

  // OpenSSL reads SSL_CERT_FILE when the client's TLS context loads its default CAs.
  ::setenv("SSL_CERT_FILE", server->CaFile().c_str(), 1);
  auto client = RedisClient::Create(options, &error);
  ASSERT_TRUE(client) << error;
  client->Start();
  Result r = RunAwaitable(client->Execute({"PING"}, "", In(2000ms)));
  ::unsetenv("SSL_CERT_FILE");
  ASSERT_TRUE(r.Ok());
  EXPECT_EQ(ReplyText(*r.reply), "PONG");
  Result info = RunAwaitable(client->Execute({"CLIENT", "INFO"}, "", In(2000ms)));
  ASSERT_TRUE(info.Ok());
}

TEST_F(RedisClientTest, RejectsBadUrls) {
  std::string error;
  ClientOptions options;
  options.urls = {"redis://:pw@h:0"};
  EXPECT_FALSE(RedisClient::Create(options, &error));
  EXPECT_EQ(error, "URL #1: bad port");
  options.urls = {};
  EXPECT_FALSE(RedisClient::Create(options, &error));
}

}  // namespace
}  // namespace trl::redis

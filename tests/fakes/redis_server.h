// Real redis-server processes for tests (no mocks for Redis): started on free loopback ports
// with persistence off (--save "" --appendonly no), stopped by the destructor. Readiness is
// awaited on the server's own "Ready to accept connections" line, not by sleeping.
//
// RedisServer: one node; Pause/Resume (SIGSTOP/SIGCONT), Kill, Restart on the same port, and
// Command() for test-side administration (SCRIPT FLUSH, CLIENT KILL, ...) over a blocking
// hiredis connection. RedisCluster: three masters created with `redis-cli --cluster create`.
// StartRedis() / StartRedisCluster(): one of them for a test, which is skipped without
// redis-server (or fails, under TRL_REQUIRE_REDIS=1, as in CI). MakeRedisClient(): the
// gateway's RedisClient of a server or cluster.
//
// Thread-safety: one test thread drives each object; Command() may be called from any thread.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "fakes/temp_dir.h"
#include "redis/redis_client.h"

extern char** environ;

namespace trl::testing {

struct HiredisReplyDeleter {
  void operator()(redisReply* r) const {
    if (r) freeReplyObject(r);
  }
};
using TestReply = std::unique_ptr<redisReply, HiredisReplyDeleter>;

// A loopback port nothing listens on (nor on port + offset, if asked: a cluster bus port).
inline uint16_t FreePort(int also_offset = 0) {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    uint16_t port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port = ntohs(addr.sin_port);
    }
    ::close(fd);
    if (port == 0) continue;
    if (also_offset == 0) return port;
    if (port + also_offset > 65535) continue;
    int fd2 = ::socket(AF_INET, SOCK_STREAM, 0);
    addr.sin_port = htons(static_cast<uint16_t>(port + also_offset));
    bool free = ::bind(fd2, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    ::close(fd2);
    if (free) return port;
  }
  return 0;
}

// Runs a program to completion; returns its exit status (-1 if it could not run). Its
// standard output is discarded; errors go to this process's stderr.
inline int RunProgram(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return -1;
  int status = 0;
  if (waitpid(pid, &status, 0) < 0) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

class RedisServer {
 public:
  // Starts a server (extra_args are appended to the defaults). Returns null and sets *error if
  // it did not become ready (e.g. redis-server is not installed).
  static std::unique_ptr<RedisServer> Start(std::vector<std::string> extra_args = {},
                                            std::string* error = nullptr, int bus_offset = 0,
                                            bool tls = false) {
    std::unique_ptr<RedisServer> server(new RedisServer(std::move(extra_args)));
    server->tls_ = tls;
    std::string why;
    for (int attempt = 0; attempt < 5; ++attempt) {
      server->port_ = FreePort(bus_offset);
      if (server->Launch(&why)) return server;
    }
    if (error) *error = why;
    return nullptr;
  }

  ~RedisServer() { Kill(); }  // then dir_ goes, with what the server wrote there

  // A server that speaks only TLS, with a certificate for 127.0.0.1 and localhost signed by a
  // CA made for it (CaFile()). Needs the openssl command.
  static std::unique_ptr<RedisServer> StartTls(std::string* error = nullptr) {
    std::unique_ptr<RedisServer> certs(new RedisServer({}));  // only for its directory
    const std::string d = certs->dir();
    {
      FILE* ext = std::fopen((d + "/ext.cnf").c_str(), "w");
      if (!ext) return nullptr;
      std::fputs("subjectAltName=IP:127.0.0.1,DNS:localhost\n", ext);
      std::fclose(ext);
    }
    const std::vector<std::vector<std::string>> steps = {
        {"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key",
         "-out", d + "/ca.crt", "-days", "2", "-subj", "/CN=trl test CA"},
        {"openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/server.key", "-out",
         d + "/server.csr", "-subj", "/CN=localhost"},
        {"openssl", "x509", "-req", "-in", d + "/server.csr", "-CA", d + "/ca.crt", "-CAkey",
         d + "/ca.key", "-CAcreateserial", "-out", d + "/server.crt", "-days", "2", "-extfile",
         d + "/ext.cnf"}};
    for (const auto& step : steps) {
      if (RunProgram(step) != 0) {
        if (error) *error = "openssl failed";
        return nullptr;
      }
    }
    auto server = Start({"--tls-cert-file", d + "/server.crt", "--tls-key-file", d + "/server.key",
                         "--tls-ca-cert-file", d + "/ca.crt", "--tls-auth-clients", "no"},
                        error, 0, /*tls=*/true);
    if (server) server->certs_ = std::move(certs);
    return server;
  }

  uint16_t port() const { return port_; }
  std::string Address() const { return "127.0.0.1:" + std::to_string(port_); }
  std::string Url() const { return (tls_ ? "rediss://" : "redis://") + Address(); }
  // TLS servers: the CA certificate clients must trust.
  std::string CaFile() const { return certs_ ? certs_->dir() + "/ca.crt" : ""; }
  pid_t pid() const { return pid_; }
  const std::string& dir() const { return dir_.path(); }

  void Pause() { ::kill(pid_, SIGSTOP); }
  void Resume() { ::kill(pid_, SIGCONT); }

  void Kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGCONT);
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    if (reader_.joinable()) reader_.join();
  }

  // Starts it again on the same port (empty: nothing was persisted).
  bool Restart(std::string* error = nullptr) {
    Kill();
    std::string why;
    // The old listening socket may linger for a moment: a few attempts.
    for (int attempt = 0; attempt < 20; ++attempt) {
      if (Launch(&why)) return true;
    }
    if (error) *error = why;
    return false;
  }

  // One command on a fresh blocking connection. Null if the server could not be reached.
  TestReply Command(const std::vector<std::string>& args) const {
    timeval tv{5, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (!c || c->err) {
      if (c) redisFree(c);
      return nullptr;
    }
    redisSetTimeout(c, tv);
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const std::string& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* reply = static_cast<redisReply*>(
        redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lens.data()));
    redisFree(c);
    return TestReply(reply);
  }

  // The reply as text (status, string, error or integer); "" on no reply.
  std::string CommandText(const std::vector<std::string>& args) const {
    TestReply r = Command(args);
    if (!r) return "";
    if (r->type == REDIS_REPLY_INTEGER) return std::to_string(r->integer);
    return r->str ? std::string(r->str, r->len) : "";
  }

 private:
  explicit RedisServer(std::vector<std::string> extra_args)
      : extra_args_(std::move(extra_args)), dir_("trl-redis-") {}

  bool Launch(std::string* why) {
    // clang-format off
    std::vector<std::string> argv = {"redis-server",
                                     "--port", tls_ ? "0" : std::to_string(port_),
                                     "--bind", "127.0.0.1",
                                     "--save", "",
                                     "--appendonly", "no",
                                     "--dir", dir(),
                                     "--enable-debug-command", "local",
                                     "--loglevel", "notice"};
    // clang-format on
    if (tls_) argv.insert(argv.end(), {"--tls-port", std::to_string(port_)});
    argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);

    int fds[2];
    if (::pipe(fds) != 0) {
      *why = "pipe failed";
      return false;
    }
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
    posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
    posix_spawn_file_actions_addclose(&actions, fds[0]);
    pid_t pid = 0;
    int rc = posix_spawnp(&pid, "redis-server", &actions, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    ::close(fds[1]);
    if (rc != 0) {
      ::close(fds[0]);
      *why = "cannot run redis-server (install it: scripts/setup.sh)";
      return false;
    }
    pid_ = pid;
    ready_ = false;
    exited_ = false;
    output_.clear();
    // Drains the server's output for its whole life (a full pipe would block it) and signals
    // the readiness line.
    reader_ = std::thread([this, fd = fds[0]] {
      FILE* in = ::fdopen(fd, "r");
      char line[4096];
      while (in && std::fgets(line, sizeof(line), in)) {
        std::lock_guard lock(mu_);
        if (output_.size() < 64 * 1024) output_ += line;
        if (std::string(line).find("Ready to accept connections") != std::string::npos) {
          ready_ = true;
          cv_.notify_all();
        }
      }
      if (in) std::fclose(in);
      std::lock_guard lock(mu_);
      exited_ = true;
      cv_.notify_all();
    });
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(20), [this] { return ready_ || exited_; });
    if (ready_) return true;
    *why = "redis-server did not start:\n" + output_;
    lock.unlock();
    Kill();
    return false;
  }

  std::vector<std::string> extra_args_;
  TempDir dir_;
  bool tls_ = false;
  std::unique_ptr<RedisServer> certs_;  // StartTls: owns the certificates' directory
  uint16_t port_ = 0;
  pid_t pid_ = -1;
  std::thread reader_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool ready_ = false;
  bool exited_ = false;
  std::string output_;
};

// Three masters, no replicas, all 16384 slots assigned.
class RedisCluster {
 public:
  static std::unique_ptr<RedisCluster> Start(std::string* error = nullptr) {
    std::unique_ptr<RedisCluster> cluster(new RedisCluster);
    std::vector<std::string> create = {"redis-cli", "--cluster", "create"};
    for (int i = 0; i < 3; ++i) {
      auto node = RedisServer::Start({"--cluster-enabled", "yes", "--cluster-config-file",
                                      "nodes.conf", "--cluster-node-timeout", "5000"},
                                     error, 10000);
      if (!node) return nullptr;
      create.push_back(node->Address());
      cluster->nodes_.push_back(std::move(node));
    }
    create.insert(create.end(), {"--cluster-replicas", "0", "--cluster-yes"});
    if (RunProgram(create) != 0) {
      if (error) *error = "redis-cli --cluster create failed";
      return nullptr;
    }
    // Every node must agree the cluster is up before a test relies on it (a bounded poll of
    // the state the nodes report, with a short pause between reads).
    for (int i = 0; i < 400; ++i) {
      bool all_ok = true;
      for (auto& node : cluster->nodes_) {
        std::string info = node->CommandText({"CLUSTER", "INFO"});
        all_ok = all_ok && info.find("cluster_state:ok") != std::string::npos;
      }
      if (all_ok && cluster->SlotsAgree()) return cluster;
      std::this_thread::sleep_for(std::chrono::milliseconds(25));
    }
    if (error) *error = "the cluster did not reach cluster_state:ok";
    return nullptr;
  }

  RedisServer& node(size_t i) { return *nodes_[i]; }
  size_t size() const { return nodes_.size(); }
  std::vector<std::string> Urls() const {
    std::vector<std::string> urls;
    for (const auto& n : nodes_) urls.push_back(n->Url());
    return urls;
  }
  // The node that owns `slot`, by asking CLUSTER SLOTS.
  int OwnerOf(int slot) {
    TestReply r = nodes_[0]->Command({"CLUSTER", "SLOTS"});
    if (!r || r->type != REDIS_REPLY_ARRAY) return -1;
    for (size_t i = 0; i < r->elements; ++i) {
      redisReply* e = r->element[i];
      if (slot < e->element[0]->integer || slot > e->element[1]->integer) continue;
      int port = static_cast<int>(e->element[2]->element[1]->integer);
      for (size_t n = 0; n < nodes_.size(); ++n) {
        if (nodes_[n]->port() == port) return static_cast<int>(n);
      }
    }
    return -1;
  }
  std::string NodeId(size_t i) { return nodes_[i]->CommandText({"CLUSTER", "MYID"}); }

 private:
  // Every node knows all three masters' slot ranges (gossip has converged).
  bool SlotsAgree() {
    for (auto& node : nodes_) {
      TestReply r = node->Command({"CLUSTER", "SLOTS"});
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) return false;
    }
    return true;
  }
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

// TRL_REQUIRE_REDIS=1 (set by scripts/test.sh, which CI runs): a test that cannot start
// redis-server fails instead of skipping, so a suite never passes by not running.
inline bool RedisRequired() {
  const char* v = std::getenv("TRL_REQUIRE_REDIS");
  return v != nullptr && std::string_view(v) == "1";
}

// Skips the calling test (fails it, when RedisRequired()) because Redis is not there. Called from
// SetUp(), the test body does not run; called from the test body, the caller returns.
inline void SkipWithoutRedis(const std::string& why) {
  if (RedisRequired()) GTEST_FAIL() << why << " (TRL_REQUIRE_REDIS=1: Redis tests must run)";
  GTEST_SKIP() << why;
}

// A server for the calling test, or null after SkipWithoutRedis().
inline std::unique_ptr<RedisServer> StartRedis(std::vector<std::string> extra_args = {}) {
  std::string error;
  auto server = RedisServer::Start(std::move(extra_args), &error);
  if (!server) SkipWithoutRedis("no redis-server: " + error);
  return server;
}

// A three-master cluster for the calling test, or null after SkipWithoutRedis().
inline std::unique_ptr<RedisCluster> StartRedisCluster() {
  std::string error;
  auto cluster = RedisCluster::Start(&error);
  if (!cluster) SkipWithoutRedis("no Redis Cluster: " + error);
  return cluster;
}

// The gateway's client of `options.urls` (a server's Url(), a cluster's Urls()), started unless
// `start` is false (a test that adds scripts first). Null, with a test failure, if the options
// are refused.
inline std::unique_ptr<redis::RedisClient> MakeRedisClient(redis::ClientOptions options,
                                                           bool start = true) {
  std::string error;
  auto client = redis::RedisClient::Create(options, &error);
  EXPECT_TRUE(client) << error;
  if (client && start) client->Start();
  return client;
}
inline std::unique_ptr<redis::RedisClient> MakeRedisClient(std::vector<std::string> urls,
                                                           bool start = true) {
  redis::ClientOptions options;
  options.urls = std::move(urls);
  return MakeRedisClient(std::move(options), start);
}

}  // namespace trl::testing

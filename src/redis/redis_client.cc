#include "redis/redis_client.h"

#include <openssl/evp.h>
#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>

namespace trl::redis {
namespace {

// Enough for a MOVED, an ASK, a NOSCRIPT and a dropped connection in one command's life.
constexpr int kMaxAttempts = 6;
constexpr std::chrono::milliseconds kMinRefreshInterval{100};
constexpr std::chrono::milliseconds kTryAgainPause{2};

std::string Sha1Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int size = 0;
  EVP_Digest(text.data(), text.size(), digest, &size, EVP_sha1(), nullptr);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (unsigned int i = 0; i < size; ++i) {
    out += kHex[digest[i] >> 4];
    out += kHex[digest[i] & 0xF];
  }
  return out;
}

}  // namespace

RedisClient::RedisClient(const ClientOptions& options) : options_(options) {}

std::unique_ptr<RedisClient> RedisClient::Create(const ClientOptions& options, std::string* error) {
  auto fail = [&](std::string why) -> std::unique_ptr<RedisClient> {
    if (error) *error = std::move(why);
    return nullptr;
  };
  if (options.urls.empty()) return fail("no Redis URL");
  std::unique_ptr<RedisClient> client(new RedisClient(options));
  bool any_tls = false;
  for (const std::string& text : options.urls) {
    std::string why;
    std::optional<RedisUrl> url = ParseRedisUrl(text, &why);
    if (!url) {
      // The text may hold a password: name the URL by its position only.
      return fail("URL #" + std::to_string(client->seed_urls_.size() + 1) + ": " + why);
    }
    any_tls = any_tls || url->tls;
    client->seed_urls_.push_back(std::move(*url));
  }
  if (any_tls) {
    try {
      client->tls_ = std::make_unique<asio::ssl::context>(asio::ssl::context::tls_client);
      // The system's CA store (SSL_CERT_FILE / SSL_CERT_DIR override it, as for any OpenSSL
      // program); the server's certificate must name the host of the URL.
      client->tls_->set_default_verify_paths();
      client->tls_->set_options(asio::ssl::context::no_sslv2 | asio::ssl::context::no_sslv3 |
                                asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
    } catch (const std::exception& e) {
      return fail(std::string("TLS setup failed: ") + e.what());
    }
  }
  return client;
}

RedisClient::~RedisClient() { Shutdown(); }

void RedisClient::Shutdown() {
  if (shut_down_.exchange(true)) return;
  if (!started_) return;
  auto close = [this] {
    for (auto& [address, node] : nodes_) node->Close();
    periodic_timer_->cancel();
  };
  if (external_) {
    // The thread that runs the context goes on; wait until the closing has run there. At once
    // when that is this thread, or when no thread has run the context since Start (a gateway
    // that stops before its I/O threads start): nothing else touches the connections then.
    if (Executor().running_in_this_thread() || !context_ran_.load(std::memory_order_acquire)) {
      close();
      return;
    }
    std::promise<void> closed;
    asio::post(*external_, [&] {
      close();
      closed.set_value();
    });
    closed.get_future().wait();
    WaitForHandOffs();
    return;
  }
  asio::post(io_, close);
  WaitForHandOffs();
  // Without the guard, run() returns once the last call has finished (each resumed by the
  // closing, then failing at once on a closed node) and the last timer has fired.
  work_.reset();
  thread_.join();
}

void RedisClient::WaitForHandOffs() {
  for (int n = handing_off_.load(); n != 0; n = handing_off_.load()) handing_off_.wait(n);
}

void RedisClient::HandedOff() {
  if (handing_off_.fetch_sub(1) == 1 && shut_down_.load()) handing_off_.notify_all();
}

const Script& RedisClient::AddScript(std::string body) {
  Script script;
  script.sha = Sha1Hex(body);
  script.body = std::move(body);
  std::string_view load[] = {"SCRIPT", "LOAD", script.body};
  handshake_.push_back(FormatCommand(load));
  scripts_.push_back(std::move(script));
  return scripts_.back();
}

void RedisClient::Start() {
  if (started_) return;
  started_ = true;
  periodic_timer_.emplace(Context());
  for (const RedisUrl& url : seed_urls_) {
    if (nodes_.contains(url.Address())) continue;  // listed twice
    seeds_.push_back(AddNode(url));
  }
  if (seed_urls_.size() > 1) SetClusterMode();
  asio::post(Context(), [this] {
    context_ran_.store(true, std::memory_order_release);
    for (const ConnectionPtr& seed : seeds_) seed->Start();
    if (cluster_) ScheduleRefresh();
  });
  if (external_) return;
  work_.emplace(asio::make_work_guard(io_));
  thread_ = std::thread([this] { io_.run(); });
}

ClientStats RedisClient::Stats() const {
  ClientStats s;
  s.connects = counters_->connects.load(std::memory_order_relaxed);
  s.drops = counters_->drops.load(std::memory_order_relaxed);
  s.timeouts = counters_->timeouts.load(std::memory_order_relaxed);
  s.retries = client_counters_.retries.load(std::memory_order_relaxed);
  s.noscript = client_counters_.noscript.load(std::memory_order_relaxed);
  s.moved = client_counters_.moved.load(std::memory_order_relaxed);
  s.ask = client_counters_.ask.load(std::memory_order_relaxed);
  s.slot_refreshes = client_counters_.slot_refreshes.load(std::memory_order_relaxed);
  s.tryagain = client_counters_.tryagain.load(std::memory_order_relaxed);
  s.in_flight = client_counters_.in_flight.load(std::memory_order_relaxed);
  return s;
}

asio::awaitable<Result> RedisClient::Execute(std::vector<std::string> args, std::string routing_key,
                                             SteadyTime deadline, const Script* script) {
  handing_off_.fetch_add(1);
  if (shut_down_.load()) {
    HandedOff();
    co_return Result{ResultStatus::kUnavailable, nullptr};
  }
  Command command;
  {
    std::vector<std::string_view> views(args.begin(), args.end());
    command.bytes = FormatCommand(views);
  }
  command.args = std::move(args);
  command.slot = routing_key.empty() ? -1 : KeySlot(routing_key);
  command.script = script;
  client_counters_.in_flight.fetch_add(1, std::memory_order_relaxed);
  // On the client's thread already (a lane's caller, or a batch that follows another): run it
  // here, without a hand-off and a posted completion.
  Result result;
  if (Executor().running_in_this_thread()) {
    HandedOff();
    result = co_await Run(std::move(command), deadline);
  } else {
    result = co_await asio::co_spawn(Context(), RunHandedOff(std::move(command), deadline),
                                     asio::use_awaitable);
  }
  client_counters_.in_flight.fetch_sub(1, std::memory_order_relaxed);
  co_return result;
}

asio::awaitable<Result> RedisClient::RunHandedOff(Command command, SteadyTime deadline) {
  HandedOff();
  co_return co_await Run(std::move(command), deadline);
}

asio::awaitable<Result> RedisClient::Run(Command command, SteadyTime deadline) {
  std::string eval_bytes;
  bool use_eval = false;
  ConnectionPtr ask_target;
  for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
    if (std::chrono::steady_clock::now() >= deadline) break;
    ConnectionPtr node = ask_target ? ask_target : Route(command.slot);
    const bool asking = ask_target != nullptr;
    ask_target.reset();
    std::string_view bytes = use_eval ? std::string_view(eval_bytes) : command.bytes;
    CallResult r = co_await node->Call(bytes, deadline, asking);
    switch (r.status) {
      case CallStatus::kOk:
        break;
      case CallStatus::kConnectionLost:
        // Reconnecting already: send it again on the new connection while time allows.
        client_counters_.retries.fetch_add(1, std::memory_order_relaxed);
        if (cluster_) ScheduleRefresh();
        continue;
      case CallStatus::kTimeout:
        co_return Result{ResultStatus::kTimeout, nullptr};
      case CallStatus::kUnavailable:
        if (cluster_) ScheduleRefresh();
        co_return Result{ResultStatus::kUnavailable, nullptr};
    }
    const redisReply* reply = r.reply.get();
    if (IsError(reply)) {
      if (command.script && !use_eval && IsErrorWithPrefix(reply, "NOSCRIPT")) {
        client_counters_.noscript.fetch_add(1, std::memory_order_relaxed);
        std::vector<std::string_view> views(command.args.begin(), command.args.end());
        views[0] = "EVAL";
        views[1] = command.script->body;
        eval_bytes = FormatCommand(views);
        use_eval = true;
        continue;
      }
      if (IsErrorWithPrefix(reply, "TRYAGAIN") &&
          std::chrono::steady_clock::now() + kTryAgainPause < deadline) {
        // The slot is being migrated and this call's keys are split between the two nodes
        // for now: the migration of a few keys takes milliseconds, so wait and retry while the
        // deadline allows (a pause does not count as an attempt).
        client_counters_.tryagain.fetch_add(1, std::memory_order_relaxed);
        asio::steady_timer pause(Context(), kTryAgainPause);
        boost::system::error_code ec;
        co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        --attempt;
        continue;
      }
      if (std::optional<Redirect> redirect = ParseRedirect(*reply)) {
        SetClusterMode();
        ConnectionPtr target = NodeFor(redirect->host, redirect->port);
        if (redirect->ask) {
          client_counters_.ask.fetch_add(1, std::memory_order_relaxed);
          ask_target = target;
        } else {
          client_counters_.moved.fetch_add(1, std::memory_order_relaxed);
          slots_[redirect->slot] = target;
          ScheduleRefresh();
        }
        continue;
      }
    }
    co_return Result{ResultStatus::kOk, std::move(r.reply)};
  }
  if (std::chrono::steady_clock::now() >= deadline)
    co_return Result{ResultStatus::kTimeout, nullptr};
  co_return Result{ResultStatus::kUnavailable, nullptr};
}

RedisClient::ConnectionPtr RedisClient::Route(int slot) {
  if (cluster_ && slot >= 0 && slots_[slot]) return slots_[slot];
  for (const ConnectionPtr& seed : seeds_) {
    if (!seed->Down()) return seed;
  }
  return seeds_.front();
}

RedisClient::ConnectionPtr RedisClient::NodeFor(const std::string& host, uint16_t port) {
  // Nodes found through the cluster use the first seed's scheme and credentials.
  RedisUrl url = seed_urls_.front();
  url.host = host;
  url.port = port;
  auto it = nodes_.find(url.Address());
  if (it != nodes_.end()) return it->second;
  ConnectionPtr node = AddNode(std::move(url));
  node->Start();
  return node;
}

RedisClient::ConnectionPtr RedisClient::AddNode(RedisUrl url) {
  std::string address = url.Address();
  ConnectionOptions o;
  o.url = std::move(url);
  o.tls = tls_.get();
  o.connect_timeout = options_.connect_timeout;
  o.min_backoff = options_.min_backoff;
  o.max_backoff = options_.max_backoff;
  o.stale_after = options_.stale_after;
  o.max_pending = options_.max_pending;
  o.handshake = handshake_;
  o.counters = counters_;
  auto node = std::make_shared<Connection>(Executor(), std::move(o));
  nodes_.emplace(std::move(address), node);
  return node;
}

void RedisClient::SetClusterMode() {
  if (cluster_) return;
  cluster_ = true;
  cluster_flag_.store(true, std::memory_order_relaxed);
  slots_.assign(kSlotCount, nullptr);
  if (started_) SchedulePeriodicRefresh();
}

void RedisClient::SchedulePeriodicRefresh() {
  if (periodic_started_) return;
  periodic_started_ = true;
  asio::co_spawn(
      Context(),
      [this]() -> asio::awaitable<void> {
        for (;;) {
          periodic_timer_->expires_after(options_.slots_refresh);
          boost::system::error_code ec;
          co_await periodic_timer_->async_wait(asio::redirect_error(asio::use_awaitable, ec));
          if (ec) co_return;
          ScheduleRefresh();
        }
      },
      asio::detached);
}

void RedisClient::ScheduleRefresh() {
  if (refreshing_) {
    refresh_again_ = true;
    return;
  }
  refreshing_ = true;
  asio::co_spawn(
      Context(),
      [this]() -> asio::awaitable<void> {
        asio::steady_timer pause(Context());
        do {
          refresh_again_ = false;
          co_await RefreshSlots();
          // At most one refresh per interval, however many redirects arrive meanwhile.
          pause.expires_after(kMinRefreshInterval);
          boost::system::error_code ec;
          co_await pause.async_wait(asio::redirect_error(asio::use_awaitable, ec));
        } while (refresh_again_);
        refreshing_ = false;
      },
      asio::detached);
}

asio::awaitable<void> RedisClient::RefreshSlots() {
  std::vector<ConnectionPtr> candidates;
  for (const auto& [address, node] : nodes_) {
    if (node->Up()) candidates.push_back(node);
  }
  for (const auto& [address, node] : nodes_) {
    if (!node->Up() && !node->Down()) candidates.push_back(node);  // connecting
  }
  static const std::string kClusterSlots = [] {
    std::string_view args[] = {"CLUSTER", "SLOTS"};
    return FormatCommand(args);
  }();
  for (const ConnectionPtr& node : candidates) {
    CallResult r = co_await node->Call(kClusterSlots,
                                       std::chrono::steady_clock::now() + options_.connect_timeout);
    if (r.status != CallStatus::kOk || IsError(r.reply.get())) continue;
    std::optional<std::vector<SlotRange>> ranges = ParseClusterSlots(*r.reply, node->Url().host);
    if (!ranges || ranges->empty()) continue;
    std::vector<ConnectionPtr> map(kSlotCount);
    for (const SlotRange& range : *ranges) {
      ConnectionPtr owner = NodeFor(range.host, range.port);
      for (int slot = range.first; slot <= range.last; ++slot) map[slot] = owner;
    }
    slots_.swap(map);
    client_counters_.slot_refreshes.fetch_add(1, std::memory_order_relaxed);
    co_return;
  }
}

}  // namespace trl::redis

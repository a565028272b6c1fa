// Steps "forward" and "relay" in production: PooledUpstream sends one admitted request to a
// backend of its model over a pooled keep-alive connection and relays the answer to the client,
// streaming chunk by chunk, and reports what settlement needs (the usage the backend reported,
// or the text actually relayed).
//
// Threading: ForwardAndRelay runs on the client connection's I/O thread and uses that thread's
// ConnectionPool (or the one pool given to the constructor, for a single-threaded test).
#pragma once

#include "proxy/upstream.h"
#include "upstream/connection_pool.h"

namespace trl {

class PooledUpstream final : public Upstream {
 public:
  // Each exchange takes its connections from ConnectionPool::ForThisThread().
  PooledUpstream() = default;
  // Every exchange takes its connections from `pool` (which must outlive this): all of them
  // must then run on one thread.
  explicit PooledUpstream(ConnectionPool& pool) : pool_(&pool) {}

  asio::awaitable<ExchangeResult> ForwardAndRelay(ExchangeRequest& request,
                                                  http::ResponseWriter& writer) override;

 private:
  ConnectionPool* pool_ = nullptr;
};

}  // namespace trl

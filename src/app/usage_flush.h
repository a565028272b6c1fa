// Writes the usage the gateway recorded (UsageRecorder) to where it is kept (UsageSink), in one
// batch: every usage.flush_interval (the scheduler's usage_flush task), before an admin usage
// query (so the answer includes every request this instance has settled), and at shutdown.
//
// One flush at a time: a Flush called while another is writing (the scheduler's coroutines
// interleave at each co_await: the periodic flush and an admin query's) waits for it to end, so
// that a query made after its flush sees every row taken before it.
//
// Threading: Flush on the scheduler's thread, or on the main thread once the scheduler has
// stopped (FlushAtShutdown): on one thread at a time.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/steady_timer.hpp>
#include <vector>

#include "usage/usage.h"

namespace trl {

class UsageFlush {
 public:
  // Both must outlive this.
  UsageFlush(UsageRecorder& usage, UsageSink& sink) : usage_(usage), sink_(sink) {}

  // The pending rows in one write; on failure they are kept for the next flush (and logged).
  asio::awaitable<bool> Flush();
  // The final flush, blocking the caller: a store that is reconnecting (Redis back after an
  // outage) gets two seconds before the rows are given up. False when they could not be written.
  bool FlushAtShutdown();

  UsageSink& Sink() { return sink_; }

 private:
  asio::awaitable<bool> FlushPatiently();

  UsageRecorder& usage_;
  UsageSink& sink_;
  bool writing_ = false;
  std::vector<asio::steady_timer*> waiting_;  // Flush calls waiting for the one writing
};

}  // namespace trl

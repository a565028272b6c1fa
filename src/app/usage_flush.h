// Writes the usage the gateway recorded (UsageRecorder) to where it is kept (UsageSink), in one
// batch: every usage.flush_interval (the scheduler's usage_flush task), before an admin usage
// query (so the answer includes every request this instance has settled), and at shutdown.
//
// With a journal (data_dir/journal/usage-*.journal), the rows are also appended to it every few
// milliseconds (CommitJournal) and a flush takes exactly the rows of its current segment: it
// rotates the journal, writes the rows, and deletes the segment once they are written. A crash
// then loses only what was not yet committed; the next start puts the rows of the segments left
// back into the recorder (RecoverJournal). The exception: a crash in the moment between a
// successful write and the deletion of its segment writes that batch again at the next start.
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

#include "common/journal.h"
#include "usage/usage.h"

namespace trl {

class UsageFlush {
 public:
  // All must outlive this; `journal` may be null (no journal).
  UsageFlush(UsageRecorder& usage, UsageSink& sink, Journal* journal = nullptr)
      : usage_(usage), sink_(sink), journal_(journal) {}

  // At start, before any request: the rows of the segments an earlier run left go back into the
  // recorder (and so into the current segment), then those segments are deleted. False and
  // *error when they cannot be read.
  bool RecoverJournal(std::string* error);
  // Appends the rows changed since the last call to the journal and commits it (every few ms).
  bool CommitJournal(std::string* error);

  // The pending rows in one write; on failure they are kept for the next flush (and logged).
  asio::awaitable<bool> Flush();
  // A usage query that sees this instance's every request: the pending rows are written first,
  // and when they cannot be, the answer is the error (not totals without them).
  asio::awaitable<UsageResult> FlushAndQuery(const UsageQuery& query);
  // The final flush, blocking the caller: a store that is reconnecting (Redis back after an
  // outage) gets two seconds before the rows are given up. False when they could not be written.
  bool FlushAtShutdown();

  UsageSink& Sink() { return sink_; }

 private:
  asio::awaitable<bool> FlushPatiently();

  UsageRecorder& usage_;
  UsageSink& sink_;
  Journal* journal_;
  bool writing_ = false;
  std::vector<asio::steady_timer*> waiting_;  // Flush calls waiting for the one writing
};

}  // namespace trl

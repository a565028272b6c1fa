// The embedded store: every budget in this process's memory, optionally saved to SQLite so that
// budgets (daily ones above all) survive a restart: a restart is not a way around a quota.
//
// Buckets are spread over kShards shards by owner (key or tenant), each with its own mutex and
// hash map. An operation locks the shards of the owners it touches (at most two: the key's and
// the tenant's) in index order, so batches are all-or-nothing and never deadlock. Under the locks
// it only does hash lookups and arithmetic: no I/O, no allocation once a bucket exists (creating a
// bucket copies its names once; a concurrency bucket's lease list grows to its peak once).
// A SynchronousStore: its operations complete at once.
//
// Persistence: Open(data_dir) loads <data_dir>/limits.db (SQLite, WAL) at construction; Flush()
// writes every bucket changed since the last flush (level, fraction, refill time or window).
// With a journal (<data_dir>/journal/limits-*.journal, common/journal.h), CommitJournal appends
// the new state of every bucket changed since its last call, every few milliseconds: a crash
// loses only what changed after the last commit. Each Flush is a checkpoint: it starts a new
// segment, saves the buckets and the number of the segment it closed in one transaction, then
// deletes the segments up to that one; Open replays the segments after the checkpoint. Records
// hold a bucket's whole state, not a change to it, so replaying one twice changes nothing.
// Concurrency leases are not saved: the requests that held them ended with the process.
// Evict drops the buckets that read the same as no bucket (a full budget, a concurrency limit
// with no slot held), so memory follows the budgets in use, not every key ever seen.
//
// Thread-safety: all operations, including Flush, are thread-safe.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/journal.h"
#include "common/sqlite.h"
#include "limits/store.h"

namespace trl {

class MemoryStore final : public SynchronousStore {
 public:
  static constexpr size_t kShards = 32;

  // Memory only: nothing is saved or loaded.
  MemoryStore();
  // Creates data_dir if needed, opens (or creates) <data_dir>/limits.db and loads every saved
  // bucket, then (with `journal`) replays the journal's segments after the last checkpoint and
  // checkpoints. Returns null and sets *error on failure (the caller should refuse to start:
  // starting with empty budgets would hand out a fresh quota). Blocking: call at startup.
  static std::unique_ptr<MemoryStore> Open(const std::string& data_dir, std::string* error,
                                           std::optional<FsyncPolicy> journal = std::nullopt);
  ~MemoryStore() override;

  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  AdmitResult AdmitNow(const AdmitRequest& request) override;
  StoreStatus SettleNow(const SettleRequest& request) override;
  ReadResult ReadNow(const BucketsRequest& request) override;
  StoreStatus ResetNow(const BucketsRequest& request) override;

  // Saves every bucket changed since the last successful flush (after a failed one: every
  // bucket) in one transaction. Returns false and sets *error on failure; a memory-only store
  // returns true. Blocking (disk I/O): call from a background thread, never an I/O thread, and
  // at shutdown after the last request is settled. Holds each shard's lock only to copy levels.
  bool Flush(std::string* error = nullptr);
  // Appends the state of every bucket changed since the last call to the journal and commits
  // it. True without a journal. Blocking (file I/O): the scheduler's thread, every few ms.
  bool CommitJournal(std::string* error = nullptr);

  // Drops every bucket an absent one would equal at `now_micros`: a token or request budget
  // that has refilled to its capacity (and is saved and journaled as it is), a concurrency limit
  // with no unexpired lease; their rows leave limits.db in one transaction. Returns how many
  // went. Blocking (disk I/O): the scheduler's thread, once in a while (each shard is locked
  // while it is scanned).
  size_t Evict(int64_t now_micros, std::string* error = nullptr);

  // Number of buckets held (tests, metrics).
  size_t BucketCount() const;

 private:
  struct OwnedRef;
  struct HashedRef;
  struct RefHash;
  struct RefEq;
  struct Lease {
    uint64_t id = 0;
    int64_t expires_micros = 0;
  };
  struct Bucket {
    BucketLevel level;          // kTokens/kRequests (with the capacity it was measured against)
    std::vector<Lease> leases;  // kConcurrent
    bool dirty = false;         // changed since the last flush
    bool unjournaled = false;   // changed since the last CommitJournal (on its shard's list)
  };
  using Entry = std::pair<const OwnedRef, Bucket>;
  struct Shard;
  class BatchLocks;

  Entry* Find(Shard& shard, const HashedRef& key);
  Entry& FindOrCreate(Shard& shard, const HashedRef& key, const BucketSpec& spec,
                      int64_t now_micros);
  // Under the shard's lock: marks a level bucket changed for the next flush and journal commit.
  void Changed(Shard& shard, Entry& entry);
  // A bucket as saved; `dirty` when limits.db does not hold it yet (replayed from the journal).
  void Restore(OwnedRef ref, BucketLevel level, bool dirty);
  bool Load(std::string* error);
  bool Replay(std::string* error);
  void ApplyRecord(std::string_view record);
  void JournalChanges();
  bool SaveCheckpoint(uint64_t segment, std::string* error);
  static void BindIdentity(sqlite::Statement& statement, const OwnedRef& ref);
  bool Evictable(const OwnedRef& ref, Bucket& bucket, int64_t now_micros) const;
  bool DeleteRows(const std::vector<OwnedRef>& refs, std::string* error);

  std::unique_ptr<std::array<Shard, kShards>> shards_;

  std::mutex flush_mu_;  // serializes Flush, CommitJournal and Evict (the connection, the journal)
  std::optional<sqlite::Database> db_;  // limits.db; guarded by flush_mu_ after Open
  std::unique_ptr<Journal> journal_;    // guarded by flush_mu_; null without a journal
  bool journaling_ = false;             // journal_ is set (read under shard locks)
  // Guarded by flush_mu_: JournalChanges' copies (kept to reuse their memory), and the records
  // appended since the last rotation.
  std::vector<std::pair<const OwnedRef*, BucketLevel>> journal_changes_;
  size_t unrotated_ = 0;
  std::atomic<bool> flush_all_{false};
};

}  // namespace trl

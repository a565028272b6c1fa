#include <functional>

#include "usage/usage.h"

namespace trl {
namespace {

constexpr int64_t kHour = 3600;

// Floor, not truncation: an hour always starts at or before the instant it holds.
int64_t HourOf(int64_t unix_seconds) {
  int64_t rem = unix_seconds % kHour;
  return unix_seconds - (rem < 0 ? rem + kHour : rem);
}

// A row's identity as the I/O threads see it: views into the caller's strings, so looking up a
// row that already exists allocates nothing.
struct RowView {
  std::string_view key, tenant, model;
  int64_t hour = 0;
};

struct RowId {
  std::string key, tenant, model;
  int64_t hour = 0;

  RowView View() const { return {key, tenant, model, hour}; }
};

size_t HashOf(const RowView& row) {
  std::hash<std::string_view> h;
  size_t seed = h(row.key);
  // boost::hash_combine's mixing: cheap, and enough to spread rows over shards and buckets.
  for (size_t part : {h(row.tenant), h(row.model), std::hash<int64_t>{}(row.hour)}) {
    seed ^= part + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2);
  }
  return seed;
}

struct RowHash {
  using is_transparent = void;
  size_t operator()(const RowView& row) const { return HashOf(row); }
  size_t operator()(const RowId& row) const { return HashOf(row.View()); }
};

struct RowEqual {
  using is_transparent = void;
  static bool Same(const RowView& a, const RowView& b) {
    return a.hour == b.hour && a.key == b.key && a.tenant == b.tenant && a.model == b.model;
  }
  bool operator()(const RowId& a, const RowId& b) const { return Same(a.View(), b.View()); }
  bool operator()(const RowView& a, const RowId& b) const { return Same(a, b.View()); }
  bool operator()(const RowId& a, const RowView& b) const { return Same(a.View(), b); }
};

using RowMap = std::unordered_map<RowId, UsageCounts, RowHash, RowEqual>;

}  // namespace

void UsageCounts::Add(const UsageCounts& other) {
  requests += other.requests;
  prompt_tokens += other.prompt_tokens;
  completion_tokens += other.completion_tokens;
  rejected_tokens += other.rejected_tokens;
  rejected_requests += other.rejected_requests;
  rejected_concurrency += other.rejected_concurrency;
}

struct UsageRecorder::Shard {
  mutable std::mutex mutex;
  RowMap rows;

  // Under `mutex`. Allocates only for a row not yet in this batch.
  UsageCounts& Row(const RowView& row) {
    auto it = rows.find(row);
    if (it != rows.end()) return it->second;
    return rows
        .try_emplace(
            RowId{std::string(row.key), std::string(row.tenant), std::string(row.model), row.hour})
        .first->second;
  }
};

UsageRecorder::UsageRecorder() {
  for (auto& shard : shards_) shard = std::make_unique<Shard>();
}

UsageRecorder::~UsageRecorder() = default;

namespace {

template <typename Shards, typename Apply>
void AddTo(Shards& shards, const RowView& row, Apply&& apply) {
  auto& shard = *shards[HashOf(row) % shards.size()];
  std::lock_guard lock(shard.mutex);
  apply(shard.Row(row));
}

}  // namespace

void UsageRecorder::RecordAdmitted(std::string_view key, std::string_view tenant,
                                   std::string_view model, int64_t unix_seconds,
                                   int64_t prompt_tokens, int64_t completion_tokens) {
  AddTo(shards_, {key, tenant, model, HourOf(unix_seconds)}, [&](UsageCounts& counts) {
    counts.requests += 1;
    counts.prompt_tokens += prompt_tokens;
    counts.completion_tokens += completion_tokens;
  });
}

void UsageRecorder::RecordRejected(std::string_view key, std::string_view tenant,
                                   std::string_view model, int64_t unix_seconds,
                                   LimitKind refused_by) {
  AddTo(shards_, {key, tenant, model, HourOf(unix_seconds)}, [&](UsageCounts& counts) {
    switch (refused_by) {
      case LimitKind::kTokens:
        counts.rejected_tokens += 1;
        break;
      case LimitKind::kRequests:
        counts.rejected_requests += 1;
        break;
      case LimitKind::kConcurrent:
        counts.rejected_concurrency += 1;
        break;
    }
  });
}

std::vector<UsageRow> UsageRecorder::TakePending() {
  std::vector<UsageRow> out;
  for (auto& shard : shards_) {
    RowMap taken;
    {
      std::lock_guard lock(shard->mutex);
      taken.swap(shard->rows);
    }
    // The strings move out of the map's nodes, outside the lock.
    out.reserve(out.size() + taken.size());
    while (!taken.empty()) {
      auto node = taken.extract(taken.begin());
      RowId& id = node.key();
      out.push_back(
          {std::move(id.key), std::move(id.tenant), std::move(id.model), id.hour, node.mapped()});
    }
  }
  return out;
}

void UsageRecorder::Restore(const std::vector<UsageRow>& rows) {
  for (const UsageRow& row : rows) {
    AddTo(shards_, {row.key, row.tenant, row.model, HourOf(row.start)},
          [&](UsageCounts& counts) { counts.Add(row.counts); });
  }
}

size_t UsageRecorder::PendingRows() const {
  size_t total = 0;
  for (const auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    total += shard->rows.size();
  }
  return total;
}

}  // namespace trl

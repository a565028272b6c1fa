#include <functional>
#include <map>
#include <tuple>

#include "common/journal.h"
#include "usage/usage.h"

namespace trl {
namespace {

// A row's identity as the I/O threads see it: views into the caller's strings, so looking up a
// row that already exists allocates nothing.
struct RowView {
  std::string_view key, tenant, model, user;
  int64_t hour = 0;
};

struct RowId {
  std::string key, tenant, model, user;
  int64_t hour = 0;

  RowView View() const { return {key, tenant, model, user, hour}; }
};

size_t HashOf(const RowView& row) {
  std::hash<std::string_view> h;
  size_t seed = h(row.key);
  // boost::hash_combine's mixing: cheap, and enough to spread rows over shards and buckets.
  for (size_t part : {h(row.tenant), h(row.model), h(row.user), std::hash<int64_t>{}(row.hour)}) {
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
    return a.hour == b.hour && a.key == b.key && a.tenant == b.tenant && a.model == b.model &&
           a.user == b.user;
  }
  bool operator()(const RowId& a, const RowId& b) const { return Same(a.View(), b.View()); }
  bool operator()(const RowView& a, const RowId& b) const { return Same(a, b.View()); }
  bool operator()(const RowId& a, const RowView& b) const { return Same(a.View(), b); }
};

struct RowCounts {
  UsageCounts counts;
  bool unjournaled = false;  // on its shard's `changed` list
};

using RowMap = std::unordered_map<RowId, RowCounts, RowHash, RowEqual>;

// key, tenant, model, hour, then the counters in kUsageCounters' order: the row's totals in its
// batch so far; then the user, when there is one. A row without a user is the record it was
// before users were counted, which an earlier version can still read.
void AppendRecord(Journal& journal, const RowId& id, const UsageCounts& c) {
  std::string record;
  RecordWriter writer(record);
  writer.Text(id.key).Text(id.tenant).Text(id.model).Int(id.hour);
  for (const UsageCounter& counter : kUsageCounters) writer.Int(c.*counter.field);
  if (!id.user.empty()) writer.Text(id.user);
  journal.Append(record);
}

// A record of this version, or of an earlier one (which stops after its counters: the others
// count 0, and the user is none).
std::optional<UsageRow> ParseRecord(std::string_view record) {
  RecordReader in(record);
  UsageRow row;
  row.key = in.Text();
  row.tenant = in.Text();
  row.model = in.Text();
  row.start = in.Int();
  for (size_t i = 0; i < kUsageCounters.size(); ++i) {
    if (i == kUsageCountersV1 && in.AtEnd()) break;
    row.counts.*kUsageCounters[i].field = in.Int();
  }
  if (!in.Failed() && !in.AtEnd()) row.user = in.Text();
  if (in.Failed() || !in.AtEnd()) return std::nullopt;
  return row;
}

}  // namespace

void UsageCounts::Add(const UsageCounts& other) {
  for (const UsageCounter& counter : kUsageCounters) this->*counter.field += other.*counter.field;
}

struct UsageRecorder::Shard {
  mutable std::mutex mutex;
  RowMap rows;
  std::vector<RowMap::value_type*> changed;  // since the last journaling (journal on only)

  // Under `mutex`. Allocates only for a row not yet in this batch.
  UsageCounts& Row(const RowView& row, bool journaling) {
    auto it = rows.find(row);
    if (it == rows.end()) {
      it = rows.try_emplace(RowId{std::string(row.key), std::string(row.tenant),
                                  std::string(row.model), std::string(row.user), row.hour})
               .first;
    }
    if (journaling && !it->second.unjournaled) {
      it->second.unjournaled = true;
      changed.push_back(&*it);
    }
    return it->second.counts;
  }

  // Under `mutex`: the changed rows' totals, to the journal.
  void Journal(trl::Journal& journal) {
    for (RowMap::value_type* row : changed) {
      AppendRecord(journal, row->first, row->second.counts);
      row->second.unjournaled = false;
    }
    changed.clear();
  }
};

UsageRecorder::UsageRecorder() {
  for (auto& shard : shards_) shard = std::make_unique<Shard>();
}

UsageRecorder::~UsageRecorder() = default;

namespace {

template <typename Shards, typename Apply>
void AddTo(Shards& shards, bool journaling, const RowView& row, Apply&& apply) {
  auto& shard = *shards[HashOf(row) % shards.size()];
  std::lock_guard lock(shard.mutex);
  apply(shard.Row(row, journaling));
}

}  // namespace

void UsageRecorder::RecordAdmitted(std::string_view key, std::string_view tenant,
                                   std::string_view model, int64_t unix_seconds,
                                   int64_t prompt_tokens, int64_t completion_tokens,
                                   int64_t cached_tokens, int64_t cost_nanos,
                                   std::string_view user) {
  AddTo(shards_, journaling_, {key, tenant, model, user, HourOf(unix_seconds)},
        [&](UsageCounts& counts) {
          counts.requests += 1;
          counts.prompt_tokens += prompt_tokens;
          counts.completion_tokens += completion_tokens;
          counts.cached_tokens += cached_tokens;
          counts.cost += cost_nanos;
        });
}

void UsageRecorder::RecordRejected(std::string_view key, std::string_view tenant,
                                   std::string_view model, int64_t unix_seconds,
                                   LimitKind refused_by, std::string_view user) {
  AddTo(shards_, journaling_, {key, tenant, model, user, HourOf(unix_seconds)},
        [&](UsageCounts& counts) {
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
            case LimitKind::kSpend:
              counts.rejected_spend += 1;
              break;
          }
        });
}

std::vector<UsageRow> UsageRecorder::TakePending(Journal* journal) {
  std::vector<UsageRow> out;
  for (auto& shard : shards_) {
    RowMap taken;
    {
      std::lock_guard lock(shard->mutex);
      if (journal) shard->Journal(*journal);
      shard->changed.clear();
      taken.swap(shard->rows);
    }
    // The strings move out of the map's nodes, outside the lock.
    out.reserve(out.size() + taken.size());
    while (!taken.empty()) {
      auto node = taken.extract(taken.begin());
      RowId& id = node.key();
      out.push_back({std::move(id.key), std::move(id.tenant), std::move(id.model), id.hour,
                     node.mapped().counts, std::move(id.user)});
    }
  }
  return out;
}

void UsageRecorder::Restore(const std::vector<UsageRow>& rows) {
  for (const UsageRow& row : rows) {
    AddTo(shards_, journaling_, {row.key, row.tenant, row.model, row.user, HourOf(row.start)},
          [&](UsageCounts& counts) { counts.Add(row.counts); });
  }
}

void UsageRecorder::JournalChanges(Journal& journal) {
  for (auto& shard : shards_) {
    std::lock_guard lock(shard->mutex);
    shard->Journal(journal);
  }
}

bool ReadUsageJournal(const Journal& journal, std::vector<UsageRow>* rows, std::string* error) {
  using Id = std::tuple<std::string, std::string, std::string, std::string, int64_t>;
  std::map<Id, UsageCounts> total;
  for (uint64_t segment : journal.Leftover()) {
    std::map<Id, UsageCounts> last;  // a row's last record in its batch is its total there
    auto on_record = [&last](std::string_view record) {
      if (auto row = ParseRecord(record)) {
        last[{std::move(row->key), std::move(row->tenant), std::move(row->model),
              std::move(row->user), row->start}] = row->counts;
      }
    };
    if (!journal.Read(
            segment, [](std::string_view) {}, on_record, error))
      return false;
    for (const auto& [id, counts] : last) total[id].Add(counts);
  }
  for (auto& [id, counts] : total) {
    rows->push_back({std::get<0>(id), std::get<1>(id), std::get<2>(id), std::get<4>(id), counts,
                     std::get<3>(id)});
  }
  return true;
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

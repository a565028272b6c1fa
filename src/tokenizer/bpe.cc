#include "tokenizer/bpe.h"

#include <fmt/format.h>

#include <functional>
#include <queue>

#include "tokenizer/utf8.h"

namespace trl::tok {

namespace {

constexpr uint32_t kNoRank = UINT32_MAX;
// Pieces up to this many symbols merge by scanning (quadratic, but no heap and no list).
constexpr size_t kScanLimit = 24;

}  // namespace

size_t StringHash::operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }

void BpeModel::AddToken(std::string_view bytes, uint32_t id) {
  ids_.emplace(std::string(bytes), id);
}

std::optional<uint32_t> BpeModel::Find(std::string_view bytes) const {
  const auto it = ids_.find(bytes);
  if (it == ids_.end()) return std::nullopt;
  return it->second;
}

void BpeModel::AddMerge(uint32_t left, uint32_t right, uint32_t rank, uint32_t merged) {
  merges_.insert_or_assign(PairKey(left, right), Merge{rank, merged});
}

const BpeModel::Merge* BpeModel::FindMerge(uint32_t left, uint32_t right) const {
  const auto it = merges_.find(PairKey(left, right));
  return it == merges_.end() ? nullptr : &it->second;
}

std::string BpeModel::Finish(const Options& options) {
  options_ = options;
  const bool bytes = options.symbols == Symbols::kBytes;
  if (!bytes && !options.byte_fallback) {
    return options.unk ? ""
                       : "a character outside the vocabulary has no token (no unk_token "
                         "and no byte_fallback)";
  }
  for (unsigned b = 0; b < 256; ++b) {
    const std::string name =
        bytes ? std::string(1, static_cast<char>(b)) : fmt::format("<0x{:02X}>", b);
    const auto id = Find(name);
    if (!id) return fmt::format("the vocabulary has no token for the byte 0x{:02X}", b);
    byte_ids_[b] = *id;
  }
  return "";
}

void BpeModel::InitialSymbols(std::string_view piece, std::vector<uint32_t>& symbols) const {
  if (options_.symbols == Symbols::kBytes) {
    for (const char c : piece) symbols.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    return;
  }
  bool last_unknown = false;
  for (size_t at = 0; at < piece.size();) {
    const size_t n = std::min(Utf8Length(static_cast<unsigned char>(piece[at])), piece.size() - at);
    const std::string_view character = piece.substr(at, n);
    at += n;
    if (const auto id = Find(character)) {
      symbols.push_back(*id);
      last_unknown = false;
    } else if (options_.byte_fallback) {
      for (const char c : character) symbols.push_back(byte_ids_[static_cast<unsigned char>(c)]);
      last_unknown = false;
    } else if (!(options_.fuse_unk && last_unknown)) {
      symbols.push_back(*options_.unk);
      last_unknown = true;
    }
  }
}

void BpeModel::MergeByScan(std::vector<uint32_t>& symbols) const {
  while (symbols.size() > 1) {
    uint32_t best_rank = kNoRank;
    size_t best = 0;
    uint32_t merged = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const Merge* m = FindMerge(symbols[i], symbols[i + 1]);
      if (m != nullptr && m->rank < best_rank) {
        best_rank = m->rank;
        best = i;
        merged = m->merged;
      }
    }
    if (best_rank == kNoRank) return;
    symbols[best] = merged;
    symbols.erase(symbols.begin() + static_cast<std::ptrdiff_t>(best) + 1);
  }
}

// Hugging Face's Word::merge_all: every pair in a heap by (rank, position); a popped pair whose
// symbols have changed since it was pushed is skipped.
void BpeModel::MergeByHeap(std::vector<uint32_t>& symbols) const {
  struct Node {
    uint32_t id;
    int32_t prev;
    int32_t next;  // -1: none
    bool live;
  };
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    uint32_t merged;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  const auto n = static_cast<int32_t>(symbols.size());
  std::vector<Node> nodes(symbols.size());
  std::vector<Candidate> storage;
  storage.reserve(symbols.size());
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap(std::greater<>{},
                                                                              std::move(storage));
  for (int32_t i = 0; i < n; ++i) {
    nodes[i] = Node{symbols[i], i - 1, i + 1 < n ? i + 1 : -1, true};
    if (i + 1 < n) {
      if (const Merge* m = FindMerge(symbols[i], symbols[i + 1]))
        heap.push({m->rank, i, m->merged});
    }
  }
  const auto push_pair = [&](int32_t left) {
    const int32_t right = nodes[left].next;
    if (left < 0 || right < 0) return;
    if (const Merge* m = FindMerge(nodes[left].id, nodes[right].id)) {
      heap.push({m->rank, left, m->merged});
    }
  };
  while (!heap.empty()) {
    const Candidate top = heap.top();
    heap.pop();
    Node& left = nodes[top.pos];
    if (!left.live || left.next < 0) continue;
    const Merge* now = FindMerge(left.id, nodes[left.next].id);
    if (now == nullptr || now->merged != top.merged) continue;
    Node& right = nodes[left.next];
    right.live = false;
    left.id = top.merged;
    left.next = right.next;
    if (left.next >= 0) nodes[left.next].prev = top.pos;
    if (left.prev >= 0) push_pair(left.prev);
    push_pair(top.pos);
  }
  symbols.clear();
  for (int32_t i = 0; i >= 0 && i < n; i = nodes[i].next) symbols.push_back(nodes[i].id);
}

void BpeModel::Encode(std::string_view piece, std::vector<uint32_t>& ids) const {
  if (piece.empty()) return;
  if (options_.ignore_merges) {
    if (const auto id = Find(piece)) {
      ids.push_back(*id);
      return;
    }
  }
  thread_local std::vector<uint32_t> symbols;
  symbols.clear();
  InitialSymbols(piece, symbols);
  if (symbols.size() <= kScanLimit) {
    MergeByScan(symbols);
  } else {
    MergeByHeap(symbols);
  }
  ids.insert(ids.end(), symbols.begin(), symbols.end());
}

}  // namespace trl::tok

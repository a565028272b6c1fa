// Room for the header fields of a connection's current request.
//
// Beast's parser stores each header field of a request, and its target, in an allocation of its
// own: ~15 per request from the OpenAI SDKs (which send eight x-stainless-* headers), 5 from
// curl. A connection handles one request at a time, so its fields can be bumped into one block
// that is reused once the request is gone (when the last of them is freed). What does not fit
// goes to the heap as before.
#pragma once

#include <array>
#include <cstddef>
#include <memory>
#include <type_traits>

namespace trl::http {

class FieldArena {
 public:
  static constexpr size_t kBytes = 2048;

  FieldArena() = default;
  FieldArena(const FieldArena&) = delete;
  FieldArena& operator=(const FieldArena&) = delete;

  // nullptr when the rest of the block is too small.
  void* Allocate(size_t bytes) {
    const size_t start = (used_ + kAlign - 1) & ~(kAlign - 1);
    if (start + bytes > kBytes) return nullptr;
    used_ = start + bytes;
    ++live_;
    return bytes_.data() + start;
  }
  bool Owns(const void* p) const {
    const auto* b = static_cast<const std::byte*>(p);
    return b >= bytes_.data() && b < bytes_.data() + kBytes;
  }
  // Frees one allocation of the block; the block is reused once all of them are freed.
  void Free() {
    if (--live_ == 0) used_ = 0;
  }
  size_t Used() const { return used_; }
  size_t Live() const { return live_; }

 private:
  static constexpr size_t kAlign = alignof(std::max_align_t);
  alignas(std::max_align_t) std::array<std::byte, kBytes> bytes_;
  size_t used_ = 0;
  size_t live_ = 0;
};

// A std::allocator that tries `arena` first. Default-constructed (no arena) it is the heap, as
// is every copy of a message made with it: only moves carry the arena along.
template <class T>
struct FieldAllocator {
  using value_type = T;
  using propagate_on_container_copy_assignment = std::false_type;
  using propagate_on_container_move_assignment = std::true_type;
  using propagate_on_container_swap = std::true_type;

  FieldAllocator() = default;
  explicit FieldAllocator(FieldArena* a) : arena(a) {}
  template <class U>
  FieldAllocator(const FieldAllocator<U>& other) : arena(other.arena) {}  // NOLINT: rebinding

  T* allocate(size_t n) {
    if (arena != nullptr) {
      if (void* p = arena->Allocate(n * sizeof(T))) return static_cast<T*>(p);
    }
    return std::allocator<T>{}.allocate(n);
  }
  void deallocate(T* p, size_t n) {
    if (arena != nullptr && arena->Owns(p)) {
      arena->Free();
    } else {
      std::allocator<T>{}.deallocate(p, n);
    }
  }
  FieldAllocator select_on_container_copy_construction() const { return {}; }

  template <class U>
  bool operator==(const FieldAllocator<U>& other) const {
    return arena == other.arena;
  }

  FieldArena* arena = nullptr;
};

}  // namespace trl::http

// The decimal text of an integer, on the stack: for appending numbers to heads and headers
// without a std::string per number (std::to_string).
#pragma once

#include <charconv>
#include <cstdint>
#include <string_view>

namespace trl {

class Decimal {
 public:
  explicit Decimal(int64_t value)
      : end_(std::to_chars(digits_, digits_ + sizeof digits_, value).ptr) {}
  Decimal(const Decimal&) = delete;
  Decimal& operator=(const Decimal&) = delete;

  std::string_view View() const { return {digits_, static_cast<size_t>(end_ - digits_)}; }

 private:
  char digits_[20];  // INT64_MIN has 19 digits and a sign
  char* end_;
};

}  // namespace trl

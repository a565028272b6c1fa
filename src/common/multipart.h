// A small multipart/form-data reader (RFC 7578 over RFC 2046) for the uploads of
// /v1/audio/transcriptions (the gateway's and mock-llm's). Pure and thread-safe; the parts point
// into the body, which must outlive them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace trl {

struct MultipartPart {
  std::string_view name;      // Content-Disposition's name
  std::string_view filename;  // Content-Disposition's filename; empty for a plain field
  std::string_view content_type;
  std::string_view data;
};

inline constexpr size_t kMultipartMaxParts = 32;

// The boundary of a `multipart/form-data; boundary=...` Content-Type (quoted or not, 1 to 70
// characters); nullopt for any other type or a missing or malformed boundary.
std::optional<std::string_view> MultipartBoundary(std::string_view content_type);

// The parts of `body`, or why it is not a form: no opening delimiter, a part whose headers or
// data do not end (a truncated body), a part without a form-data name, two parts of the same
// name, more than kMultipartMaxParts parts. A preamble before the first delimiter and anything
// after the closing one are ignored, as RFC 2046 says.
std::variant<std::vector<MultipartPart>, std::string> ParseMultipart(std::string_view body,
                                                                     std::string_view boundary);

// The part named `name`, or null.
const MultipartPart* FindPart(const std::vector<MultipartPart>& parts, std::string_view name);

}  // namespace trl

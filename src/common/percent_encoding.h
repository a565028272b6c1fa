// Percent-encoding (RFC 3986 §2.1) of names put into keys and URLs, and its decoding.
//
// Thread-safety: pure functions.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace trl {

// Appends `text` to `out` with '%' and every character of `reserved` written as %XX (upper-case
// hex), the rest as it is: the result holds none of `reserved`, and decodes back to `text`.
void AppendPercentEncoded(std::string_view text, std::string_view reserved, std::string& out);

// "%XX" sequences (either case) decoded, the rest as it is. nullopt when a '%' is not followed
// by two hex digits.
std::optional<std::string> PercentDecode(std::string_view text);

}  // namespace trl

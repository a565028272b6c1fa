#include "common/multipart.h"

#include <algorithm>
#include <cctype>

namespace trl {
namespace {

std::string_view Trim(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) text.remove_suffix(1);
  return text;
}

bool IEquals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) ==
           std::tolower(static_cast<unsigned char>(y));
  });
}

// The value of parameter `key` in "type; a=1; b=\"x;y\"" (quoted values unquoted, without
// their backslash escapes resolved: names with quotes are percent-encoded by browsers).
std::optional<std::string_view> Parameter(std::string_view header, std::string_view key) {
  size_t at = header.find(';');
  while (at != std::string_view::npos) {
    std::string_view rest = Trim(header.substr(at + 1));
    const size_t eq = rest.find('=');
    if (eq == std::string_view::npos) return std::nullopt;
    const std::string_view name = Trim(rest.substr(0, eq));
    std::string_view value = Trim(rest.substr(eq + 1));
    size_t end = 0;
    if (!value.empty() && value.front() == '"') {
      end = 1;
      while (end < value.size() && value[end] != '"') end += value[end] == '\\' ? 2 : 1;
      if (end >= value.size()) return std::nullopt;  // an unterminated quote
      if (IEquals(name, key)) return value.substr(1, end - 1);
      ++end;
    } else {
      end = std::min(value.find(';'), value.size());
      if (IEquals(name, key)) return Trim(value.substr(0, end));
    }
    const size_t next = value.find(';', end);
    if (next == std::string_view::npos) return std::nullopt;
    at = static_cast<size_t>(value.data() + next - header.data());
  }
  return std::nullopt;
}

// A part's header block ("Name: value" lines, CRLF-separated) into `part`.
bool ReadPartHeaders(std::string_view block, MultipartPart& part) {
  bool form_data = false;
  while (!block.empty()) {
    const size_t eol = block.find("\r\n");
    const std::string_view line = block.substr(0, eol);
    block.remove_prefix(eol == std::string_view::npos ? block.size() : eol + 2);
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return false;
    const std::string_view name = Trim(line.substr(0, colon));
    const std::string_view value = Trim(line.substr(colon + 1));
    if (IEquals(name, "content-type")) part.content_type = value;
    if (!IEquals(name, "content-disposition")) continue;
    form_data = IEquals(Trim(value.substr(0, value.find(';'))), "form-data");
    part.name = Parameter(value, "name").value_or(std::string_view());
    part.filename = Parameter(value, "filename").value_or(std::string_view());
  }
  return form_data && !part.name.empty();
}

}  // namespace

std::optional<std::string_view> MultipartBoundary(std::string_view content_type) {
  constexpr size_t kMaxBoundary = 70;  // RFC 2046
  const std::string_view type = Trim(content_type.substr(0, content_type.find(';')));
  if (!IEquals(type, "multipart/form-data")) return std::nullopt;
  std::optional<std::string_view> boundary = Parameter(content_type, "boundary");
  if (!boundary || boundary->empty() || boundary->size() > kMaxBoundary) return std::nullopt;
  return boundary;
}

std::variant<std::vector<MultipartPart>, std::string> ParseMultipart(std::string_view body,
                                                                     std::string_view boundary) {
  const std::string delimiter = "\r\n--" + std::string(boundary);
  // The first delimiter may open the body, without the CRLF that ends a preamble.
  const std::string_view opening = std::string_view(delimiter).substr(2);
  size_t at = opening.size();
  if (body.substr(0, opening.size()) != opening) {
    at = body.find(delimiter);
    if (at == std::string_view::npos) return std::string("no multipart boundary in the body");
    at += delimiter.size();
  }
  std::vector<MultipartPart> parts;
  for (;;) {
    const std::string_view rest = body.substr(at);
    if (rest.substr(0, 2) == "--") return parts;  // the closing delimiter
    if (rest.substr(0, 2) != "\r\n") return std::string("malformed multipart delimiter line");
    const size_t headers_end = rest.find("\r\n\r\n", 2);
    if (headers_end == std::string_view::npos) return std::string("truncated multipart part");
    MultipartPart part;
    if (!ReadPartHeaders(rest.substr(2, headers_end - 2), part)) {
      return std::string("multipart part without a form-data name");
    }
    const size_t data_start = headers_end + 4;
    const size_t data_end = rest.find(delimiter, data_start);
    if (data_end == std::string_view::npos) return std::string("truncated multipart part");
    part.data = rest.substr(data_start, data_end - data_start);
    if (FindPart(parts, part.name) != nullptr) {
      return "duplicate multipart field '" + std::string(part.name) + "'";
    }
    if (parts.size() == kMultipartMaxParts) return std::string("too many multipart parts");
    parts.push_back(part);
    at += data_end + delimiter.size();
  }
}

const MultipartPart* FindPart(const std::vector<MultipartPart>& parts, std::string_view name) {
  auto found = std::find_if(parts.begin(), parts.end(),
                            [&](const MultipartPart& part) { return part.name == name; });
  return found == parts.end() ? nullptr : &*found;
}

}  // namespace trl

#include "tokenizer/chat_framing.h"

#include <array>

#include "tokenizer/utf8.h"

namespace trl {

namespace {

// The code points Python's str.isspace() is true of.
bool PythonSpace(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

uint32_t CodePoint(std::string_view c) {
  const auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<unsigned char>(c[i])); };
  switch (c.size()) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

// The last character of `text` (UTF-8 assumed).
std::string_view LastCharacter(std::string_view text) {
  size_t at = text.size() - 1;
  while (at > 0 && (static_cast<unsigned char>(text[at]) & 0xC0) == 0x80) --at;
  return text.substr(at);
}

void AppendFramed(std::string& out, std::string_view frame, std::string_view role) {
  for (size_t at = 0; at < frame.size();) {
    const size_t hole = frame.find("{role}", at);
    if (hole == std::string_view::npos) {
      out.append(frame.substr(at));
      return;
    }
    out.append(frame.substr(at, hole - at));
    out.append(role);
    at = hole + 6;
  }
}

std::string Joined(std::span<const std::string_view> texts) {
  std::string out;
  for (size_t i = 0; i < texts.size(); ++i) {
    if (i > 0) out += '\n';
    out.append(texts[i]);
  }
  return out;
}

}  // namespace

std::string_view PythonStrip(std::string_view text) {
  while (!text.empty()) {
    const size_t n = std::min(tok::Utf8Length(static_cast<unsigned char>(text[0])), text.size());
    if (!PythonSpace(CodePoint(text.substr(0, n)))) break;
    text.remove_prefix(n);
  }
  while (!text.empty()) {
    const std::string_view last = LastCharacter(text);
    if (!PythonSpace(CodePoint(last))) break;
    text.remove_suffix(last.size());
  }
  return text;
}

std::string ChatFraming::Render(std::span<const ChatTurn> messages) const {
  std::string out = begin;
  std::string system;
  bool has_system = false;
  if (system_in_first_turn && !messages.empty() && messages[0].role == "system") {
    system = system_in_first_turn->first + Joined(messages[0].texts) + system_in_first_turn->second;
    has_system = true;
    messages = messages.subspan(1);
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatTurn& m = messages[i];
    const RoleFrame* frame = nullptr;
    for (const RoleFrame& r : roles) {
      if (r.role == m.role || (r.role.empty() && frame == nullptr)) frame = &r;
    }
    std::string content = Joined(m.texts);
    if (i == 0 && has_system) content = system + content;
    if (frame != nullptr) AppendFramed(out, frame->prefix, m.role);
    out.append(strip ? PythonStrip(content) : std::string_view(content));
    if (frame != nullptr) AppendFramed(out, frame->suffix, m.role);
  }
  out += reply;
  return out;
}

std::optional<ChatFraming> BuiltInChatFraming(std::string_view name) {
  ChatFraming f;
  if (name == "llama3") {
    f.begin = "<|begin_of_text|>";
    f.roles = {{"", "<|start_header_id|>{role}<|end_header_id|>\n\n", "<|eot_id|>"}};
    f.reply = "<|start_header_id|>assistant<|end_header_id|>\n\n";
    f.strip = true;
  } else if (name == "llama2") {
    f.roles = {{"assistant", " ", " </s>"}, {"", "<s>[INST] ", " [/INST]"}};
    f.strip = true;
    f.system_in_first_turn.emplace("<<SYS>>\n", "\n<</SYS>>\n\n");
  } else if (name == "chatml") {
    f.roles = {{"", "<|im_start|>{role}\n", "<|im_end|>\n"}};
    f.reply = "<|im_start|>assistant\n";
  } else {
    return std::nullopt;
  }
  return f;
}

}  // namespace trl

// What a model family's chat template adds around the messages of a chat request: the text it
// renders, written as data (prefixes and suffixes per role) rather than run by a template engine.
// The built-in framings follow the chat templates of the model cards:
//  - llama3: <|begin_of_text|>, then per message <|start_header_id|>ROLE<|end_header_id|>\n\n,
//    the content trimmed, <|eot_id|>; the reply primed with the assistant's header;
//  - llama2: <s>[INST] USER [/INST] ASSISTANT </s> per turn (contents stripped), a first system
//    message put inside the first user turn between <<SYS>>\n and \n<</SYS>>\n\n; no priming;
//  - chatml (Qwen, Yi, many fine-tunes): <|im_start|>ROLE\nCONTENT<|im_end|>\n per message, the
//    reply primed with <|im_start|>assistant\n.
// A message's content is its texts joined by "\n" (how vLLM renders a list of text parts for a
// template that expects a string).
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace trl {

struct ChatTurn {
  std::string_view role;
  std::span<const std::string_view> texts;
};

struct ChatFraming {
  struct RoleFrame {
    std::string role;    // "" matches any role not listed
    std::string prefix;  // "{role}" stands for the message's role
    std::string suffix;
  };
  std::string begin;  // before the first message
  std::vector<RoleFrame> roles;
  std::string reply;   // after the last message: the generation prompt
  bool strip = false;  // contents stripped of surrounding whitespace (Python's str.strip)
  // Llama 2: a first system message is no turn of its own; it goes before the first turn's
  // content between these two, and that whole content is stripped.
  std::optional<std::pair<std::string, std::string>> system_in_first_turn;

  // The prompt text the template renders for `messages`.
  std::string Render(std::span<const ChatTurn> messages) const;
};

// The framing named `name` (llama2, llama3, chatml), or nullopt.
std::optional<ChatFraming> BuiltInChatFraming(std::string_view name);

// Python's str.strip(): `text` without the whitespace (str.isspace) at either end.
std::string_view PythonStrip(std::string_view text);

}  // namespace trl

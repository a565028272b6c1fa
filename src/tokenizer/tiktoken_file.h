// A tiktoken rank file (`.tiktoken`: one "base64(token bytes) rank" line per token, as OpenAI
// publishes cl100k_base and o200k_base). The file does not say which split expression goes
// with it; the encoding is recognised by its number of ranks.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace trl::tok {

// Throws std::runtime_error naming `path` and what is wrong.
std::unique_ptr<Tokenizer> LoadTiktoken(const std::string& path);

}  // namespace trl::tok

// A Hugging Face tokenizer.json read into the parts this library has (added tokens, Pipeline,
// BpeModel), or refused with what it uses that they do not.
#pragma once

#include <memory>
#include <string>

#include "tokenizer/tokenizer.h"

namespace trl::tok {

// Throws std::runtime_error naming `path` and the unsupported or malformed part.
std::unique_ptr<Tokenizer> LoadHuggingFace(const std::string& path);

}  // namespace trl::tok

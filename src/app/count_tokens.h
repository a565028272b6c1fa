// `token-rate-limiter count-tokens --tokenizer SPEC [--ids] [--jsonl] [--chat FAMILY]`: counts
// what stdin holds the way the gateway counts a prompt, so an operator can check a tokenizer file
// (and tests can compare many strings with the reference tokenizers in one run).
//  - without --jsonl, all of stdin is one text (any bytes);
//  - with --jsonl, each line is one JSON string, and each output line its count;
//  - with --chat FAMILY (llama2, llama3, chatml), the input (or each line) is instead a chat
//    request body, and the count is the prompt tokens the gateway reserves for it under that
//    chat framing;
//  - with --ids, the ids (a JSON array) instead of the count.
// Exit status: 0, 1 when the tokenizer cannot be loaded, 2 for a wrong command line or input.
#pragma once

namespace trl {

int CountTokensCommand(int argc, char** argv);

}  // namespace trl

// Between "admit" and "forward": the body the backend gets is edited so that it asks for exactly
// what was accounted for. The model's canonical name instead of an alias; the output cap the
// gateway reserved in every cap field the client sent (or `max_tokens` added when it sent none);
// `stream_options.include_usage: true` for a streaming request, so settlement gets the backend's
// usage. Everything else passes through byte for byte.
//
// Pure functions of their arguments; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "proxy/request_fields.h"

namespace trl {

// The output cap per choice the gateway reserves and sends: the client's cap clamped to the
// model's max_output_tokens (a ceiling, not a refusal), or max_output_tokens when the client gave
// none. 0 for the endpoints that generate nothing (embeddings, rerank, score, tokenize); a
// transcription's is max_output_tokens (it names no cap).
int64_t ReservedCap(ApiEndpoint endpoint, const RequestFields& fields, int64_t max_output_tokens);

// The output a request may produce: the cap per choice times its choices, at most
// kMaxTokenCount.
int64_t OutputAllowance(const RequestFields& fields, int64_t cap);

// Edits `body`, from which `fields` was extracted and which has not changed since, in place:
//  - `model` becomes `canonical_model` (JSON-quoted; a transcription's form field as it is) when
//    the client named it otherwise;
//  - chat and completions: every cap field the client sent (max_tokens, max_completion_tokens,
//    null ones included) becomes `cap` unless it is already; when it sent none, and for
//    completions when it sent no max_tokens (the only cap a completions backend reads),
//    `"max_tokens":<cap>` is added just after the root's '{'; the Responses API likewise with
//    its one cap, max_output_tokens;
//  - a streaming chat or completions request whose include_usage is not already true gets it:
//    `"stream_options":{"include_usage":true}` added when absent, a null stream_options replaced
//    by that object, an object's include_usage value set to true (or the member added first in
//    it), its other members kept byte for byte.
// Edits are applied from the highest offset down, so the spans below stay valid; a body that
// needs none is not touched (no copy). Returns whether anything changed.
bool RewriteForwardBody(ApiEndpoint endpoint, const RequestFields& fields,
                        std::string_view canonical_model, int64_t cap, std::string& body);

}  // namespace trl

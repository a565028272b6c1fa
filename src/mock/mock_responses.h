// POST /v1/responses, the OpenAI Responses API as vLLM serves it: the request's reading and the
// exact bytes of its answers. Pure and thread-safe, like mock_api.h, whose answer rule it shares:
// PlanMockAnswer decides the words, and finish_reason "length" (the cap, or --default-max-output
// without one) makes the response "incomplete" with incomplete_details.reason
// "max_output_tokens"; otherwise it is "completed". The answer is always text (tools are
// counted, never called), the same "w1 ... wN" as chat.
//
// Request: `model`; `input`, a string or a non-empty array of item objects (messages
// {type?: "message", role, content: string | [parts]}, function_call, function_call_output,
// ...); `instructions` (string); `tools` (array); `max_output_tokens` (integer >= 0; 0 = no cap,
// as for chat); `stream` (boolean). `previous_response_id` (string) and `background` (boolean)
// are accepted and repeated in the response, but the mock stores nothing: no earlier turn is
// added to the prompt and the answer is always given at once. The other members the response
// repeats (metadata, parallel_tool_calls, reasoning, store, temperature, text, tool_choice,
// top_p, truncation, user...) are echoed as sent, or their defaults.
//
// Usage rule (input_tokens), the chat rule of mock_api.h for the messages vLLM renders:
//   instructions: kTokensPerMessage + its words (a system message);
//   input string: kTokensPerMessage + its words (one user message);
//   input items:  per item kTokensPerMessage + the words of every string in it except the
//                 values of its `role` and `type` and of its content parts' `type`;
//   tools:        the words of every string inside.
// output_tokens = the words generated; cached_tokens and reasoning_tokens are 0.
//
// Streaming (`stream: true`) sends events "event: <type>\ndata: <json>\n\n", each with a
// sequence_number counting from 0, and no [DONE]: response.created and response.in_progress
// (the response in_progress, no output, usage null), response.output_item.added,
// response.content_part.added, one response.output_text.delta per word ("w1", then " wk"),
// response.output_text.done, response.content_part.done, response.output_item.done, and
// response.completed with the whole response (status "completed" or "incomplete") and usage.
#pragma once

#include <cstdint>
#include <string>
#include <variant>

#include "mock/mock_api.h"
#include "mock/mock_options.h"

namespace trl {

// A MockRequest with endpoint kResponses; the cap is max_output_tokens.
std::variant<MockRequest, MockError> ParseResponsesRequest(std::string& body,
                                                           const MockOptions& options);

// "msg_mock<seq>": the output message's id.
void AppendResponsesItemId(std::string& out, uint64_t seq);

// The response object, its usage as `report` says (kNone: "usage":null). Wrong usages (the
// usage-* faults) break input_tokens as AppendUsage breaks prompt_tokens; kNoCompletion leaves
// output_tokens out.
void AppendResponsesBody(std::string& out, const MockRequest& request, const MockResponseMeta& meta,
                         const MockAnswer& answer, MockUsageReport report);

// The stream's events, by the sequence above. Head: the four events before the first delta
// (sequence numbers 0 to 3). Delta: word k (1-based), sequence number 3 + k. Tail: the four
// events after the last of `answer.words` deltas.
void AppendResponsesStreamHead(std::string& out, const MockRequest& request,
                               const MockResponseMeta& meta);
void AppendResponsesStreamDelta(std::string& out, const MockResponseMeta& meta, int64_t word);
void AppendResponsesStreamTail(std::string& out, const MockRequest& request,
                               const MockResponseMeta& meta, const MockAnswer& answer,
                               MockUsageReport report);

}  // namespace trl

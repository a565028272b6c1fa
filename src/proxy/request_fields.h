// Step "parse": pulls what the gateway needs out of an OpenAI request body in one pass with
// simdjson On-Demand, without building a DOM: the model, streaming flags, the output cap and the
// number of choices, the texts and media parts whose tokens are counted for the reservation, and
// where the fields the gateway rewrites sit in the body (forward_body.h edits them in place).
//
// Every field is hostile. The backend (vLLM: Python's json, the last of repeated keys wins;
// `max_completion_tokens or max_tokens`, so 0 means no cap) must serve exactly what was
// accounted for, hence: a repeated top-level key (or a repeated key in stream_options) is
// refused, a cap of 0 is refused, and every field a model reads counts (see ExtractRequestFields).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "config/config.h"
#include "proxy/text_views.h"
#include "tokenizer/chat_framing.h"

namespace trl {

class TokenCounter;

// kResponses: the Responses API (POST /v1/responses); kRerank, kScore, kTokenize, kDetokenize:
// vLLM's /v1/rerank, /v1/score, /tokenize, /detokenize; kTranscriptions: speech to text.
enum class ApiEndpoint {
  kChatCompletions,
  kCompletions,
  kEmbeddings,
  kResponses,
  kRerank,
  kScore,
  kTokenize,
  kDetokenize,
  kTranscriptions,  // POST /v1/audio/transcriptions (transcription_fields.h)
  kPassthrough,     // a model's passthrough path (config.h): any method, only `model` is read
};

// Whether the endpoint generates text (an output cap is reserved and forwarded).
constexpr bool Generates(ApiEndpoint e) {
  return e == ApiEndpoint::kChatCompletions || e == ApiEndpoint::kCompletions ||
         e == ApiEndpoint::kResponses;
}
// Whether its requests cost tokens (/tokenize, /detokenize and passthrough paths only cost a
// request).
constexpr bool ChargesTokens(ApiEndpoint e) {
  return e != ApiEndpoint::kTokenize && e != ApiEndpoint::kDetokenize &&
         e != ApiEndpoint::kPassthrough;
}

// Where a JSON value sits in the body: bytes [offset, offset + length). A JSON value is never
// empty, so length 0 means the field was not sent.
struct ByteSpan {
  size_t offset = 0;
  size_t length = 0;
  bool Present() const { return length != 0; }
};

// Media parts of chat messages: the gateway never decodes one, each costs a flat amount
// (ModelConfig::media_tokens).
struct MediaCounts {
  int64_t images = 0;  // parts of type image_url, image, input_image
  int64_t audios = 0;  // input_audio, audio_url
  int64_t videos = 0;  // video_url
  int64_t files = 0;   // file, input_file
};

// A chat message's texts (RequestFields::texts[first, first + count)) and its role ("" if it has
// none), viewed like the texts.
struct ChatMessageTexts {
  std::string_view role;
  size_t first = 0;
  size_t count = 0;
};

struct RequestFields {
  std::string model;            // unescaped
  ByteSpan model_span;          // the model's JSON string, quotes included
  size_t after_root_brace = 0;  // just after the root object's '{': where fields are added
  bool stream = false;
  // stream_options: its value (null included); has_stream_options when it is an object, with
  // its number of members and the value of include_usage (null included) inside it.
  ByteSpan stream_options_span;
  bool has_stream_options = false;
  int64_t stream_options_members = 0;
  ByteSpan include_usage_span;
  bool include_usage = false;  // stream_options.include_usage is true as the client sent it
  // The client's output cap per choice: max_completion_tokens if given, else max_tokens
  // (chat and completions; the Responses API's max_output_tokens, whose span is
  // max_tokens_span; null is absent). The spans are the values, null included.
  std::optional<int64_t> max_tokens;
  ByteSpan max_tokens_span;
  ByteSpan max_completion_tokens_span;
  // Sequences the backend generates: max(n, best_of), times the prompts of a completion.
  int64_t choices = 1;
  // Texts to count, viewing the parser's buffers and the body: valid until the next extraction
  // on this thread and until the body changes, so count them before any co_await or edit.
  TextViews texts;
  int64_t messages = 0;  // chat messages or Responses input items
  // Chat completions: each message's texts, which the model's chat framing counts whole
  // (TokenCounter::CountChat); the texts outside them (tools, ...) count on their own.
  boost::container::small_vector<ChatMessageTexts, 8> chat;
  int64_t pretokenized = 0;  // prompts or inputs given as token-id arrays
  MediaCounts media;
  int64_t audio_seconds = 0;  // a transcription's audio, as estimated (transcription_fields.h)
  std::string user;           // the OpenAI `user` field, unescaped ("" when absent or null)
};

struct FieldError {
  std::string param;    // the offending field, e.g. "messages[2].content"
  std::string message;  // what is wrong and what to do
};

// The spare capacity a JSON body needs after its end to be parsed in place (simdjson's padding).
inline constexpr size_t kJsonBodyPadding = 64;

// The longest `user` accepted (a budget's name with `scope: user`).
constexpr size_t kMaxUserBytes = 256;

// The largest output cap accepted; anything above is an absurd max_tokens (400).
constexpr int64_t kMaxTokensCeiling = 10'000'000;
// The most `n` or `best_of` may ask for (vLLM's own bound is of this order).
constexpr int64_t kMaxChoices = 128;
// Where token counts saturate: the largest limit a config may hold (1e15). A hostile body cannot
// overflow a reservation, which stays exact in a Redis script's doubles and is refused as
// tokens_exceed_limit.
constexpr int64_t kMaxTokenCount = 1'000'000'000'000'000;

// Reads the request. `body` must have at least 64 spare bytes of capacity (simdjson padding);
// the function reserves them if not. Returns nullopt on success, else the first problem found.
// Thread-safe (a parser per thread).
//
// Counted as prompt text (chat and completions): every member of every chat message but `role`
// (content strings; content parts' text and refusal; a media part counts one image, audio, video
// or file and never its data; a part of another type its JSON text; other members such as
// tool_calls, function_call, name, tool_call_id: strings as they are, objects and arrays by their
// JSON text), completions' `prompt`, and every top-level field without a meaning of its own to the
// gateway or that the model never reads (tools, functions, response_format, tool_choice,
// documents, chat_template_kwargs, suffix, ...: strings as they are, objects and arrays by their
// JSON text; numbers, booleans and nulls are not counted). Embeddings: `input` only.
// Responses: `input` (a string, or items: each one message, read as chat's messages are but for
// its type, id and status), `instructions`, `tools` and the other fields as above; `background:
// true` is refused (its usage would arrive after the exchange, where no settlement sees it).
// Rerank: `query` once per document, and each of `documents` (a string, or an object by its JSON
// text). Score: `text_1` and `text_2` (strings or lists of strings), a single one once per text of
// the other list. Tokenize and detokenize: nothing (only `model` is read).
std::optional<FieldError> ExtractRequestFields(ApiEndpoint endpoint, std::string& body,
                                               RequestFields& out);

// The chat messages of extracted fields, as a TokenCounter counts them (views of the texts).
boost::container::small_vector<ChatTurn, 8> ChatTurns(const RequestFields& fields);

// A copy of extracted fields whose texts and roles view `storage` instead of the parser's
// buffers and the body: what counting them on another thread, or after a co_await, needs.
struct OwnedRequestFields {
  explicit OwnedRequestFields(const RequestFields& from);
  OwnedRequestFields(const OwnedRequestFields&) = delete;
  OwnedRequestFields& operator=(const OwnedRequestFields&) = delete;
  std::string storage;
  RequestFields fields;
};

// Prompt tokens of the extracted request under `counter`, media parts (and a transcription's
// seconds of audio) at `media`'s costs; at most kMaxTokenCount.
int64_t CountPromptTokens(const RequestFields& fields, const TokenCounter& counter,
                          const MediaTokens& media);

}  // namespace trl

#include "proxy/request_fields.h"

#include <simdjson.h>

#include <boost/container/small_vector.hpp>
#include <unordered_set>

#include "common/saturating.h"
#include "limits/token_counter.h"
#include "proxy/json_null.h"

namespace trl {
namespace {

namespace od = simdjson::ondemand;

// One field error, or nothing: lets the parsing functions below return early on the first
// problem without exceptions.
using Result = std::optional<FieldError>;

Result TypeError(const std::string& param, std::string_view expected) {
  return FieldError{param, "'" + param + "' must be " + std::string(expected) + "."};
}

// simdjson 3.0.1's is_null() is a result that throws when taken as a bool after an error (a
// misspelt atom such as `nul3`): read it as a value, an error being "not null".
Result Malformed() {
  return FieldError{"", "The request body is not valid JSON. Send a JSON object."};
}

Result Repeated(const std::string& param) {
  return FieldError{param, "'" + param +
                               "' appears more than once in the request body. Send "
                               "each field once."};
}

// The keys of one object, unescaped, to refuse a repeated one: the backend would keep the last
// and the gateway would have read both. A linear search for the dozen keys of a request; a hash
// set once there are many, so that a body of 100 000 keys is not quadratic.
class KeySet {
 public:
  // False when `key` was inserted before. Views the parser's buffer: one document at a time.
  bool Insert(std::string_view key) {
    if (few_.size() < kFew) {
      for (std::string_view seen : few_) {
        if (seen == key) return false;
      }
      few_.push_back(key);
      return true;
    }
    if (many_.empty()) many_.insert(few_.begin(), few_.end());
    return many_.insert(key).second;
  }

 private:
  static constexpr size_t kFew = 32;
  boost::container::small_vector<std::string_view, kFew> few_;
  std::unordered_set<std::string_view> many_;
};

// What the functions below share: the body (spans are offsets into it) and the output.
struct Reader {
  const std::string& body;
  RequestFields& out;

  // A raw token or container text, without the whitespace simdjson leaves after it.
  ByteSpan SpanOf(std::string_view raw) const {
    raw = TrimTrailingJsonSpace(raw);
    return {static_cast<size_t>(raw.data() - body.data()), raw.size()};
  }
  std::string_view Text(ByteSpan span) const { return {body.data() + span.offset, span.length}; }
};

// A value the model reads: a string as it is, an object or an array by its JSON text (the chat
// template renders it much like that). Numbers, booleans and nulls are a token or two: not
// counted.
Result AddValueText(const Reader& r, od::value value) {
  od::json_type type;
  if (value.type().get(type)) return Malformed();
  std::string_view text;
  if (type == od::json_type::string) {
    if (value.get_string().get(text)) return Malformed();
    r.out.texts.push_back(text);
  } else if (type == od::json_type::object) {
    od::object object;
    if (value.get_object().get(object) || object.raw_json().get(text)) return Malformed();
    r.out.texts.push_back(r.Text(r.SpanOf(text)));
  } else if (type == od::json_type::array) {
    od::array array;
    if (value.get_array().get(array) || array.raw_json().get(text)) return Malformed();
    r.out.texts.push_back(r.Text(r.SpanOf(text)));
  }
  return std::nullopt;
}

// max_tokens / max_completion_tokens: null is absent; else 1..kMaxTokensCeiling. 0 is refused:
// vLLM reads `max_completion_tokens or max_tokens`, so 0 would mean "no cap at all".
Result ReadCap(const Reader& r, od::value value, std::string_view name, ByteSpan& span,
               std::optional<int64_t>& out) {
  span = r.SpanOf(value.raw_json_token());
  if (IsNull(value)) return std::nullopt;
  int64_t n;
  if (value.get_int64().get(n) != simdjson::SUCCESS) {
    return TypeError(std::string(name), "a positive integer");
  }
  if (n < 1 || n > kMaxTokensCeiling) {
    const std::string param(name);
    return FieldError{param, "'" + param +
                                 "' must be at least 1 (the model server reads 0 as "
                                 "no cap at all) and at most " +
                                 std::to_string(kMaxTokensCeiling) + ", got " + std::to_string(n) +
                                 ". Omit it for the model's default."};
  }
  out = n;
  return std::nullopt;
}

// n / best_of: null is absent (1); else 1..kMaxChoices.
Result ReadChoiceCount(od::value value, std::string_view name, int64_t& out) {
  if (IsNull(value)) return std::nullopt;
  int64_t n;
  if (value.get_int64().get(n) != simdjson::SUCCESS || n < 1 || n > kMaxChoices) {
    return TypeError(std::string(name), "an integer from 1 to " + std::to_string(kMaxChoices));
  }
  out = n;
  return std::nullopt;
}

// A string, or an array of strings or token ids (completions' prompt, embeddings' input; an
// array of token-id arrays too). `prompts` gets how many prompts it holds: the backend generates
// for each string and each token-id array; a flat array of ids is one prompt.
Result ReadPromptLike(od::value value, const std::string& param, RequestFields& out,
                      int64_t& prompts) {
  od::json_type type;
  if (value.type().get(type)) return Malformed();
  if (type == od::json_type::string) {
    std::string_view s;
    if (value.get_string().get(s)) return Malformed();
    out.texts.push_back(s);
    prompts = 1;
    return std::nullopt;
  }
  if (type != od::json_type::array) return TypeError(param, "a string or an array of strings");
  od::array array;
  if (value.get_array().get(array)) return Malformed();
  bool flat_ids = false;
  prompts = 0;
  for (auto element : array) {
    od::value item;
    if (element.get(item)) return Malformed();
    od::json_type item_type;
    if (item.type().get(item_type)) return Malformed();
    if (item_type == od::json_type::string) {
      std::string_view s;
      if (item.get_string().get(s)) return Malformed();
      out.texts.push_back(s);
      ++prompts;
    } else if (item_type == od::json_type::number) {
      ++out.pretokenized;
      flat_ids = true;
    } else if (item_type == od::json_type::array) {
      od::array ids;
      if (item.get_array().get(ids)) return Malformed();
      for (auto id : ids) {
        int64_t ignored;
        if (id.get_int64().get(ignored)) return TypeError(param, "an array of token-id arrays");
        ++out.pretokenized;
      }
      ++prompts;
    } else {
      return TypeError(param, "a string or an array of strings");
    }
  }
  if (flat_ids) ++prompts;
  return std::nullopt;
}

// "messages[i]" or "input[i]", and a suffix: built only for an error message.
std::string ListParam(std::string_view list, size_t index, std::string_view suffix = {}) {
  return std::string(list) + "[" + std::to_string(index) + "]" + std::string(suffix);
}

enum class PartKind { kText, kImage, kAudio, kVideo, kFile, kOther };

PartKind KindOf(std::string_view type) {
  if (type == "text" || type == "refusal" || type == "input_text" || type == "output_text") {
    return PartKind::kText;
  }
  if (type == "image_url" || type == "image" || type == "input_image") return PartKind::kImage;
  if (type == "input_audio" || type == "audio_url") return PartKind::kAudio;
  if (type == "video_url") return PartKind::kVideo;
  if (type == "file" || type == "input_file") return PartKind::kFile;
  return PartKind::kOther;
}

// One content part (an object): a text part's text and refusal count; a media part counts one
// image, audio, video or file, never its URL or data; any other part (or one without a type) its
// JSON text, since the gateway cannot tell what the model makes of it.
Result ReadPart(const Reader& r, od::object part) {
  std::string_view raw;
  if (part.raw_json().get(raw) || part.reset().error()) return Malformed();
  const size_t first_text = r.out.texts.size();
  std::string_view type;  // the last "type" wins, as in the backend's JSON parser
  bool typed = false;
  for (auto field : part) {
    std::string_view key, s;
    if (field.unescaped_key().get(key)) return Malformed();
    if (key == "type") {
      typed = field.value().get_string().get(type) == simdjson::SUCCESS;
    } else if (key == "text" || key == "refusal") {
      if (field.value().get_string().get(s) == simdjson::SUCCESS) r.out.texts.push_back(s);
    }
  }
  const PartKind kind = typed ? KindOf(type) : PartKind::kOther;
  if (kind == PartKind::kText) return std::nullopt;
  r.out.texts.resize(first_text);  // the texts of a part that is not text are not read as such
  switch (kind) {
    case PartKind::kImage:
      ++r.out.media.images;
      break;
    case PartKind::kAudio:
      ++r.out.media.audios;
      break;
    case PartKind::kVideo:
      ++r.out.media.videos;
      break;
    case PartKind::kFile:
      ++r.out.media.files;
      break;
    default:
      r.out.texts.push_back(r.Text(r.SpanOf(raw)));
      break;
  }
  return std::nullopt;
}

// The content of item `index` of `list` (ListParam): a string, or an array of parts (strings or
// objects).
Result ReadContent(const Reader& r, od::value value, std::string_view list, size_t index) {
  od::json_type type;
  if (value.type().get(type)) return Malformed();
  if (type == od::json_type::null) return std::nullopt;
  if (type == od::json_type::string) return AddValueText(r, value);
  if (type != od::json_type::array) {
    return TypeError(ListParam(list, index, ".content"), "a string or an array of parts");
  }
  od::array parts;
  if (value.get_array().get(parts)) return Malformed();
  for (auto element : parts) {
    od::value part;
    if (element.get(part)) return Malformed();
    od::json_type part_type;
    if (part.type().get(part_type)) return Malformed();
    od::object object;
    if (part_type == od::json_type::string) {
      if (auto e = AddValueText(r, part)) return e;
    } else if (part_type == od::json_type::object &&
               part.get_object().get(object) == simdjson::SUCCESS) {
      if (auto e = ReadPart(r, object)) return e;
    } else {
      return TypeError(ListParam(list, index, ".content"), "an array of content parts");
    }
  }
  return std::nullopt;
}

// The roles a chat template wraps in its own tokens (the per-message overhead covers them). A
// backend that takes any role string renders it into the prompt: another role counts as text.
bool KnownRole(std::string_view role) {
  return role == "system" || role == "user" || role == "assistant" || role == "tool" ||
         role == "function" || role == "developer";
}

// One message, item `index` of `list`: content as above; every other member but a known role is
// something the chat template renders (name, tool_calls, function_call, tool_call_id,
// reasoning_content, ...), and counts as a string or by its JSON text. A repeated member counts
// each time (over, never under). An input item of the Responses API ("input") is a message, a
// function call, its output...: each one message of the template, read alike but for its type,
// id and status.
Result ReadMessage(const Reader& r, od::object message, std::string_view list, size_t index,
                   std::string_view* role_out = nullptr) {
  const bool item = list == "input";
  for (auto field : message) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Malformed();
    if (item && (key == "type" || key == "id" || key == "status")) continue;
    od::value v;
    if (field.value().get(v)) return Malformed();
    if (key == "content") {
      if (auto e = ReadContent(r, v, list, index)) return e;
    } else if (key == "role") {
      std::string_view role;
      if (v.get_string().get(role) == simdjson::SUCCESS && !KnownRole(role)) {
        r.out.texts.push_back(role);
      }
      if (role_out != nullptr) *role_out = role;
    } else if (auto e = AddValueText(r, v)) {
      return e;
    }
  }
  return std::nullopt;
}

Result ReadMessages(const Reader& r, od::value value) {
  od::array messages;
  if (value.get_array().get(messages)) return TypeError("messages", "an array of messages");
  size_t index = 0;
  for (auto element : messages) {
    const size_t at = index++;
    od::object message;
    if (element.get_object().get(message)) {
      return TypeError(ListParam("messages", at), "an object");
    }
    ++r.out.messages;
    ChatMessageTexts& chat = r.out.chat.emplace_back();
    chat.first = r.out.texts.size();
    if (auto e = ReadMessage(r, message, "messages", at, &chat.role)) return e;
    chat.count = r.out.texts.size() - chat.first;
  }
  if (index == 0) return FieldError{"messages", "'messages' must contain at least one message."};
  return std::nullopt;
}

// stream_options: null or an object whose keys appear once; include_usage a boolean or null.
Result ReadStreamOptions(const Reader& r, od::value value) {
  RequestFields& out = r.out;
  out.stream_options_span = r.SpanOf(value.raw_json_token());
  if (IsNull(value)) return std::nullopt;
  od::object options;
  std::string_view raw;
  if (value.get_object().get(options)) return TypeError("stream_options", "an object");
  // The whole object's span, then its members: forward_body.h edits inside it.
  if (options.raw_json().get(raw) || options.reset().error()) return Malformed();
  out.stream_options_span = r.SpanOf(raw);
  out.has_stream_options = true;
  KeySet keys;
  for (auto field : options) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Malformed();
    if (!keys.Insert(key)) return Repeated("stream_options." + std::string(key));
    ++out.stream_options_members;
    if (key != "include_usage") continue;
    od::value v;
    if (field.value().get(v)) return Malformed();
    out.include_usage_span = r.SpanOf(v.raw_json_token());
    if (IsNull(v)) continue;
    if (v.get_bool().get(out.include_usage)) {
      return TypeError("stream_options.include_usage", "a boolean");
    }
  }
  return std::nullopt;
}

Result ReadModel(const Reader& r, od::value value) {
  const ByteSpan span = r.SpanOf(value.raw_json_token());
  std::string_view model;
  if (value.get_string().get(model)) return TypeError("model", "a string naming a model");
  r.out.model = std::string(model);
  r.out.model_span = span;
  return std::nullopt;
}

// Top-level fields with no meaning of their own that the model never reads.
bool Unread(std::string_view key) {
  return key == "user" || key == "stop" || key == "seed" || key == "metadata" ||
         key == "service_tier" || key == "logit_bias";
}

// The Responses API's fields that are ids or settings, never read by the model.
bool UnreadByResponses(std::string_view key) {
  return Unread(key) || key == "previous_response_id" || key == "store" || key == "include" ||
         key == "truncation" || key == "parallel_tool_calls" || key == "prompt_cache_key" ||
         key == "safety_identifier";
}

// The Responses API's input: a string (one user message), or an array of input items.
Result ReadInput(const Reader& r, od::value value) {
  od::json_type type;
  if (value.type().get(type)) return Malformed();
  if (type == od::json_type::string) return AddValueText(r, value);
  od::array items;
  if (type != od::json_type::array || value.get_array().get(items)) {
    return TypeError("input", "a string or an array of input items");
  }
  size_t index = 0;
  for (auto element : items) {
    const size_t at = index++;
    od::object item;
    if (element.get_object().get(item)) return TypeError(ListParam("input", at), "an object");
    ++r.out.messages;
    if (auto e = ReadMessage(r, item, "input", at)) return e;
  }
  return std::nullopt;
}

// What the top-level fields of one request held, beyond RequestFields.
struct RootState {
  bool have_model = false;
  bool have_input = false;  // messages, prompt or input, as the endpoint requires
  std::optional<int64_t> max_tokens, max_completion_tokens;
  int64_t n = 1, best_of = 1, prompts = 1;
  // Rerank's query, and score's text_1 and text_2: what each held (a single text, or how many),
  // to count a text paired with several others once per pair.
  struct Side {
    bool present = false;
    std::string_view single;  // the text when there is exactly one
    int64_t count = 0;
  };
  Side sides[2];
};

// A pair side: a string, or (`list_allowed`) an array of strings; its texts are counted.
Result ReadSide(const Reader& r, od::value value, const std::string& param, bool list_allowed,
                RootState::Side& side) {
  side.present = true;
  std::string_view s;
  if (value.get_string().get(s) == simdjson::SUCCESS) {
    r.out.texts.push_back(s);
    side.single = s;
    side.count = 1;
    return std::nullopt;
  }
  od::array items;
  if (!list_allowed || value.get_array().get(items)) {
    return TypeError(param, list_allowed ? "a string or an array of strings" : "a string");
  }
  for (auto item : items) {
    if (item.get_string().get(s)) return TypeError(param, "a string or an array of strings");
    r.out.texts.push_back(s);
    side.single = s;
    ++side.count;
  }
  return std::nullopt;
}

// Rerank's documents: strings, or objects counted by their JSON text; sides[1] counts them.
Result ReadDocuments(const Reader& r, od::value value, RootState::Side& side) {
  od::array documents;
  if (value.get_array().get(documents)) return TypeError("documents", "an array of documents");
  side.present = true;
  for (auto element : documents) {
    od::value document;
    if (element.get(document)) return Malformed();
    if (auto e = AddValueText(r, document)) return e;
    ++side.count;
  }
  if (side.count == 0) return FieldError{"documents", "'documents' must not be empty."};
  return std::nullopt;
}

// One top-level field of a rerank (query, documents) or score (text_1, text_2) request; other
// fields are settings (top_n, truncate_prompt_tokens...), not counted.
Result ReadPairField(const Reader& r, ApiEndpoint endpoint, std::string_view key, od::value value,
                     RootState& st) {
  if (endpoint == ApiEndpoint::kRerank) {
    if (key == "query") return ReadSide(r, value, "query", false, st.sides[0]);
    if (key == "documents") return ReadDocuments(r, value, st.sides[1]);
  } else if (key == "text_1" || key == "text_2") {
    return ReadSide(r, value, std::string(key), true, st.sides[key == "text_1" ? 0 : 1]);
  }
  return std::nullopt;
}

// After a rerank or score request: the side with a single text is paired with each text of the
// other, so it counts once per pair. Two lists must pair item by item.
Result PairTexts(ApiEndpoint endpoint, RootState& st, RequestFields& out) {
  static constexpr std::string_view kNames[2][2] = {{"query", "documents"}, {"text_1", "text_2"}};
  const auto& names = kNames[endpoint == ApiEndpoint::kRerank ? 0 : 1];
  for (int i = 0; i < 2; ++i) {
    if (!st.sides[i].present) {
      const std::string name(names[i]);
      return FieldError{name, "'" + name + "' is required."};
    }
  }
  const RootState::Side& a = st.sides[0];
  const RootState::Side& b = st.sides[1];
  if (a.count != b.count && a.count != 1 && b.count != 1) {
    return FieldError{"text_2", "'text_2' must hold one text or as many as 'text_1' (" +
                                    std::to_string(a.count) + ")."};
  }
  if (a.count == b.count) return std::nullopt;
  const RootState::Side& single = a.count == 1 ? a : b;
  for (int64_t i = 1; i < std::max(a.count, b.count); ++i) out.texts.push_back(single.single);
  return std::nullopt;
}

// One top-level field of a chat or completions request, other than model/stream/stream_options.
Result ReadGenerationField(const Reader& r, ApiEndpoint endpoint, std::string_view key,
                           od::value value, RootState& st) {
  RequestFields& out = r.out;
  if (key == "max_tokens") {
    return ReadCap(r, value, key, out.max_tokens_span, st.max_tokens);
  } else if (key == "max_completion_tokens") {
    return ReadCap(r, value, key, out.max_completion_tokens_span, st.max_completion_tokens);
  } else if (key == "n") {
    return ReadChoiceCount(value, key, st.n);
  } else if (key == "best_of") {
    // Completions' field; chat's too in vLLM releases that had it: either way the backend may
    // generate that many sequences.
    return ReadChoiceCount(value, key, st.best_of);
  } else if (key == "messages" && endpoint == ApiEndpoint::kChatCompletions) {
    st.have_input = true;
    return ReadMessages(r, value);
  } else if (key == "prompt" && endpoint == ApiEndpoint::kCompletions) {
    st.have_input = true;
    return ReadPromptLike(value, "prompt", out, st.prompts);
  } else if (Unread(key)) {
    return std::nullopt;
  }
  return AddValueText(r, value);
}

// One top-level field of a Responses API request, other than model/stream/stream_options.
Result ReadResponsesField(const Reader& r, std::string_view key, od::value value, RootState& st) {
  if (key == "max_output_tokens") {
    return ReadCap(r, value, key, r.out.max_tokens_span, st.max_tokens);
  } else if (key == "input") {
    st.have_input = true;
    return ReadInput(r, value);
  } else if (key == "background") {
    bool background = false;
    if (!IsNull(value) && value.get_bool().get(background)) {
      return TypeError("background", "a boolean");
    }
    if (!background) return std::nullopt;
    return FieldError{"background",
                      "'background: true' is not supported: a background response is "
                      "finished after this exchange, where its tokens cannot be accounted "
                      "for. Send the request without it (stream it if it is long)."};
  } else if (UnreadByResponses(key)) {
    return std::nullopt;
  }
  return AddValueText(r, value);
}

// The OpenAI `user` field: who the request is for (limits with `scope: user`). A budget's
// name, so bounded and printable.
Result ReadUser(od::value value, std::string& user) {
  if (IsNull(value)) return std::nullopt;
  std::string_view text;
  if (value.get_string().get(text)) return TypeError("user", "a string");
  const bool printable = std::none_of(text.begin(), text.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || c == 0x7f;
  });
  if (text.size() > kMaxUserBytes || !printable) {
    return FieldError{"user", "'user' must name the end user in at most " +
                                  std::to_string(kMaxUserBytes) +
                                  " bytes, without control characters."};
  }
  user = text;
  return std::nullopt;
}

Result ReadRootField(const Reader& r, ApiEndpoint endpoint, std::string_view key, od::value value,
                     RootState& st) {
  RequestFields& out = r.out;
  if (key == "model") {
    st.have_model = true;
    return ReadModel(r, value);
  } else if (endpoint == ApiEndpoint::kRerank || endpoint == ApiEndpoint::kScore) {
    return ReadPairField(r, endpoint, key, value, st);
  } else if (!ChargesTokens(endpoint)) {
    return std::nullopt;  // not charged: only the model is read
  } else if (key == "user") {
    return ReadUser(value, out.user);
  } else if (key == "stream") {
    if (IsNull(value)) return std::nullopt;
    if (value.get_bool().get(out.stream)) return TypeError("stream", "a boolean");
    return std::nullopt;
  } else if (key == "stream_options") {
    return ReadStreamOptions(r, value);
  } else if (endpoint == ApiEndpoint::kResponses) {
    return ReadResponsesField(r, key, value, st);
  } else if (endpoint != ApiEndpoint::kEmbeddings) {
    return ReadGenerationField(r, endpoint, key, value, st);
  } else if (key == "input") {
    st.have_input = true;
    int64_t ignored;
    return ReadPromptLike(value, "input", out, ignored);
  }
  return std::nullopt;  // embeddings: only the input is embedded
}

Result MissingField(ApiEndpoint endpoint, const RootState& st) {
  if (!st.have_model) {
    return FieldError{"model",
                      "'model' is required: name the model to use (GET /v1/models "
                      "lists them)."};
  }
  if (st.have_input) return std::nullopt;
  switch (endpoint) {
    case ApiEndpoint::kRerank:
    case ApiEndpoint::kScore:
    case ApiEndpoint::kTokenize:
    case ApiEndpoint::kDetokenize:
    case ApiEndpoint::kPassthrough:
      return std::nullopt;  // PairTexts; the backend checks the rest
    case ApiEndpoint::kChatCompletions:
      return FieldError{"messages", "'messages' is required for chat completions."};
    case ApiEndpoint::kCompletions:
      return FieldError{"prompt", "'prompt' is required for completions."};
    case ApiEndpoint::kEmbeddings:
      return FieldError{"input", "'input' is required for embeddings."};
    case ApiEndpoint::kResponses:
      return FieldError{"input", "'input' is required for responses."};
  }
  return std::nullopt;
}

}  // namespace

static_assert(kJsonBodyPadding >= simdjson::SIMDJSON_PADDING);

std::optional<FieldError> ExtractRequestFields(ApiEndpoint endpoint, std::string& body,
                                               RequestFields& out) {
  thread_local od::parser parser;
  out = RequestFields{};
  if (body.capacity() < body.size() + kJsonBodyPadding)
    body.reserve(body.size() + kJsonBodyPadding);
  od::document doc;
  if (parser.iterate(body.data(), body.size(), body.capacity()).get(doc)) return Malformed();
  const Reader r{body, out};
  std::string_view brace;
  od::object root;
  if (doc.raw_json_token().get(brace) || doc.get_object().get(root)) {
    return FieldError{"", "The request body must be a JSON object."};
  }
  out.after_root_brace = static_cast<size_t>(brace.data() - body.data()) + 1;
  RootState st;
  KeySet keys;
  for (auto field : root) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Malformed();
    if (!keys.Insert(key)) return Repeated(std::string(key));
    od::value value;
    if (field.value().get(value)) return Malformed();
    if (auto e = ReadRootField(r, endpoint, key, value, st)) return e;
  }
  if (auto e = MissingField(endpoint, st)) return e;
  if (endpoint == ApiEndpoint::kRerank || endpoint == ApiEndpoint::kScore) {
    if (auto e = PairTexts(endpoint, st, out)) return e;
  }
  out.max_tokens = st.max_completion_tokens ? st.max_completion_tokens : st.max_tokens;
  out.choices = std::max(st.n, st.best_of) * std::max<int64_t>(1, st.prompts);
  return std::nullopt;
}

boost::container::small_vector<ChatTurn, 8> ChatTurns(const RequestFields& fields) {
  boost::container::small_vector<ChatTurn, 8> turns;
  for (const ChatMessageTexts& m : fields.chat) {
    turns.push_back(
        {m.role, std::span<const std::string_view>(fields.texts.data() + m.first, m.count)});
  }
  return turns;
}

OwnedRequestFields::OwnedRequestFields(const RequestFields& from) : fields(from) {
  size_t bytes = 0;
  for (std::string_view text : from.texts) bytes += text.size();
  for (const ChatMessageTexts& m : from.chat) bytes += m.role.size();
  storage.reserve(bytes);  // no reallocation below: the views stay valid
  const auto own = [&](std::string_view& view) {
    const size_t at = storage.size();
    storage.append(view);
    view = std::string_view(storage).substr(at, view.size());
  };
  for (std::string_view& text : fields.texts) own(text);
  for (ChatMessageTexts& m : fields.chat) own(m.role);
}

int64_t CountPromptTokens(const RequestFields& fields, const TokenCounter& counter,
                          const MediaTokens& media) {
  int64_t total = fields.pretokenized;
  if (fields.chat.empty()) {
    total += counter.PerRequestOverhead() + fields.messages * counter.PerMessageOverhead();
    for (std::string_view text : fields.texts) total += counter.CountText(text);
  } else {
    // The messages as the chat template frames them; the texts outside them (tools, ...) alone.
    size_t next = 0;
    for (const ChatMessageTexts& m : fields.chat) {
      for (; next < m.first; ++next) total += counter.CountText(fields.texts[next]);
      next = m.first + m.count;
    }
    for (; next < fields.texts.size(); ++next) total += counter.CountText(fields.texts[next]);
    total += counter.CountChat(ChatTurns(fields));
  }
  // A body of a million image parts must not overflow the reservation.
  const std::pair<int64_t, int64_t> parts[] = {{fields.media.images, media.image},
                                               {fields.media.audios, media.audio},
                                               {fields.media.videos, media.video},
                                               {fields.media.files, media.file},
                                               {fields.audio_seconds, media.audio_second}};
  for (const auto& [count, cost] : parts) {
    total = ClampedAdd(total, ClampedMul(count, cost, kMaxTokenCount), kMaxTokenCount);
  }
  return total;
}

}  // namespace trl

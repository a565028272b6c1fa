// POST /v1/rerank and /v1/score, as vLLM serves them for a cross-encoder, with deterministic
// scores. Both wait --ttft (the forward pass) and generate nothing.
//
// Score of a (query, document) pair: the share of the query's distinct words (whitespace-split,
// ASCII letters lower-cased) found among the document's words, in [0, 1]; 0 for a query with
// no words. Tokens of a pair: CountWords(query) + CountWords(document), both read by the model.
//
// /v1/rerank {model, query: string, documents: [string | {text: string}] (non-empty),
// top_n? (integer >= 0; 0 = all), return_documents? (boolean, default true)} ->
// {"id":"rerank-mock<seq>","model":..,"usage":{"total_tokens":T},"results":[{"index":i,
// "document":{"text":..},"relevance_score":s}, ...]}: results by score, highest first (ties by
// index), the first top_n; document left out with return_documents false.
// T = sum over every document of CountWords(query) + CountWords(document).
//
// /v1/score {model, text_1: string | [string], text_2: string | [string]} pairs them as vLLM
// does: one text_1 with each text_2 (1:1, 1:N), else text_1[i] with text_2[i] (N:N, the same
// length) -> {"id":"score-mock<seq>","object":"list","created":..,"model":..,"data":[{"index":i,
// "object":"score","score":s}, ...],"usage":{"prompt_tokens":P,"total_tokens":P,
// "completion_tokens":0,"prompt_tokens_details":null}}, P = the sum of the pairs' tokens.
//
// Usage faults: no-usage leaves usage out; usage-negative and usage-huge report -1000000 and
// 1000000001, usage-float the count with ".5" (total_tokens for rerank, prompt_tokens and
// total_tokens for score).
#pragma once

#include <string_view>

#include "mock/mock_api.h"

namespace trl {

double MockRelevance(std::string_view query, std::string_view document);

MockResult AnswerRerank(MockCall& call);
MockResult AnswerScore(MockCall& call);

}  // namespace trl

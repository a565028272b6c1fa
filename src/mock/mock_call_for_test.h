// Test-only: unpacks what a utility endpoint's pure half (MockCall, mock_api.h) answered.
#pragma once

#include <gtest/gtest.h>

#include <string_view>
#include <utility>
#include <variant>

#include "mock/mock_api.h"

namespace trl {

// The reply; a test failure (and an empty reply) when the endpoint refused.
inline MockReply ReplyOf(MockResult result) {
  if (auto* error = std::get_if<MockError>(&result)) {
    ADD_FAILURE() << "unexpected error: " << error->message;
    return {};
  }
  return std::get<MockReply>(std::move(result));
}

// The error; a test failure (and an empty error) when the endpoint answered `request`.
inline MockError ErrorOf(MockResult result, std::string_view request) {
  if (!std::holds_alternative<MockError>(result)) {
    ADD_FAILURE() << "expected an error for " << request;
    return {};
  }
  return std::get<MockError>(std::move(result));
}

}  // namespace trl

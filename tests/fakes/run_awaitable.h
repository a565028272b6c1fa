// The tests' name for RunToCompletion (src/common/run_to_completion.h): runs a coroutine to
// completion on a private io_context, returns its value or rethrows what it threw.
#pragma once

#include <utility>

#include "common/run_to_completion.h"

namespace trl {

template <typename T>
T RunAwaitable(boost::asio::awaitable<T> awaitable) {
  return RunToCompletion(std::move(awaitable));
}

}  // namespace trl

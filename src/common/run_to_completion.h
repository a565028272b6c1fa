// Runs a coroutine to completion on a private io_context and returns what it returned, or
// rethrows what it threw. For the gateway's startup and shutdown (loading keys, the last usage
// flush) and for tests of asio::awaitable APIs; never on an I/O thread: it blocks the caller
// until the coroutine is done.
//
// Threading: call from any thread; each call has its own io_context. The coroutine may await
// operations of other executors: the private io_context keeps running until it completes.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

namespace trl {

template <typename T>
T RunToCompletion(boost::asio::awaitable<T> awaitable) {
  boost::asio::io_context io;
  std::exception_ptr error;
  if constexpr (std::is_void_v<T>) {
    boost::asio::co_spawn(io, std::move(awaitable),
                          [&](const std::exception_ptr& e) { error = e; });
    io.run();
    if (error) std::rethrow_exception(error);
  } else {
    std::optional<T> value;
    boost::asio::co_spawn(io, std::move(awaitable), [&](const std::exception_ptr& e, T v) {
      error = e;
      if (!e) value.emplace(std::move(v));
    });
    io.run();
    if (error) std::rethrow_exception(error);
    return std::move(*value);
  }
}

}  // namespace trl

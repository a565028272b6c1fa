// Runs a coroutine to completion on a private io_context, for tests of asio::awaitable APIs.
// Rethrows what the coroutine threw. Call from any thread; each call has its own io_context.
#pragma once

#include <exception>
#include <optional>
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>

namespace trl {

template <typename T>
T RunAwaitable(boost::asio::awaitable<T> awaitable) {
  boost::asio::io_context io;
  std::optional<T> value;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(awaitable), [&](std::exception_ptr e, T v) {
    error = e;
    if (!e) value.emplace(std::move(v));
  });
  io.run();
  if (error) std::rethrow_exception(error);
  return std::move(*value);
}

inline void RunAwaitable(boost::asio::awaitable<void> awaitable) {
  boost::asio::io_context io;
  std::exception_ptr error;
  boost::asio::co_spawn(io, std::move(awaitable), [&](std::exception_ptr e) { error = e; });
  io.run();
  if (error) std::rethrow_exception(error);
}

}  // namespace trl

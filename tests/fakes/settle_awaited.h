// A settlement awaited in a test, made the way the Limiter makes it: through
// Store::SettleDetached, resumed on the awaiting coroutine's executor when the store reports.
#pragma once

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <utility>

#include "limits/store.h"

namespace trl::testing {

// `request` must stay valid until the settlement completes (the awaiting frame keeps it).
inline boost::asio::awaitable<StoreStatus> SettleAwaited(Store& store,
                                                         const SettleRequest& request) {
  namespace asio = boost::asio;
  const asio::any_io_executor executor = co_await asio::this_coro::executor;
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable), void(StoreStatus)>(
      [&](auto handler) {
        using Handler = decltype(handler);
        // Deletes itself on report; the handler runs on its own executor, not the reporter's.
        struct Done final : SettleCompletion {
          explicit Done(Handler h) : handler(std::move(h)) {}
          void Settled(StoreStatus status) override {
            auto ex = asio::get_associated_executor(handler);
            asio::post(ex, [h = std::move(handler), status]() mutable { std::move(h)(status); });
            delete this;
          }
          Handler handler;
        };
        store.SettleDetached(request, executor, *new Done(std::move(handler)));
      },
      asio::use_awaitable);
}

}  // namespace trl::testing

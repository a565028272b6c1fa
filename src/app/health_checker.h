// Active health checks: every backend of every model is probed with GET <base>/health (what
// vLLM answers) on an interval; a probe that fails ejects the backend (with backoff), one that
// succeeds brings it back. Each change is logged with its reason ("GET /health answered HTTP
// 404", "no answer within 1s", "connect: Connection refused"), and so is a new reason while a
// backend stays down; steady failures are logged once. Runs on the control thread, never on a
// data-plane I/O thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <functional>
#include <memory>

#include "models/model_registry.h"

namespace trl {

// Probes every backend `registry()` returns, forever (until the executor stops).
boost::asio::awaitable<void> RunHealthChecks(
    std::function<std::vector<std::shared_ptr<Backend>>()> backends,
    std::chrono::milliseconds interval, std::chrono::milliseconds timeout);

}  // namespace trl

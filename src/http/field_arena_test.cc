#include "http/field_arena.h"

#include <gtest/gtest.h>

#include <boost/beast/http/parser.hpp>
#include <optional>
#include <string>

#include "http/server.h"

namespace trl::http {
namespace {

// Parses `head` (a whole request head, no body) with `arena`.
std::optional<Request> Parse(FieldArena& arena, const std::string& head) {
  bhttp::request_parser<RequestBody, FieldAllocator<char>> parser(
      std::piecewise_construct, std::make_tuple(), std::make_tuple(FieldAllocator<char>(&arena)));
  beast::error_code ec;
  parser.put(asio::buffer(head), ec);
  if (ec || !parser.is_done()) return std::nullopt;
  return parser.release();
}

const std::string kHead =
    "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nAuthorization: Bearer sk-1\r\n"
    "X-Stainless-Lang: js\r\nContent-Length: 0\r\n\r\n";

TEST(FieldArenaTest, ARequestsFieldsLiveInTheArenaUntilItIsGone) {
  FieldArena arena;
  {
    auto request = Parse(arena, kHead);
    ASSERT_TRUE(request);
    // The target and four fields: one block each, all in the arena.
    EXPECT_EQ(arena.Live(), 5u);
    EXPECT_GT(arena.Used(), 0u);
    EXPECT_EQ((*request)[bhttp::field::authorization], "Bearer sk-1");
    EXPECT_EQ(request->target(), "/v1/chat/completions");
    Request moved = std::move(*request);  // a move keeps them there
    EXPECT_EQ(moved["x-stainless-lang"], "js");
    EXPECT_EQ(arena.Live(), 5u);
  }
  EXPECT_EQ(arena.Live(), 0u);
  EXPECT_EQ(arena.Used(), 0u);  // reused from the start by the next request
  auto next = Parse(arena, kHead);
  ASSERT_TRUE(next);
  EXPECT_EQ(arena.Live(), 5u);
}

TEST(FieldArenaTest, WhatDoesNotFitGoesToTheHeap) {
  FieldArena arena;
  const std::string big(FieldArena::kBytes, 'v');
  {
    auto request =
        Parse(arena, "GET / HTTP/1.1\r\nHost: gw\r\nX-Big: " + big + "\r\nX-After: 1\r\n\r\n");
    ASSERT_TRUE(request);
    EXPECT_EQ((*request)["x-big"], big);
    EXPECT_EQ((*request)["x-after"], "1");
    EXPECT_EQ(arena.Live(), 3u);  // the target, Host, X-After
  }
  EXPECT_EQ(arena.Live(), 0u);
  EXPECT_EQ(arena.Used(), 0u);
}

TEST(FieldArenaTest, ACopyIsOnTheHeap) {
  FieldArena arena;
  std::optional<Request> copy;
  {
    auto request = Parse(arena, kHead);
    ASSERT_TRUE(request);
    copy.emplace(*request);
  }
  EXPECT_EQ(arena.Live(), 0u);  // the copy holds nothing of the arena
  EXPECT_EQ((*copy)[bhttp::field::authorization], "Bearer sk-1");
  Request made{bhttp::verb::get, "/v1/models", 11};  // no arena: the heap
  made.set(bhttp::field::host, "gw");
  EXPECT_EQ(made[bhttp::field::host], "gw");
  EXPECT_EQ(arena.Live(), 0u);
}

}  // namespace
}  // namespace trl::http

#include "http/server.h"

#include <gtest/gtest.h>

#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/write.hpp>
#include <sstream>

namespace trl::http {
namespace {

// The head written by hand must be byte for byte what Beast's serializer writes.
std::string BeastHead(const bhttp::response_header<>& header) {
  std::ostringstream out;
  out << header;
  return out.str();
}

std::string OurHead(const bhttp::response_header<>& header) {
  std::string out;
  AppendResponseHead(out, header);
  return out + "\r\n";
}

TEST(AppendResponseHead, MatchesBeastsSerializer) {
  Response ok{bhttp::status::ok, 11};
  ok.set(bhttp::field::content_type, "application/json");
  ok.set("x-ratelimit-remaining-tokens", "99989");
  ok.body() = R"({"a":1})";
  ok.prepare_payload();
  EXPECT_EQ(OurHead(ok.base()), BeastHead(ok.base()));
  EXPECT_EQ(OurHead(ok.base()),
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            "x-ratelimit-remaining-tokens: 99989\r\nContent-Length: 7\r\n\r\n");

  Response limited{bhttp::status::too_many_requests, 11};
  limited.set(bhttp::field::retry_after, "3");
  limited.keep_alive(false);
  EXPECT_EQ(OurHead(limited.base()), BeastHead(limited.base()));

  bhttp::response<bhttp::empty_body> stream{bhttp::status::ok, 11};
  stream.chunked(true);
  EXPECT_EQ(OurHead(stream.base()), BeastHead(stream.base()));

  Response old{bhttp::status::service_unavailable, 10};
  EXPECT_EQ(OurHead(old.base()), BeastHead(old.base()));
  EXPECT_EQ(OurHead(old.base()).substr(0, 34), "HTTP/1.0 503 Service Unavailable\r\n");
}

}  // namespace
}  // namespace trl::http

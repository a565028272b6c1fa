#include "http/deadline.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <optional>

#include "fakes/socket_pair.h"

namespace trl::http {
namespace {

using asio::ip::tcp;
using namespace std::chrono_literals;
using testing::SocketPair;

struct Read {
  std::optional<boost::system::error_code> ec;
  size_t n = 0;
  char byte = 0;
};

void StartRead(tcp::socket& socket, Read& read) {
  socket.async_read_some(asio::buffer(&read.byte, 1),
                         [&read](boost::system::error_code ec, size_t n) {
                           read.ec = ec;
                           read.n = n;
                         });
}

// Runs handlers until `read` completes (the context stops by itself whenever it runs out of work).
void RunUntil(asio::io_context& io, const Read& read) {
  io.restart();
  while (!read.ec && io.run_one() != 0) {
  }
  ASSERT_TRUE(read.ec) << "the read never completed";
}

TEST(DeadlineTest, APendingReadPastItsDeadlineIsCancelled) {
  asio::io_context io(1);
  SocketPair pair(io);
  Deadline deadline(pair.near);
  Read read;
  deadline.ExpiresAfter(0s);  // already past
  StartRead(pair.near, read);
  RunUntil(io, read);
  ASSERT_TRUE(read.ec);
  EXPECT_EQ(*read.ec, asio::error::operation_aborted);
  EXPECT_TRUE(deadline.Expired());
  // Armed again, it is no longer expired, and the socket still works.
  deadline.ExpiresAfter(1h);
  EXPECT_FALSE(deadline.Expired());
  Read again;
  StartRead(pair.near, again);
  asio::write(pair.far, asio::buffer("x", 1));
  RunUntil(io, again);
  EXPECT_EQ(*again.ec, boost::system::error_code{});
  EXPECT_EQ(again.n, 1u);
  EXPECT_EQ(again.byte, 'x');
}

TEST(DeadlineTest, AClearedDeadlineCancelsNothing) {
  asio::io_context io(1);
  SocketPair pair(io);
  Deadline deadline(pair.near);
  deadline.ExpiresAfter(0s);
  deadline.Clear();  // the operation it bounded has completed
  Read read;
  StartRead(pair.near, read);
  // The sweep for the cleared deadline runs first (its timer is already due), then the byte.
  io.poll();
  EXPECT_FALSE(read.ec);
  asio::write(pair.far, asio::buffer("y", 1));
  RunUntil(io, read);
  EXPECT_EQ(*read.ec, boost::system::error_code{});
  EXPECT_EQ(read.byte, 'y');
  EXPECT_FALSE(deadline.Expired());
}

TEST(DeadlineTest, OnlyTheSocketsPastTheirDeadlineAreCancelled) {
  asio::io_context io(1);
  SocketPair late(io);
  SocketPair due(io);
  SocketPair gone(io);
  Deadline late_deadline(late.near);
  Deadline due_deadline(due.near);
  {
    // Armed, then destroyed with its socket's owner: the sweep must not see it.
    auto destroyed = std::make_unique<Deadline>(gone.near);
    destroyed->ExpiresAfter(0s);
  }
  late_deadline.ExpiresAfter(1h);  // the timer waits for this one...
  due_deadline.ExpiresAfter(0s);   // ...until an earlier one replaces it
  Read late_read;
  Read due_read;
  StartRead(late.near, late_read);
  StartRead(due.near, due_read);
  RunUntil(io, due_read);
  EXPECT_EQ(*due_read.ec, asio::error::operation_aborted);
  EXPECT_TRUE(due_deadline.Expired());
  EXPECT_FALSE(late_read.ec);
  EXPECT_FALSE(late_deadline.Expired());
  asio::write(late.far, asio::buffer("z", 1));
  RunUntil(io, late_read);
  EXPECT_EQ(*late_read.ec, boost::system::error_code{});
  EXPECT_FALSE(late_deadline.Expired());
}

TEST(DeadlineTest, AFarDeadlineArmedNearerIsKeptToTheNewTime) {
  asio::io_context io(1);
  SocketPair idle(io);
  SocketPair due(io);
  Deadline idle_deadline(idle.near);
  Deadline due_deadline(due.near);
  Read idle_read;
  Read due_read;
  StartRead(idle.near, idle_read);
  StartRead(due.near, due_read);
  // A sweep for the due deadline puts the far one (an idle connection's) aside: the far ones
  // are walked only every 10 s.
  idle_deadline.ExpiresAfter(1h);
  due_deadline.ExpiresAfter(0s);
  RunUntil(io, due_read);
  EXPECT_EQ(*due_read.ec, asio::error::operation_aborted);
  EXPECT_FALSE(idle_read.ec);
  // Armed again, nearer (the connection is busy again): kept to the new time, not to the next
  // walk of the far ones.
  idle_deadline.ExpiresAfter(0s);
  io.restart();
  while (!idle_read.ec && io.run_one_for(3s) != 0) {
  }
  ASSERT_TRUE(idle_read.ec) << "cancelled only at the next walk of the far deadlines";
  EXPECT_EQ(*idle_read.ec, asio::error::operation_aborted);
  EXPECT_TRUE(idle_deadline.Expired());
}

}  // namespace
}  // namespace trl::http

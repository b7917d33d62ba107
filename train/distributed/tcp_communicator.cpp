// tcp_communicator.cpp: the socket rendezvous and the star collectives (see tcp_communicator.h).
#include "train/distributed/tcp_communicator.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <thread>

namespace rv::train::dist {
namespace {

using Clock = std::chrono::steady_clock;
constexpr uint32_t kMagic = 0x52565431;  // "RVT1": a ropevit rendezvous, protocol 1

struct Hello {
  uint32_t magic;
  int32_t rank, world_size;
};
struct Header {
  uint32_t op, pad;
  int64_t bytes;
};

const char* op_name(uint32_t op) {
  return op == 1   ? "all_reduce"
         : op == 2 ? "broadcast"
         : op == 3 ? "all_gather"
         : op == 4 ? "reduce_scatter"
                   : "an unknown collective";
}

double seconds_left(Clock::time_point deadline) {
  return std::chrono::duration<double>(deadline - Clock::now()).count();
}

// Waits until fd is readable (or writable); false on timeout.
bool wait_fd(int fd, short events, double seconds) {
  pollfd p{fd, events, 0};
  for (;;) {
    const int ms = seconds <= 0 ? 0 : int(std::min(seconds * 1000.0, 2.0e9));
    const int n = ::poll(&p, 1, ms);
    if (n >= 0) return n > 0;
    if (errno != EINTR) throw std::runtime_error(std::string("dist (tcp): poll failed: ") + std::strerror(errno));
  }
}

}  // namespace

std::string TcpCommunicator::name() const {
  return "tcp " + layout_.master_addr + ":" + std::to_string(port_);
}

int TcpCommunicator::fd_of(int peer) const { return layout_.rank == 0 ? fds_.at(size_t(peer)) : fds_.at(0); }

TcpCommunicator::TcpCommunicator(const LaunchLayout& layout, double timeout_s)
    : layout_(layout), timeout_s_(timeout_s), port_(layout.master_port + 1) {
  const std::string where = layout_.master_addr + ":" + std::to_string(port_);
  const std::string me = "dist (tcp): rank " + std::to_string(layout_.rank) + ": ";
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s));
  fds_.assign(layout_.rank == 0 ? size_t(layout_.world_size) : 1, -1);
  if (layout_.rank == 0) {
    const int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (lfd < 0) throw std::runtime_error(me + "socket() failed: " + std::strerror(errno));
    const int one = 1;
    ::setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);  // MASTER_ADDR names this host; listen on all its interfaces
    addr.sin_port = htons(uint16_t(port_));
    if (::bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(lfd, 128) != 0) {
      const std::string why = std::strerror(errno);
      ::close(lfd);
      throw std::runtime_error(me + "cannot listen on port " + std::to_string(port_) + " (MASTER_PORT + 1): " + why +
                               ". Another run may be using it: pick another MASTER_PORT (torchrun --master-port).");
    }
    int joined = 1;
    while (joined < layout_.world_size) {
      if (!wait_fd(lfd, POLLIN, seconds_left(deadline))) {
        std::string missing;
        for (int r = 1; r < layout_.world_size; ++r)
          if (fds_[size_t(r)] < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
        ::close(lfd);
        throw std::runtime_error(me + "waited " + std::to_string(int(timeout_s)) + " s on " + where +
                                 " (MASTER_ADDR:MASTER_PORT+1) for rank(s) " + missing +
                                 " to connect; they never came (dist.timeout_s). Are all processes started with the "
                                 "same MASTER_ADDR / MASTER_PORT / WORLD_SIZE?");
      }
      const int fd = ::accept(lfd, nullptr, nullptr);
      if (fd < 0) continue;
      Hello h{};
      // A stray connection (a port scanner, a stale process of another run) is dropped, not fatal.
      if (!wait_fd(fd, POLLIN, std::min(5.0, seconds_left(deadline))) ||
          ::recv(fd, &h, sizeof h, MSG_WAITALL) != ssize_t(sizeof h) || h.magic != kMagic) {
        ::close(fd);
        continue;
      }
      if (h.world_size != layout_.world_size || h.rank < 1 || h.rank >= layout_.world_size ||
          fds_[size_t(h.rank)] >= 0) {
        ::close(fd);
        ::close(lfd);
        throw std::runtime_error(me + "a process on " + where + " introduced itself as rank " + std::to_string(h.rank) +
                                 " of " + std::to_string(h.world_size) + ", but this run has world size " +
                                 std::to_string(layout_.world_size) + (h.rank >= 1 && h.rank < layout_.world_size
                                                                           ? " and that rank is already here"
                                                                           : "") +
                                 ": two runs on one MASTER_PORT?");
      }
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      fds_[size_t(h.rank)] = fd;
      ++joined;
    }
    ::close(lfd);
    for (int r = 1; r < layout_.world_size; ++r) send_to(r, &kMagic, sizeof kMagic, "rendezvous");
    return;
  }
  // Other ranks: connect to rank 0, retrying while it is not listening yet.
  addrinfo hints{}, *res = nullptr;
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_STREAM;
  if (const int e = ::getaddrinfo(layout_.master_addr.c_str(), std::to_string(port_).c_str(), &hints, &res); e != 0)
    throw std::runtime_error(me + "cannot resolve MASTER_ADDR '" + layout_.master_addr + "': " + gai_strerror(e));
  std::string last_error = "no attempt";
  double backoff = 0.05;
  int fd = -1;
  while (fd < 0) {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
      last_error = std::strerror(errno);
      ::close(fd);
      fd = -1;
    }
    if (fd >= 0) break;
    if (seconds_left(deadline) <= 0) {
      ::freeaddrinfo(res);
      throw std::runtime_error(me + "could not reach rank 0 at " + where + " (MASTER_ADDR:MASTER_PORT+1) within " +
                               std::to_string(int(timeout_s)) + " s (dist.timeout_s); last error: " + last_error +
                               ". Is rank 0 running, and MASTER_ADDR its address?");
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
    backoff = std::min(backoff * 2, 1.0);
  }
  ::freeaddrinfo(res);
  const int one = 1;
  ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  fds_[0] = fd;
  const Hello h{kMagic, layout_.rank, layout_.world_size};
  send_to(0, &h, sizeof h, "rendezvous");
  uint32_t ack = 0;
  recv_from(0, &ack, sizeof ack, "rendezvous");
  if (ack != kMagic) throw std::runtime_error(me + "the process on " + where + " is not a ropevit rank 0");
}

TcpCommunicator::~TcpCommunicator() {
  for (int fd : fds_)
    if (fd >= 0) ::close(fd);
}

void TcpCommunicator::send_to(int peer, const void* data, int64_t bytes, const char* op) {
  const int fd = fd_of(peer);
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    if (!wait_fd(fd, POLLOUT, timeout_s_))
      throw std::runtime_error("dist (tcp): rank " + std::to_string(layout_.rank) + ": sending to rank " +
                               std::to_string(peer) + " during " + op + " timed out after " +
                               std::to_string(int(timeout_s_)) + " s (dist.timeout_s)");
    const ssize_t n = ::send(fd, p, size_t(bytes), MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0)
      throw std::runtime_error("dist (tcp): rank " + std::to_string(layout_.rank) + ": rank " + std::to_string(peer) +
                               " closed its connection during " + op + " (" + std::strerror(errno) +
                               "): that process ended or crashed");
    p += n;
    bytes -= n;
  }
}

void TcpCommunicator::recv_from(int peer, void* data, int64_t bytes, const char* op) {
  const int fd = fd_of(peer);
  char* p = static_cast<char*>(data);
  while (bytes > 0) {
    if (!wait_fd(fd, POLLIN, timeout_s_))
      throw std::runtime_error("dist (tcp): rank " + std::to_string(layout_.rank) + ": waited " +
                               std::to_string(int(timeout_s_)) + " s (dist.timeout_s) for rank " +
                               std::to_string(peer) + " during " + op + "; it is stuck or slower than the timeout");
    const ssize_t n = ::recv(fd, p, size_t(bytes), 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0)
      throw std::runtime_error("dist (tcp): rank " + std::to_string(layout_.rank) + ": rank " + std::to_string(peer) +
                               " closed its connection during " + op +
                               (n < 0 ? std::string(" (") + std::strerror(errno) + ")" : std::string()) +
                               ": that process ended or crashed");
    p += n;
    bytes -= n;
  }
}

void TcpCommunicator::send_header(int peer, Op op, int64_t bytes) {
  const Header h{op, 0, bytes};
  send_to(peer, &h, sizeof h, op_name(op));
}

void TcpCommunicator::expect_header(int peer, Op op, int64_t bytes) {
  Header h{};
  recv_from(peer, &h, sizeof h, op_name(op));
  if (h.op != op || h.bytes != bytes)
    throw std::runtime_error("dist (tcp): rank 0 is in " + std::string(op_name(op)) + " of " + std::to_string(bytes) +
                             " bytes but rank " + std::to_string(peer) + " is in " + op_name(h.op) + " of " +
                             std::to_string(h.bytes) + " bytes: the ranks disagree on the sequence of collectives");
}

void TcpCommunicator::all_reduce_sum(void* data, int64_t count, DType dtype) {
  const int64_t bytes = count * int64_t(reduce_item_size(dtype, "all_reduce"));
  if (layout_.rank != 0) {
    send_header(0, kAllReduce, bytes);
    send_to(0, data, bytes, "all_reduce");
    recv_from(0, data, bytes, "all_reduce");
    return;
  }
  scratch_.resize(size_t(bytes));
  for (int r = 1; r < layout_.world_size; ++r) {  // rank order: the sum does not depend on timing
    expect_header(r, kAllReduce, bytes);
    recv_from(r, scratch_.data(), bytes, "all_reduce");
    add_into(data, scratch_.data(), count, dtype);
  }
  for (int r = 1; r < layout_.world_size; ++r) send_to(r, data, bytes, "all_reduce");
}

void TcpCommunicator::broadcast(void* data, int64_t bytes, int root) {
  if (root < 0 || root >= layout_.world_size)
    throw std::invalid_argument("broadcast: root " + std::to_string(root) + " is not a rank of " +
                                std::to_string(layout_.world_size));
  if (layout_.rank == 0) {
    if (root != 0) {  // the root's bytes come through rank 0, the hub
      expect_header(root, kBroadcast, bytes);
      recv_from(root, data, bytes, "broadcast");
    }
    for (int r = 1; r < layout_.world_size; ++r)
      if (r != root) send_to(r, data, bytes, "broadcast");
  } else if (layout_.rank == root) {
    send_header(0, kBroadcast, bytes);
    send_to(0, data, bytes, "broadcast");
  } else {
    recv_from(0, data, bytes, "broadcast");
  }
}

void TcpCommunicator::all_gather(const void* in, int64_t bytes, void* out) {
  char* o = static_cast<char*>(out);
  const int64_t total = bytes * layout_.world_size;
  if (layout_.rank != 0) {
    send_header(0, kAllGather, bytes);
    send_to(0, in, bytes, "all_gather");
    recv_from(0, o, total, "all_gather");
    return;
  }
  std::memcpy(o, in, size_t(bytes));
  for (int r = 1; r < layout_.world_size; ++r) {
    expect_header(r, kAllGather, bytes);
    recv_from(r, o + r * bytes, bytes, "all_gather");
  }
  for (int r = 1; r < layout_.world_size; ++r) send_to(r, o, total, "all_gather");
}

void TcpCommunicator::reduce_scatter_sum(const void* in, void* out, int64_t count_per_rank, DType dtype) {
  const int64_t item = int64_t(reduce_item_size(dtype, "reduce_scatter"));
  const int64_t chunk = count_per_rank * item, total = chunk * layout_.world_size;
  if (layout_.rank != 0) {
    send_header(0, kReduceScatter, total);
    send_to(0, in, total, "reduce_scatter");
    recv_from(0, out, chunk, "reduce_scatter");
    return;
  }
  // Rank 0 sums whole buffers in rank order (as all_reduce), then hands out the chunks.
  sums_.resize(size_t(total));
  scratch_.resize(size_t(total));
  if (total > 0) std::memcpy(sums_.data(), in, size_t(total));
  for (int r = 1; r < layout_.world_size; ++r) {
    expect_header(r, kReduceScatter, total);
    recv_from(r, scratch_.data(), total, "reduce_scatter");
    add_into(sums_.data(), scratch_.data(), count_per_rank * layout_.world_size, dtype);
  }
  for (int r = 1; r < layout_.world_size; ++r) send_to(r, sums_.data() + r * chunk, chunk, "reduce_scatter");
  if (chunk > 0) std::memcpy(out, sums_.data(), size_t(chunk));
}

void TcpCommunicator::barrier() {
  int64_t token = 0;
  all_reduce_sum(&token, 1, DType::i64);
}

}  // namespace rv::train::dist

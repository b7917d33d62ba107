// tcp_ranks.h: run a body on `world` TCP ranks that are threads of this test process (one
// dist::TcpCommunicator each, rendezvous on 127.0.0.1), for tests of collective code without a
// launcher. The collectives are the real TCP ones, so sums are in rank order as in a real run.
//
//   auto errors = rv::test::run_tcp_ranks(3, [&](rv::train::dist::Communicator& c) { ... });
//   // errors[r]: rank r's exception message, "" when it finished
#pragma once
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "train/distributed/launch_env.h"
#include "train/distributed/tcp_communicator.h"

namespace rv::test {

// A MASTER_PORT whose next port (the rendezvous's) the kernel says is free now.
inline int free_tcp_port_pair() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    const int p = ntohs(a.sin_port);
    if (p > 1024 && p < 65000) return p - 1;
  }
  FAIL("no free port");
  return 0;
}

// A torchrun-style layout for rank `rank` of `world` on this host.
inline train::dist::LaunchLayout tcp_layout(int rank, int world, int port) {
  train::dist::LaunchLayout l;
  l.launcher = train::dist::Launcher::torchrun;
  l.rank = rank;
  l.world_size = world;
  l.local_rank = rank;
  l.local_world_size = world;
  l.master_addr = "127.0.0.1";
  l.master_port = port;
  return l;
}

// body(comm) on `world` threads; returns each rank's error message ("" when it returned).
using RankBody = std::function<void(std::shared_ptr<train::dist::Communicator>)>;
inline std::vector<std::string> run_tcp_ranks(int world, const RankBody& body, double timeout_s = 20) {
  const int port = free_tcp_port_pair();
  std::vector<std::string> errors(static_cast<size_t>(world));
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r)
    threads.emplace_back([&, r] {
      try {
        body(std::make_shared<train::dist::TcpCommunicator>(tcp_layout(r, world, port), timeout_s));
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

}  // namespace rv::test

// attnforge: a closed-loop request driver for one HBM2 channel in Ramulator 2.0 (C++ API of commit 14a52ce).
//
// SpAtten's RTL simulation attaches one Ramulator instance to each of its 16 HBM channels and lets at most 16
// requests be pending in each, counted from the fetcher's push to its pop of the response, with one push and one pop
// a 1 GHz cycle. This driver does the same for one channel: it reads per-channel byte addresses (one per line) from
// stdin, issues them in order under that limit, ticks the memory system once a cycle and prints one JSON line:
// requests, cycles, GB/s and the mean push-to-pop latency. Ramulator's own statistics follow on stdout.
//
// usage: driver CONFIG.yaml PENDING < addresses
#include <cstdio>
#include <iostream>
#include <queue>
#include <string>
#include <vector>

#include "base/base.h"
#include "base/config.h"
#include "base/request.h"
#include "frontend/frontend.h"
#include "memory_system/memory_system.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s CONFIG.yaml PENDING < addresses\n", argv[0]);
    return 2;
  }
  YAML::Node config = Ramulator::Config::parse_config_file(argv[1], {});
  const size_t max_pending = std::stoul(argv[2]);
  std::vector<unsigned long long> addrs;
  for (unsigned long long a; std::cin >> a;) addrs.push_back(a);

  auto* frontend = Ramulator::Factory::create_frontend(config);
  auto* memory = Ramulator::Factory::create_memory_system(config);
  frontend->connect_memory_system(memory);
  memory->connect_frontend(frontend);

  std::queue<size_t> responses;  // completed, waiting for the fetcher's pop (one a cycle)
  std::vector<long> pushed(addrs.size()), popped(addrs.size());
  size_t next = 0, pending = 0, finished = 0;
  long clk = 0;
  while (finished < addrs.size()) {
    if (!responses.empty()) {
      popped[responses.front()] = clk;
      responses.pop();
      pending--;
      finished++;
    }
    if (next < addrs.size() && pending < max_pending) {
      const size_t i = next;
      if (frontend->receive_external_requests(0, addrs[i], 0, [i, &responses](Ramulator::Request&) { responses.push(i); })) {
        pushed[i] = clk;
        next++;
        pending++;
      }
    }
    memory->tick();
    clk++;
  }
  double latency = 0;
  for (size_t i = 0; i < addrs.size(); i++) latency += static_cast<double>(popped[i] - pushed[i]);
  std::printf("{\"requests\": %zu, \"cycles\": %ld, \"gb_s\": %.4f, \"mean_latency\": %.3f}\n", addrs.size(), clk,
              addrs.empty() ? 0.0 : addrs.size() * 32.0 / clk, addrs.empty() ? 0.0 : latency / addrs.size());
  frontend->finalize();
  memory->finalize();
  return 0;
}

// The caching host allocator (engine/cpu/host_allocator.h): size classes, reuse of a freed large
// block, no caching of small blocks, the cap (with oldest-first eviction), the off switch,
// alignment, release on demand, and many threads allocating and freeing at once without ever
// handing one block to two owners. Tensors go through it (Storage::allocate).
#include <atomic>
#include <cstdint>
#include <cstring>
#include <new>
#include <thread>
#include <vector>

#include "engine/cpu/host_allocator.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

namespace cpu = rv::cpu;

namespace {

constexpr size_t MiB = size_t(1) << 20;

// Each test starts from an empty cache with caching on and a known cap, and restores that after.
struct FreshCache {
  explicit FreshCache(size_t cap = 256 * MiB) {
    cpu::host_cache_set_enabled(true);
    cpu::host_cache_set_cap(cap);
    cpu::host_release_cached();
  }
  ~FreshCache() {
    cpu::host_release_cached();
    cpu::host_cache_set_cap(2048 * MiB);
    cpu::host_cache_set_enabled(true);
  }
};

bool aligned64(const void* p) { return reinterpret_cast<uintptr_t>(p) % 64 == 0; }

}  // namespace

TEST_CASE("host_alloc_size: 64-byte multiples below 1 MiB, 8 classes per power of two above") {
  CHECK(cpu::host_alloc_size(0) == 64);
  CHECK(cpu::host_alloc_size(1) == 64);
  CHECK(cpu::host_alloc_size(64) == 64);
  CHECK(cpu::host_alloc_size(65) == 128);
  CHECK(cpu::host_alloc_size(MiB) == MiB);
  CHECK(cpu::host_alloc_size(MiB + 1) == MiB + MiB / 8);
  CHECK(cpu::host_alloc_size(2 * MiB - 1) == 2 * MiB);
  // gelu ViT's output: 32*197*1536 floats = 38.7 MB -> 40 MiB (step 4 MiB in [32, 64) MiB).
  CHECK(cpu::host_alloc_size(size_t(32) * 197 * 1536 * 4) == 40 * MiB);
  // Slack at most 1/8, and the class of a class is itself (host_free accepts either size).
  for (size_t n = MiB; n < 300 * MiB; n = n * 9 / 7 + 12345) {
    const size_t c = cpu::host_alloc_size(n);
    CHECK(c >= n);
    CHECK(c - n <= n / 8);
    CHECK(cpu::host_alloc_size(c) == c);
  }
}

TEST_CASE("host_alloc: a freed large block is handed back out for the same size class") {
  FreshCache fc;
  void* a = cpu::host_alloc(10 * MiB);
  CHECK(aligned64(a));
  std::memset(a, 1, 10 * MiB);  // the whole requested size is writable
  cpu::host_free(a, 10 * MiB);
  auto s = cpu::host_cache_stats();
  CHECK(s.cached_blocks == 1);
  CHECK(s.cached_bytes == cpu::host_alloc_size(10 * MiB));
  const size_t hits0 = s.hits;
  // A slightly different size in the same class gets the same block back...
  void* b = cpu::host_alloc(10 * MiB - 1000);
  CHECK(b == a);
  CHECK(cpu::host_cache_stats().hits == hits0 + 1);
  CHECK(cpu::host_cache_stats().cached_bytes == 0);
  // ...and a size of another class does not.
  void* c = cpu::host_alloc(20 * MiB);
  CHECK(c != a);
  cpu::host_free(b, 10 * MiB - 1000);
  cpu::host_free(c, 20 * MiB);
  CHECK(cpu::host_cache_stats().cached_blocks == 2);
  cpu::host_release_cached();
  CHECK(cpu::host_cache_stats().cached_blocks == 0);
  CHECK(cpu::host_cache_stats().cached_bytes == 0);
}

TEST_CASE("host_alloc: small blocks are not cached, and every block is 64-byte aligned") {
  FreshCache fc;
  std::vector<std::pair<void*, size_t>> blocks;
  for (size_t n : {size_t(0), size_t(1), size_t(63), size_t(100), size_t(4096), MiB - 100, MiB - 1, 3 * MiB + 7})
    blocks.push_back({cpu::host_alloc(n), n});
  for (auto [p, n] : blocks) {
    CHECK(p != nullptr);
    CHECK(aligned64(p));
  }
  for (size_t i = 0; i < blocks.size(); ++i)
    for (size_t j = i + 1; j < blocks.size(); ++j) CHECK(blocks[i].first != blocks[j].first);
  for (auto [p, n] : blocks) cpu::host_free(p, n);
  // Only the blocks whose class is at least 1 MiB were kept (MiB - 1 rounds up to 1 MiB).
  CHECK(cpu::host_cache_stats().cached_blocks == 2);
  CHECK(cpu::host_cache_stats().cached_bytes == MiB + cpu::host_alloc_size(3 * MiB + 7));
}

TEST_CASE("host cache: the cap is never exceeded; the oldest kept blocks go first") {
  FreshCache fc(10 * MiB);
  void* a = cpu::host_alloc(4 * MiB);
  void* b = cpu::host_alloc(4 * MiB);
  void* c = cpu::host_alloc(4 * MiB);
  cpu::host_free(a, 4 * MiB);
  cpu::host_free(b, 4 * MiB);
  CHECK(cpu::host_cache_stats().cached_bytes == 8 * MiB);
  cpu::host_free(c, 4 * MiB);  // 12 MiB > 10: a (the oldest) is handed back to the OS
  auto s = cpu::host_cache_stats();
  CHECK(s.cached_bytes == 8 * MiB);
  CHECK(s.cached_blocks == 2);
  CHECK(s.cap_bytes == 10 * MiB);
  // The newest block of the class comes out first (warmest in the CPU's caches).
  void* d = cpu::host_alloc(4 * MiB);
  CHECK(d == c);
  void* e = cpu::host_alloc(4 * MiB);
  CHECK(e == b);
  cpu::host_free(d, 4 * MiB);
  cpu::host_free(e, 4 * MiB);
  // A block larger than the whole cap is not kept at all.
  void* big = cpu::host_alloc(16 * MiB);
  cpu::host_free(big, 16 * MiB);
  CHECK(cpu::host_cache_stats().cached_bytes == 8 * MiB);
  // Lowering the cap trims at once.
  cpu::host_cache_set_cap(5 * MiB);
  CHECK(cpu::host_cache_stats().cached_bytes == 4 * MiB);
  cpu::host_cache_set_cap(0);
  CHECK(cpu::host_cache_stats().cached_bytes == 0);
}

TEST_CASE("host cache: switched off, nothing is kept (what RV_HOST_CACHE=0 does)") {
  FreshCache fc;
  void* a = cpu::host_alloc(8 * MiB);
  cpu::host_free(a, 8 * MiB);
  CHECK(cpu::host_cache_stats().cached_blocks == 1);
  cpu::host_cache_set_enabled(false);  // releases what is kept
  CHECK(cpu::host_cache_stats().cached_blocks == 0);
  CHECK_FALSE(cpu::host_cache_stats().enabled);
  void* b = cpu::host_alloc(8 * MiB);
  cpu::host_free(b, 8 * MiB);
  CHECK(cpu::host_cache_stats().cached_blocks == 0);
}

TEST_CASE("host_alloc: an impossible size throws bad_alloc instead of wrapping around") {
  CHECK_THROWS_AS(cpu::host_alloc(~size_t(0) - 10), std::bad_alloc);
  CHECK_THROWS_AS(cpu::host_alloc(size_t(1) << 62), std::bad_alloc);  // rounds fine; the OS refuses
}

TEST_CASE("host cache: tensors recycle their storage") {
  FreshCache fc;
  const void* first = nullptr;
  {
    rv::Tensor t = rv::empty({1024, 1024});  // 4 MiB of f32
    first = t.raw_data();
  }
  rv::Tensor u = rv::empty({1024, 1000});  // 3.9 MiB: same class
  CHECK(u.raw_data() == first);
}

TEST_CASE("host cache: threads allocating and freeing at once never share a block") {
  FreshCache fc(64 * MiB);
  constexpr int kThreads = 8, kRounds = 200;
  std::atomic<int> bad{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < kThreads; ++t) {
    pool.emplace_back([t, &bad] {
      for (int r = 0; r < kRounds; ++r) {
        // Three size classes (1, 1.25 and 2 MiB), so threads compete for the same lists.
        const size_t n = (r % 3 == 0) ? MiB : (r % 3 == 1) ? MiB + MiB / 4 : 2 * MiB;
        auto* p = static_cast<uint32_t*>(cpu::host_alloc(n));
        if (!aligned64(p)) bad.fetch_add(1);
        const size_t words = n / 4;
        const uint32_t tag = uint32_t(t) << 16 | uint32_t(r);
        // Write the owner's tag over the block, let the others run, and check nobody overwrote it.
        for (size_t i = 0; i < words; i += 1024) p[i] = tag;
        p[words - 1] = tag;
        std::this_thread::yield();
        for (size_t i = 0; i < words; i += 1024)
          if (p[i] != tag) bad.fetch_add(1);
        if (p[words - 1] != tag) bad.fetch_add(1);
        cpu::host_free(p, n);
      }
    });
  }
  for (auto& th : pool) th.join();
  CHECK(bad.load() == 0);
  auto s = cpu::host_cache_stats();
  CHECK(s.cached_bytes <= 64 * MiB);
  CHECK(s.hits > 0);  // with 8 threads and 64 MiB kept, most allocations were served from the lists
}

// bench_attention.cpp: wall-clock timings of scaled_dot_product_attention and rope_apply on the
// model shapes (ViT-S/16 at 224 with batch 32, Swin-T stage 1 with batch 32), forward and
// forward+backward, f32, medians of repeated runs. Not a test; tools/bench_attention_torch.py
// prints PyTorch's numbers for the same shapes. Build against a Release build tree:
//   g++ -std=c++20 -O3 -march=native -fopenmp -I. tools/bench_attention.cpp build/engine/librv_engine.a -o /tmp/bench_attention
//   OMP_NUM_THREADS=2 /tmp/bench_attention [reps] [vit|swin|rope]
// With RV_BENCH_CPU=1 it reports process CPU time instead of wall time: on a shared, busy machine
// run both programs with 1 thread that way, since wall times of 2 threads then mostly measure
// the other users' load.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <functional>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/attention.h"
#include "engine/ops/rope.h"
#include "engine/rng.h"

using namespace rv;

namespace {

int g_reps = 7;
const bool g_cpu_time = std::getenv("RV_BENCH_CPU") != nullptr;

double now_ms() {
  if (g_cpu_time) return 1e3 * double(std::clock()) / CLOCKS_PER_SEC;
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

double median_ms(const std::function<void()>& f) {
  f();  // warm-up
  std::vector<double> ts;
  for (int i = 0; i < g_reps; ++i) {
    const double t0 = now_ms();
    f();
    ts.push_back(now_ms() - t0);
  }
  std::sort(ts.begin(), ts.end());
  return ts[ts.size() / 2];
}

void attn_case(const char* name, Shape qs, Shape bias_shape, bool bias_grad) {
  Generator gen(1);
  Tensor q = randn(qs, gen), k = randn(qs, gen), v = randn(qs, gen), g = randn(qs, gen);
  Tensor bias = bias_shape.empty() ? Tensor() : randn(bias_shape, gen);
  const double tf = median_ms([&] { scaled_dot_product_attention(q, k, v, bias); });
  Tensor qg = q.clone().requires_grad_(), kg = k.clone().requires_grad_(), vg = v.clone().requires_grad_();
  Tensor bg = bias.defined() ? bias.clone() : Tensor();
  if (bg.defined() && bias_grad) bg.requires_grad_();
  const double tfb = median_ms([&] {
    Tensor out = scaled_dot_product_attention(qg, kg, vg, bg);
    out.backward(g);
    for (Tensor* t : {&qg, &kg, &vg, &bg})
      if (t->defined() && t->requires_grad()) t->zero_grad();
  });
  const double flops = 4.0 * double(qs[0] * qs[1]) * double(qs[2]) * double(qs[2]) * double(qs[3]);
  std::printf("ours  %-34s fwd %8.2f ms   fwd+bwd %8.2f ms   (fwd %.1f GFLOP/s)\n", name, tf, tfb,
              flops / tf * 1e-6);
}

void rope_case() {
  Generator gen(2);
  Tensor x = randn({32, 6, 197, 64}, gen), ang = randn({6, 197, 32}, gen), g = randn({32, 6, 197, 64}, gen);
  const double tf = median_ms([&] { rope_apply(x, ang); });
  Tensor xg = x.clone().requires_grad_();
  const double tfb = median_ms([&] {
    rope_apply(xg, ang).backward(g);
    xg.zero_grad();
  });
  std::printf("ours  %-34s fwd %8.2f ms   fwd+bwd %8.2f ms\n", "rope (32,6,197,64)", tf, tfb);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_reps = std::atoi(argv[1]);
  const char* only = argc > 2 ? argv[2] : "";
  auto want = [&](const char* name) { return std::strstr(name, only) == name; };
  if (want("vit")) attn_case("vit (32,6,197,64)", {32, 6, 197, 64}, {}, false);
  if (want("swin")) attn_case("swin (2048,3,49,32) bias(3,49,49)", {2048, 3, 49, 32}, {3, 49, 49}, false);
  if (want("swin")) attn_case("swin ... bias requires grad", {2048, 3, 49, 32}, {3, 49, 49}, true);
  if (want("swin")) attn_case("swin (32,192,49,32) bias(192,49,49)", {32, 192, 49, 32}, {192, 49, 49}, true);
  if (want("rope")) rope_case();
}

# bench_attention_torch.py: PyTorch CPU timings for the shapes of tools/bench_attention.cpp, to
# compare against (same threads, f32, medians of repeated runs). Not a test.
#   python3 tools/bench_attention_torch.py [threads] [reps] [vit|swin|rope]
# RV_BENCH_CPU=1: process CPU time instead of wall time (see tools/bench_attention.cpp).
import os, sys, time, statistics
import torch
import torch.nn.functional as F

threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 7
torch.set_num_threads(threads)
torch.manual_seed(0)

clock = time.process_time if os.environ.get("RV_BENCH_CPU") else time.perf_counter

def med(fn):
    fn()
    ts = []
    for _ in range(reps):
        t0 = clock(); fn(); ts.append(clock() - t0)
    return statistics.median(ts) * 1e3

def attn_case(name, B, NH, N, HD, bias_shape=None, bias_grad=False):
    q = torch.randn(B, NH, N, HD); k = torch.randn(B, NH, N, HD); v = torch.randn(B, NH, N, HD)
    bias = torch.randn(*bias_shape) if bias_shape else None
    fwd = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    qg, kg, vg = (t.clone().requires_grad_() for t in (q, k, v))
    bg = bias.clone().requires_grad_(bias_grad) if bias is not None else None
    g = torch.randn(B, NH, N, HD)
    def fb():
        out = F.scaled_dot_product_attention(qg, kg, vg, attn_mask=bg)
        out.backward(g)
        qg.grad = kg.grad = vg.grad = None
        if bg is not None: bg.grad = None
    with torch.no_grad():
        tf = med(fwd)
    tfb = med(fb)
    print(f"torch {name:34s} fwd {tf:8.2f} ms   fwd+bwd {tfb:8.2f} ms")

def rope_case(B, NH, N, HD):
    x = torch.randn(B, NH, N, HD)
    ang = torch.randn(NH, N, HD // 2)
    freqs_cis = torch.polar(torch.ones_like(ang), ang)
    def f(xx):
        xc = torch.view_as_complex(xx.float().reshape(*xx.shape[:-1], -1, 2))
        return torch.view_as_real(xc * freqs_cis).flatten(3)
    with torch.no_grad():
        tf = med(lambda: f(x))
        tfp = med(lambda: torch.view_as_real(torch.view_as_complex(x.reshape(*x.shape[:-1], -1, 2))
                                             * torch.polar(torch.ones_like(ang), ang)).flatten(3))
    xg = x.clone().requires_grad_(); g = torch.randn_like(x)
    def fb():
        f(xg).backward(g); xg.grad = None
    tfb = med(fb)
    print(f"torch {'rope (32,6,197,64)':34s} fwd {tf:8.2f} ms   fwd+bwd {tfb:8.2f} ms   (fwd with polar(angles) {tfp:.2f} ms)")

only = sys.argv[3] if len(sys.argv) > 3 else ""
if "vit".startswith(only): attn_case("vit (32,6,197,64)", 32, 6, 197, 64)
if "swin".startswith(only): attn_case("swin (2048,3,49,32) bias(3,49,49)", 2048, 3, 49, 32, (3, 49, 49))
if "swin".startswith(only): attn_case("swin ... bias requires grad", 2048, 3, 49, 32, (3, 49, 49), True)
if "swin".startswith(only): attn_case("swin (32,192,49,32) bias(192,49,49)", 32, 192, 49, 32, (192, 49, 49), True)
if "rope".startswith(only): rope_case(32, 6, 197, 64)

#!/usr/bin/env python3
"""The convolution layers' GEMMs timed in PyTorch: the same list, shapes and operand layouts as
`cargo run --release --example bench-layers -- --gemms`, so the two tables compare the matrix
libraries (the `gemm` crate or cuBLAS under candle; MKL/oneDNN or cuBLAS under PyTorch) at the
training step's shapes.

    python3 reference/pytorch-dcgan/gemm_rates.py [--device cpu|cuda] [--threads 2] [--batch 32]
"""
import argparse
import time

import torch

# The DCGAN at 64×64: (direction, in channels, out channels, input side, stride, padding).
LAYERS = [
    ("up", 100, 512, 1, 1, 0),
    ("up", 512, 256, 4, 2, 1),
    ("up", 256, 128, 8, 2, 1),
    ("up", 128, 64, 16, 2, 1),
    ("up", 64, 3, 32, 2, 1),
    ("down", 3, 64, 64, 2, 1),
    ("down", 64, 128, 32, 2, 1),
    ("down", 128, 256, 16, 2, 1),
    ("down", 256, 512, 8, 2, 1),
    ("down", 512, 1, 4, 1, 0),
]


def layer_gemms(direction, cin, cout, side, stride, padding, batch):
    """(name, m, n, k, lhs transposed, rhs transposed): forward, weight and input gradient."""
    if direction == "down":
        out = (side + 2 * padding - 4) // stride + 1
        k, n = cin * 16, batch * out * out
        return [("forward  W·P", cout, n, k, False, False),
                ("weight   G·Pᵀ", cout, k, n, False, True),
                ("input    Wᵀ·G", k, n, cout, True, False)]
    r, n = cout * 16, batch * side * side
    return [("forward  Wᵀ·X", r, n, cin, True, False),
            ("weight   X·Gᵀ", cin, r, n, False, True),
            ("input    W·G", cin, n, r, False, False)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--reps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    print(f"PyTorch {torch.__version__} on {args.device} ({args.threads} threads) · batch {args.batch}\n")
    print("| layer | GEMM | m × n × k | ms | GFLOP/s |\n|---|---|---|---:|---:|")
    total_flops = total_ms = 0.0
    for direction, cin, cout, side, stride, padding in LAYERS:
        for name, m, n, k, lhs_t, rhs_t in layer_gemms(direction, cin, cout, side, stride, padding, args.batch):
            def operand(rows, cols, transposed):
                return torch.randn(cols, rows, device=dev).t() if transposed else torch.randn(rows, cols, device=dev)
            a, b = operand(m, k, lhs_t), operand(k, n, rhs_t)
            for _ in range(2):
                a @ b
            sync()
            start = time.perf_counter()
            for _ in range(args.reps):
                a @ b
            sync()
            ms = (time.perf_counter() - start) * 1e3 / args.reps
            flops = 2.0 * m * n * k
            total_flops += flops
            total_ms += ms
            layer = f"conv {cin}→{cout}" if direction == "down" else f"convT {cin}→{cout}"
            print(f"| {layer} | {name} | {m} × {n} × {k} | {ms:.2f} | {flops / ms / 1e6:.0f} |")
    print(f"| all | | {total_flops / 1e9:.2f} GFLOP | {total_ms:.2f} | {total_flops / total_ms / 1e6:.0f} |")


if __name__ == "__main__":
    main()

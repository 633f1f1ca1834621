#!/usr/bin/env python3
"""The convolution layers and their GEMMs timed in PyTorch: the same list, shapes and operand
layouts as `cargo run --release --example bench-layers -- --gemms`, so the two tables compare the
matrix libraries (the `gemm` crate or cuBLAS under candle; MKL/oneDNN or cuBLAS under PyTorch) at
the training step's shapes, and the layers as the frameworks run them (forward; forward and
backward of sum(f(x)·r) with respect to x and the weight, as bench-layers times them).

    python3 reference/pytorch-dcgan/gemm_rates.py [--device cpu|cuda] [--threads 2] [--batch 32]
        [--layers dcgan|laptop] [--json FILE]

With `--json FILE` the times are also written for `bench-layers --pytorch FILE`, which puts them
beside candle's in its roofline (`scripts/roofline.py` runs both).
"""
import argparse
import json
import time

import torch

# The DCGAN at 64×64: (direction, in channels, out channels, input side, stride, padding).
DCGAN = [
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

# The laptop preset's LogoGan at 32×32 (bench-layers' LAPTOP).
LAPTOP = [
    ("up", 100, 64, 1, 1, 0),
    ("up", 64, 32, 4, 2, 1),
    ("up", 32, 16, 8, 2, 1),
    ("up", 16, 3, 16, 2, 1),
    ("down", 3, 32, 32, 2, 1),
    ("down", 32, 32, 16, 2, 1),
    ("down", 32, 32, 8, 2, 1),
    ("down", 32, 1, 4, 1, 0),
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
    ap.add_argument("--layers", choices=["dcgan", "laptop"], default="dcgan")
    ap.add_argument("--json", metavar="FILE", help="also write the times for bench-layers --pytorch")
    args = ap.parse_args()
    if not 1 <= args.batch <= 4096 or not 1 <= args.reps <= 1000 or not 1 <= args.threads <= 1024:
        ap.error("--batch must be in 1..=4096, --reps in 1..=1000, --threads in 1..=1024")
    layers = DCGAN if args.layers == "dcgan" else LAPTOP
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    print(f"PyTorch {torch.__version__} on {args.device} ({args.threads} threads) · batch {args.batch}\n")

    def timed(f):
        """Milliseconds per call of f, after two untimed calls."""
        for _ in range(2):
            f()
        sync()
        start = time.perf_counter()
        for _ in range(args.reps):
            f()
        sync()
        return (time.perf_counter() - start) * 1e3 / args.reps

    convs = {}
    print("| layer | forward ms | forward+backward ms |\n|---|---:|---:|")
    for direction, cin, cout, side, stride, padding in layers:
        x = torch.randn(args.batch, cin, side, side, device=dev, requires_grad=True)
        if direction == "down":
            w = (torch.randn(cout, cin, 4, 4, device=dev) * 0.02).requires_grad_()
            conv = lambda: torch.nn.functional.conv2d(x, w, stride=stride, padding=padding)
        else:
            w = (torch.randn(cin, cout, 4, 4, device=dev) * 0.02).requires_grad_()
            conv = lambda: torch.nn.functional.conv_transpose2d(x, w, stride=stride, padding=padding)
        r = torch.randn_like(conv())
        with torch.no_grad():
            forward = timed(conv)
        # Both gradients, fresh each time (as candle's backward makes a new gradient store;
        # .backward() would add into x.grad and w.grad, one more pass over each).
        both = timed(lambda: torch.autograd.grad((conv() * r).sum(), (x, w)))
        layer = f"conv {cin}→{cout}" if direction == "down" else f"convT {cin}→{cout}"
        convs[f"{layer} from {side}×{side}"] = [forward, both]
        print(f"| {layer} | {forward:.2f} | {both:.2f} |")

    gemms = {}
    print("\n| layer | GEMM | m × n × k | ms | GFLOP/s |\n|---|---|---|---:|---:|")
    total_flops = total_ms = 0.0
    for direction, cin, cout, side, stride, padding in layers:
        for name, m, n, k, lhs_t, rhs_t in layer_gemms(direction, cin, cout, side, stride, padding, args.batch):
            def operand(rows, cols, transposed):
                return torch.randn(cols, rows, device=dev).t() if transposed else torch.randn(rows, cols, device=dev)
            a, b = operand(m, k, lhs_t), operand(k, n, rhs_t)
            ms = timed(lambda: a @ b)
            flops = 2.0 * m * n * k
            total_flops += flops
            total_ms += ms
            layer = f"conv {cin}→{cout}" if direction == "down" else f"convT {cin}→{cout}"
            gemms[f"{layer} from {side}×{side} | {name}"] = ms
            print(f"| {layer} | {name} | {m} × {n} × {k} | {ms:.2f} | {flops / ms / 1e6:.0f} |")
    print(f"| all | | {total_flops / 1e9:.2f} GFLOP | {total_ms:.2f} | {total_flops / total_ms / 1e6:.0f} |")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump({"torch": torch.__version__, "device": dev.type, "threads": args.threads,
                       "batch": args.batch,
                       "layers": args.layers, "convs": convs, "gemms": gemms}, f,
                      ensure_ascii=False, indent=1)


if __name__ == "__main__":
    main()

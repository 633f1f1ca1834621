"""The PyTorch yardstick for the course's baseline: the same GAN, trained the same way on the same
images, so its samples can be scored by the course's own metric code and compared with a candle run.

It is a reference, not part of the course. It reads a candle run's `config.json` and rebuilds what
that file describes: the generator and discriminator (LogoGan or classic DCGAN, any image size),
DCGAN initialisation, Adam with the run's learning rates and betas, a D step on a real and a fake
batch (BCE with logits, the run's real label), a non-saturating G step on the same fakes, the run's
batch size and epochs over shuffled epochs without the last short batch. Switches it does not mirror
(hinge loss, instance noise, EMA, DiffAugment, spectral norm) make it stop rather than train
something else.

    # 1. the exact images the candle run trained on (u8, N×3×S×S)
    cargo run --release --bin chapter-06 -- export-training-set runs/<run> runs/<run>-torch/train.npy
    # 2. train here (needs only torch; numpy is not required)
    python3 reference/pytorch-dcgan/train_dcgan.py --run runs/<run> \
        --images runs/<run>-torch/train.npy --out runs/<run>-torch --device cuda
    # 3. judge both with the same code
    cargo run --release --bin chapter-06 -- score runs/<run>
    cargo run --release --bin chapter-06 -- score-images runs/<run>-torch/samples.npy

Writes into --out: metrics.csv (step, d_loss, g_loss, d_real, d_fake), samples.npy (u8 N×3×S×S,
from fresh noise, batch-norm in inference mode as `chapter-06 score` samples a candle run) and
summary.json (steps, seconds, img/s, final losses, versions).
"""
import argparse
import ast
import csv
import json
import math
import os
import platform
import struct
import sys
import tempfile
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

UNSUPPORTED = {  # config field -> value that means "off" in the candle run's config.json
    "loss": "bce",
    "instance_noise": 0.0,
    "ema_decay": None,
    "diff_augment": False,
}


# --- .npy of uint8 without numpy (the format is a short text header and raw bytes) -------------

def read_npy_u8(path):
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            sys.exit(f"{path}: not a .npy file (write it with `chapter-06 export-training-set`)")
        major = f.read(2)[0]
        (length,) = struct.unpack("<H" if major == 1 else "<I", f.read(2 if major == 1 else 4))
        header = ast.literal_eval(f.read(length).decode("latin1"))
        if header["descr"] not in ("|u1", "u1", "<u1") or header["fortran_order"]:
            sys.exit(f"{path}: holds {header['descr']} (fortran {header['fortran_order']}); expected C-order uint8")
        shape = tuple(header["shape"])
        data = bytearray(f.read())
    if len(shape) != 4 or shape[1] != 3 or len(data) != math.prod(shape):
        sys.exit(f"{path}: shape {shape} with {len(data)} bytes; expected uint8 (N, 3, S, S)")
    return torch.frombuffer(data, dtype=torch.uint8).view(shape)


def write_npy_u8(path, tensor):
    tensor = tensor.to("cpu", torch.uint8).contiguous()
    header = "{'descr': '|u1', 'fortran_order': False, 'shape': %s, }" % (tuple(tensor.shape),)
    header = header.ljust(64 * math.ceil((len(header) + 11) / 64) - 11) + "\n"
    directory = os.path.dirname(os.path.abspath(path))
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".tmp-", delete=False) as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header.encode("latin1"))
        try:
            f.write(tensor.numpy().tobytes())
        except RuntimeError:  # torch without numpy
            f.write(bytes(tensor.flatten().tolist()))
    os.replace(f.name, path)


# --- the networks, built from the candle run's model config -------------------------------------

def upsamplings(size):
    if size & (size - 1) or not 8 <= size <= 512:
        sys.exit(f"image_size {size}: not a power of two from 8 to 512")
    return size.bit_length() - 1 - 2


def generator(cfg):
    """z (B, latent, 1, 1) → convT s1 p0 to 4×4, then convT s2 p1 doubling; BN + ReLU, tanh out."""
    steps, layers, c_in = upsamplings(cfg["image_size"]), [], cfg["latent_dim"]
    for i in range(steps + 1):
        last = i == steps
        c_out = cfg["channels"] if last else cfg["base_filters"] << (steps - 1 - i)
        stride, padding = (1, 0) if i == 0 else (2, 1)
        layers.append(nn.ConvTranspose2d(c_in, c_out, 4, stride, padding, bias=False))
        layers += [nn.Tanh()] if last else [nn.BatchNorm2d(c_out), nn.ReLU(True)]
        c_in = c_out
    return nn.Sequential(*layers)


def discriminator(cfg):
    """conv 4×4 s2 p1 halving (+ BN except maybe the first) + LeakyReLU, then 4×4 → one logit."""
    if cfg.get("spectral_norm"):
        sys.exit("discriminator.spectral_norm is on: this reference mirrors the baseline only")
    steps, layers, c_in = upsamplings(cfg["image_size"]), [], cfg["channels"]
    filters = cfg["filters"]
    for i in range(steps):
        c_out = filters["constant"] if "constant" in filters else filters["doubling"]["first"] << i
        layers.append(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=False))
        if i > 0 or cfg["batch_norm_first"]:
            layers.append(nn.BatchNorm2d(c_out))
        layers.append(nn.LeakyReLU(cfg["leaky_slope"], True))
        c_in = c_out
    layers.append(nn.Conv2d(c_in, 1, 4, 1, 0, bias=False))
    return nn.Sequential(*layers)


def init_dcgan(module):
    """Convolution weights N(0, 0.02); batch-norm γ N(1, 0.02), β = 0 (the DCGAN paper's rule)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def adam(params, opt):
    return torch.optim.Adam(params, lr=opt["lr"], betas=(opt["beta1"], opt["beta2"]), eps=opt["eps"])


# --- training -----------------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--run", required=True, help="the candle run whose config.json to mirror")
    ap.add_argument("--images", required=True, help="its training set (chapter-06 export-training-set)")
    ap.add_argument("--out", required=True, help="folder for metrics.csv, samples.npy, summary.json")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's choice)")
    ap.add_argument("--samples", type=int, default=1000, help="images to generate for scoring")
    ap.add_argument("--seed", type=int, default=None, help="default: the run's seed")
    ap.add_argument("--epochs", type=int, default=None, help="default: the run's epochs")
    args = ap.parse_args()

    with open(os.path.join(args.run, "config.json")) as f:
        config = json.load(f)["config"]
    for field, off in UNSUPPORTED.items():
        if config.get(field, off) != off:
            sys.exit(f"{args.run}/config.json: {field} = {config[field]!r}; this reference mirrors the baseline only")
    model = config["model"]
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False  # fp32, as the candle run
    torch.backends.cudnn.allow_tf32 = False
    seed = config["seed"] if args.seed is None else args.seed
    torch.manual_seed(seed)
    dev = torch.device(args.device)

    images = read_npy_u8(args.images)
    size = model["generator"]["image_size"]
    if images.shape[2:] != (size, size):
        sys.exit(f"{args.images}: images are {tuple(images.shape[2:])}, the run's model makes {size}×{size}")
    images = images.to(dev)
    n, batch = images.shape[0], config["batch_size"]
    epochs = config["epochs"] if args.epochs is None else args.epochs
    steps_per_epoch = n // batch  # the last short batch is dropped, as in the candle trainer
    latent = model["generator"]["latent_dim"]
    real_label = config.get("real_label", 1.0)

    g, d = generator(model["generator"]).to(dev), discriminator(model["discriminator"]).to(dev)
    init_dcgan(g)
    init_dcgan(d)
    opt_g = adam(g.parameters(), config["generator_optimizer"])
    opt_d = adam(d.parameters(), config["discriminator_optimizer"])
    bce = nn.BCEWithLogitsLoss()

    os.makedirs(args.out, exist_ok=True)
    rows, started, step = [], time.perf_counter(), 0
    print(f"torch {torch.__version__} on {dev}: {n} images of {size}×{size}, {epochs} epochs × "
          f"{steps_per_epoch} steps of {batch}", flush=True)
    for epoch in range(epochs):
        order = torch.randperm(n, device=dev)
        for b in range(steps_per_epoch):
            real = images[order[b * batch:(b + 1) * batch]].float() / 127.5 - 1.0  # (B, 3, S, S) in [-1, 1]
            z = torch.randn(batch, latent, 1, 1, device=dev)
            fake = g(z)
            real_logits, fake_logits = d(real).view(-1), d(fake.detach()).view(-1)
            d_loss = bce(real_logits, torch.full_like(real_logits, real_label)) + \
                bce(fake_logits, torch.zeros_like(fake_logits))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            after = d(fake).view(-1)
            g_loss = bce(after, torch.ones_like(after))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            step += 1
            rows.append(torch.stack([d_loss.detach(), g_loss.detach(),
                                     torch.sigmoid(real_logits.detach()).mean(),
                                     torch.sigmoid(fake_logits.detach()).mean()]))
            if not torch.isfinite(d_loss) or not torch.isfinite(g_loss):
                sys.exit(f"step {step}: a loss is not finite")
        last = rows[-1].tolist()
        print(f"epoch {epoch + 1}/{epochs}: step {step}, D {last[0]:.3f}, G {last[1]:.3f}, "
              f"D(x) {last[2]:.3f}, D(G(z)) {last[3]:.3f}", flush=True)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started

    metrics = torch.stack(rows).cpu().tolist()
    with open(os.path.join(args.out, "metrics.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "d_loss", "g_loss", "d_real", "d_fake"])
        for i, r in enumerate(metrics):
            w.writerow([i + 1] + [f"{v:.6f}" for v in r])

    g.eval()  # batch-norm with running statistics, as candle's forward_t(z, false)
    with torch.no_grad():
        out = []
        for start in range(0, args.samples, 256):
            z = torch.randn(min(256, args.samples - start), latent, 1, 1, device=dev)
            out.append(((g(z) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu())
    write_npy_u8(os.path.join(args.out, "samples.npy"), torch.cat(out))

    summary = {
        "run_config": os.path.join(args.run, "config.json"),
        "images": n, "epochs": epochs, "steps": step, "batch_size": batch, "seed": seed,
        "seconds": round(seconds, 2), "img_per_s": round(step * batch / seconds, 1),
        "final": dict(zip(["d_loss", "g_loss", "d_real", "d_fake"], metrics[-1])),
        "torch": torch.__version__, "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor(),
        "threads": torch.get_num_threads(),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(f"{step} steps in {seconds:.1f} s ({summary['img_per_s']} img/s, training time incl. "
          f"per-step metric stacking); wrote metrics.csv, samples.npy, summary.json to {args.out}")


if __name__ == "__main__":
    main()

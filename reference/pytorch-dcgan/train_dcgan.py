"""The PyTorch yardstick: the same GAN as a candle run, trained the same way on the same images, so
its samples can be scored by the course's own metric code and compared with the candle run.

It is a reference, not part of the course. It reads a candle run's `config.json` and rebuilds what
that file describes: the generator and discriminator (LogoGan or classic DCGAN, any image size),
DCGAN initialisation, Adam with the run's learning rates and betas, a D step on a real and a fake
batch (BCE with logits, the run's real label), a non-saturating G step on the same fakes, the run's
batch size and epochs over shuffled epochs without the last short batch; and, when the run has
them, the laptop recipe's two tricks: DiffAugment of everything D sees (colour, translation,
cutout, a fresh draw for each of D's three looks, as the candle trainer does) and an exponential
moving average of G's weights (batch-norm statistics copied), which the samples come from.
Switches it does not mirror (hinge loss, instance noise, spectral norm) make it stop rather than
train something else.

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
summary.json (steps, seconds, img/s, final losses, versions). With --snapshot-every N it also
writes snapshots/step-NNNNNNN.npy (samples after N, 2N, … steps) and snapshots.csv (step, kimg,
training seconds so far; the clock is paused while snapshots are drawn), for time-to-quality.
"""
import argparse
import ast
import copy
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
    if cfg.get("minibatch_std"):
        sys.exit("discriminator.minibatch_std is on: this reference mirrors the baseline only")
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


# --- DiffAugment (Zhao et al. 2020, policy "color,translation,cutout"; ranges as the candle code) --

def diff_augment(x, strength=1.0, flip_and_turn=False):
    """x (B, 3, S, S) in [-1, 1] → the same images, each randomly recoloured, shifted by up to S/8
    pixels (zero fill) and with an S/2 square (centre anywhere, may hang over the edge) zeroed.
    With strength p < 1 (adaptive augmentation), each of the three transforms of each image is
    applied with probability p and is the identity otherwise, as in src/train/diff_augment.rs.
    With flip_and_turn, each image is also, with probability p, mirrored or turned (one of the
    square's eight symmetries at random, the identity among them) before the shift."""
    b, _, s, _ = x.shape
    per_image = lambda: torch.rand(b, 1, 1, 1, device=x.device)
    gate = lambda: torch.rand(b, 1, 1, 1, device=x.device) < strength          # (B, 1, 1, 1)
    colour, translation, cutout = gate(), gate(), gate()
    one = torch.ones(b, 1, 1, 1, device=x.device)
    x = x + torch.where(colour, per_image() - 0.5, one * 0.0)                   # brightness
    grey = x.mean(dim=1, keepdim=True)
    x = (x - grey) * torch.where(colour, per_image() * 2.0, one) + grey         # saturation
    mean = x.mean(dim=[1, 2, 3], keepdim=True)
    x = (x - mean) * torch.where(colour, per_image() + 0.5, one) + mean         # contrast
    p = s // 8
    shift = torch.randint(-p, p + 1, (b, 2), device=x.device) * translation.view(b, 1)
    rows = torch.arange(s, device=x.device)
    # Output (i, j) shows the oriented image's (i − dy, j − dx), read from the zero-padded input.
    src_i = (rows.view(1, s, 1) - shift[:, 0].view(b, 1, 1)).expand(b, s, s)
    src_j = (rows.view(1, 1, s) - shift[:, 1].view(b, 1, 1)).expand(b, s, s)
    if flip_and_turn:  # bit 0 mirrors the columns, bit 1 the rows, bit 2 transposes (ops::augment::orient)
        element = torch.randint(0, 8, (b, 1, 1), device=x.device) * gate().view(b, 1, 1)
        src_j = torch.where(element & 1 != 0, s - 1 - src_j, src_j)
        src_i = torch.where(element & 2 != 0, s - 1 - src_i, src_i)
        src_i, src_j = torch.where(element & 4 != 0, src_j, src_i), torch.where(element & 4 != 0, src_i, src_j)
    src_i, src_j = src_i + p, src_j + p
    padded = F.pad(x, [p, p, p, p])
    side = s + 2 * p
    index = (src_i * side + src_j).reshape(b, 1, s * s).expand(b, 3, s * s)
    x = padded.reshape(b, 3, side * side).gather(2, index).reshape(b, 3, s, s)
    half = s // 2
    corner = torch.randint(0, s, (b, 2), device=x.device) - half // 2             # cutout
    inside_i = (rows.view(1, s) >= corner[:, :1]) & (rows.view(1, s) < corner[:, :1] + half)
    inside_j = (rows.view(1, s) >= corner[:, 1:]) & (rows.view(1, s) < corner[:, 1:] + half)
    keep = ~(inside_i.view(b, 1, s, 1) & inside_j.view(b, 1, 1, s)) | ~cutout
    return x * keep.to(x.dtype)


class AdaptiveStrength:
    """Adaptive augmentation (ADA), as src/train/ada.rs: p starts at 0; every 4 steps the mean
    sign of D's scores on the real batches moves it by 4·B/100 000, up above the target, down
    below it, within [0, 1]."""

    def __init__(self, target, batch):
        self.target, self.batch, self.p, self.signs = target, batch, 0.0, []

    def observe(self, real_logits):
        self.signs.append(torch.sign(real_logits.detach()).mean())
        if len(self.signs) == 4:
            measure = torch.stack(self.signs).mean().item()
            step = self.batch * len(self.signs) / 100_000
            direction = (measure > self.target) - (measure < self.target)
            self.p = min(max(self.p + direction * step, 0.0), 1.0)
            self.signs = []


class Ema:
    """An exponential moving average of G's weights, updated after every G step; batch-norm
    running statistics are copied (they describe the current weights), as in src/train/ema.rs."""

    def __init__(self, g, decay):
        self.model, self.decay = copy.deepcopy(g), decay
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, g):
        for own, p in zip(self.model.parameters(), g.parameters()):
            own.lerp_(p, 1.0 - self.decay)
        for own, b in zip(self.model.buffers(), g.buffers()):
            own.copy_(b)


@torch.no_grad()
def sample(g, n, latent, dev):
    """n images (u8, N×3×S×S) from fresh noise, batch-norm with running statistics (eval mode), as
    candle's forward_t(z, false) when `chapter-06 score` samples a run."""
    was_training = g.training
    g.eval()
    out = []
    for start in range(0, n, 256):
        z = torch.randn(min(256, n - start), latent, 1, 1, device=dev)
        out.append(((g(z) + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).cpu())
    g.train(was_training)
    return torch.cat(out)


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
    ap.add_argument("--snapshot-every", type=int, default=None,
                    help="also write samples every this many steps (snapshots/), with the training time so far")
    args = ap.parse_args()
    if args.snapshot_every is not None and not 1 <= args.snapshot_every <= 10**7:
        sys.exit(f"--snapshot-every {args.snapshot_every}: expected a number of steps from 1 to 10^7")
    if not 1 <= args.samples <= 100_000:
        sys.exit(f"--samples {args.samples}: expected 1 to 100000")

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
    decay = config.get("ema_decay")
    ema = Ema(g, decay) if decay else None
    target = config.get("ada_target")
    ada = AdaptiveStrength(target, batch) if target else None
    flips = bool(config.get("flip_and_turn"))
    if not config.get("diff_augment"):
        view = lambda x: x
    elif ada:
        view = lambda x: diff_augment(x, ada.p, flips)
    else:
        view = lambda x: diff_augment(x, 1.0, flips)

    os.makedirs(args.out, exist_ok=True)
    snapshots = []
    if args.snapshot_every:
        os.makedirs(os.path.join(args.out, "snapshots"), exist_ok=True)
    rows, started, paused, step = [], time.perf_counter(), 0.0, 0
    print(f"torch {torch.__version__} on {dev}: {n} images of {size}×{size}, {epochs} epochs × "
          f"{steps_per_epoch} steps of {batch}, EMA {decay}, DiffAugment {bool(config.get('diff_augment'))}"
          f"{f', adaptive (target {target})' if ada else ''}",
          flush=True)
    for epoch in range(epochs):
        order = torch.randperm(n, device=dev)
        for b in range(steps_per_epoch):
            real = images[order[b * batch:(b + 1) * batch]].float() / 127.5 - 1.0  # (B, 3, S, S) in [-1, 1]
            z = torch.randn(batch, latent, 1, 1, device=dev)
            fake = g(z)
            real_logits, fake_logits = d(view(real)).view(-1), d(view(fake.detach())).view(-1)
            d_loss = bce(real_logits, torch.full_like(real_logits, real_label)) + \
                bce(fake_logits, torch.zeros_like(fake_logits))
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            after = d(view(fake)).view(-1)
            if ada:  # after G's look, so all three looks of the step use the same p
                ada.observe(real_logits)
            g_loss = bce(after, torch.ones_like(after))
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if ema:
                ema.update(g)
            step += 1
            if args.snapshot_every and step % args.snapshot_every == 0:
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                pause = time.perf_counter()
                seconds = pause - started - paused
                write_npy_u8(os.path.join(args.out, "snapshots", f"step-{step:07}.npy"),
                             sample(ema.model if ema else g, args.samples, latent, dev))
                snapshots.append((step, step * batch / 1000, seconds))
                paused += time.perf_counter() - pause
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
    seconds = time.perf_counter() - started - paused

    metrics = torch.stack(rows).cpu().tolist()
    with open(os.path.join(args.out, "metrics.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["step", "d_loss", "g_loss", "d_real", "d_fake"])
        for i, r in enumerate(metrics):
            w.writerow([i + 1] + [f"{v:.6f}" for v in r])

    write_npy_u8(os.path.join(args.out, "samples.npy"), sample(ema.model if ema else g, args.samples, latent, dev))
    if snapshots:
        with open(os.path.join(args.out, "snapshots.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["step", "kimg", "train_seconds"])
            for step_at, kimg, secs in snapshots:
                w.writerow([step_at, f"{kimg:.3f}", f"{secs:.2f}"])

    summary = {
        "run_config": os.path.join(args.run, "config.json"),
        "images": n, "epochs": epochs, "steps": step, "batch_size": batch, "seed": seed,
        "ema_decay": decay, "diff_augment": bool(config.get("diff_augment")),
        "ada_target": target, "ada_p": ada.p if ada else None, "flip_and_turn": flips,
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

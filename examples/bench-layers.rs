//! Per-layer profile of the training step: forward and forward+backward time of every layer of
//! the classic DCGAN at 64×64 (the model of `bench-train` and `reference/bench/torch_dcgan.py`)
//! or of the laptop preset's 32×32 LogoGan (`--layers laptop`), for each convolution algorithm,
//! plus batch-norm and the activations. With `--gemms`, every matrix product of the layers
//! alone, on the CPU in each of the ways `ops::cpu_gemm` can run it. Where the step's time goes,
//! layer by layer, before and after a change.
//!
//! On the CPU it is also a roofline: it measures the machine's peak (a loop of independent fused
//! multiply-adds on every thread, on the SIMD path the engine takes) and gives every layer and
//! every product its GFLOP/s and share of that peak. With `--pytorch FILE` (written by
//! `reference/pytorch-dcgan/gemm_rates.py --json FILE` for the same layers and batch) each row
//! also shows PyTorch's rate for the same convolution or product, and candle ÷ PyTorch.
//!
//! ```sh
//! cargo run --release --example bench-layers -- --device cpu --batch 32 --gemms
//! cargo run --release --example bench-layers -- --device cpu --layers laptop --batch 64 --gemms
//! python3 scripts/roofline.py --python .venv-torch/bin/python   # both, for the book
//! ```

use std::time::Instant;

use anyhow::Result;
use candle_core::{DType, Device, Module, ModuleT, Tensor, Var};
use clap::Parser;
use logogan::cli::DeviceArg;
use logogan::device::describe;
use logogan::model::layers::{batch_norm, Conv, Direction};
use logogan::model::ConvAlgorithm;
use logogan::ops::cpu_gemm::{self, MatRef, Strategy};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Time every layer of the DCGAN step, forward and forward+backward.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    device: DeviceArg,
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Timed repetitions per measurement (after two untimed ones).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Convolution algorithms, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "gemm,candle")]
    conv: Vec<ConvAlgorithm>,
    /// Also time the GEMMs of the convolution layers on their own (the matrix products the GEMM
    /// path runs, with its operand layouts), in GFLOP/s: how fast the matrix library is at the
    /// step's shapes, on the CPU in each way `ops::cpu_gemm` can run them.
    /// `reference/pytorch-dcgan/gemm_rates.py` times the DCGAN's list in PyTorch.
    #[arg(long)]
    gemms: bool,
    /// Whose layers: the DCGAN at 64×64, or the laptop preset's LogoGan at 32×32.
    #[arg(long, value_enum, default_value_t = Layers::Dcgan)]
    layers: Layers,
    /// PyTorch's times for the same layers and batch, as written by
    /// `reference/pytorch-dcgan/gemm_rates.py --layers L --batch B --json FILE`.
    #[arg(long, value_name = "FILE")]
    pytorch: Option<std::path::PathBuf>,
}

/// PyTorch's side of the roofline: milliseconds per convolution (forward; forward and backward)
/// and per matrix product, keyed by the names this tool prints.
#[derive(serde::Deserialize)]
struct PytorchTimes {
    torch: String,
    device: String,
    threads: usize,
    batch: usize,
    layers: String,
    /// "conv 3→64 from 64×64" (the layer and its input's side) → [forward ms, forward+backward
    /// ms].
    convs: std::collections::HashMap<String, [f64; 2]>,
    /// "conv 3→64 from 64×64 | forward  W·P" → ms.
    gemms: std::collections::HashMap<String, f64>,
}

impl PytorchTimes {
    /// Read `path` and check it was measured for the same layers and batch.
    fn read(path: &std::path::Path, layers: Layers, batch: usize) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("--pytorch {}: {e}", path.display()))?;
        let times: Self = serde_json::from_str(&text).map_err(|e| {
            anyhow::anyhow!(
                "--pytorch {}: not the JSON gemm_rates.py writes ({e})",
                path.display()
            )
        })?;
        let wanted = format!("{layers:?}").to_lowercase();
        let threads = rayon::current_num_threads();
        anyhow::ensure!(
            times.device == "cpu" && times.threads == threads,
            "--pytorch {}: PyTorch ran on {} with {} threads, candle runs on the CPU with {threads}; \
             rerun gemm_rates.py with --device cpu --threads {threads} (or set RAYON_NUM_THREADS)",
            path.display(),
            times.device,
            times.threads
        );
        anyhow::ensure!(
            times.layers == wanted && times.batch == batch,
            "--pytorch {}: measured for --layers {} --batch {}, not --layers {wanted} --batch {batch}; \
             rerun gemm_rates.py with these",
            path.display(),
            times.layers,
            times.batch
        );
        Ok(times)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Layers {
    Dcgan,
    Laptop,
}

/// A convolution layer: (direction, in channels, out channels, input side, stride, padding).
type Layer = (Direction, usize, usize, usize, usize, usize);

/// The DCGAN's layers at 64×64.
const DCGAN: [Layer; 10] = [
    (Direction::Up, 100, 512, 1, 1, 0),
    (Direction::Up, 512, 256, 4, 2, 1),
    (Direction::Up, 256, 128, 8, 2, 1),
    (Direction::Up, 128, 64, 16, 2, 1),
    (Direction::Up, 64, 3, 32, 2, 1),
    (Direction::Down, 3, 64, 64, 2, 1),
    (Direction::Down, 64, 128, 32, 2, 1),
    (Direction::Down, 128, 256, 16, 2, 1),
    (Direction::Down, 256, 512, 8, 2, 1),
    (Direction::Down, 512, 1, 4, 1, 0),
];

/// The laptop preset's layers (`TrainConfig::preset(Preset::Laptop, Architecture::Logogan)`):
/// a generator of 16 base filters and a discriminator of a constant 32, at 32×32.
const LAPTOP: [Layer; 8] = [
    (Direction::Up, 100, 64, 1, 1, 0),
    (Direction::Up, 64, 32, 4, 2, 1),
    (Direction::Up, 32, 16, 8, 2, 1),
    (Direction::Up, 16, 3, 16, 2, 1),
    (Direction::Down, 3, 32, 32, 2, 1),
    (Direction::Down, 32, 32, 16, 2, 1),
    (Direction::Down, 32, 32, 8, 2, 1),
    (Direction::Down, 32, 1, 4, 1, 0),
];

/// The three matrix products of a layer on the GEMM path, as (name, m, n, k, lhs read
/// transposed, rhs read transposed): forward, weight gradient, input gradient.
fn layer_gemms(
    direction: Direction,
    (cin, cout, side, stride, padding): (usize, usize, usize, usize, usize),
    batch: usize,
) -> [(&'static str, usize, usize, usize, bool, bool); 3] {
    let out_side = match direction {
        Direction::Down => (side + 2 * padding - 4) / stride + 1,
        Direction::Up => (side - 1) * stride + 4 - 2 * padding,
    };
    match direction {
        // W (O, C·16) × patches (C·16, B·Ho·Wo).
        Direction::Down => {
            let (k, n) = (cin * 16, batch * out_side * out_side);
            [
                ("forward  W·P", cout, n, k, false, false),
                ("weight   G·Pᵀ", cout, k, n, false, true),
                ("input    Wᵀ·G", k, n, cout, true, false),
            ]
        }
        // Wᵀ (Cout·16, Cin) × x (Cin, B·H·W), then col2im.
        Direction::Up => {
            let (r, n) = (cout * 16, batch * side * side);
            [
                ("forward  Wᵀ·X", r, n, cin, true, false),
                ("weight   X·Gᵀ", cin, r, n, false, true),
                ("input    W·G", cin, n, r, false, false),
            ]
        }
    }
}

/// Time each layer's GEMMs alone and print a table with GFLOP/s: on the CPU each way
/// `cpu_gemm` can run the product (the one its rule picks marked), elsewhere candle's matmul.
fn gemm_table(
    device: &Device,
    layers: &[Layer],
    batch: usize,
    reps: usize,
    roof: &Roof,
) -> Result<()> {
    let cpu = device.is_cpu();
    if cpu {
        println!(
            "\n| layer | GEMM | m × n × k | plain ms | split-K ms | split-K transposed ms | chosen | GFLOP/s | of peak{} |\n|---|---|---|---:|---:|---:|---|---:|---:|{}",
            roof.torch_header(),
            roof.torch_rule()
        );
    } else {
        println!("\n| layer | GEMM | m × n × k | ms | GFLOP/s |\n|---|---|---|---:|---:|");
    }
    let (mut flops, mut ms, mut torch_ms) = (0.0, 0.0, 0.0);
    for &(direction, cin, cout, side, stride, padding) in layers {
        for (name, m, n, k, lhs_t, rhs_t) in
            layer_gemms(direction, (cin, cout, side, stride, padding), batch)
        {
            // An operand read transposed is the transposed view of a contiguous matrix.
            let operand = |rows: usize, cols: usize, transposed: bool| -> Result<Tensor> {
                Ok(if transposed {
                    Tensor::randn(0f32, 1.0, (cols, rows), device)?.t()?
                } else {
                    Tensor::randn(0f32, 1.0, (rows, cols), device)?
                })
            };
            let (a, b) = (operand(m, k, lhs_t)?, operand(k, n, rhs_t)?);
            let f = 2.0 * (m * n * k) as f64;
            let layer = match direction {
                Direction::Down => format!("conv {cin}→{cout}"),
                Direction::Up => format!("convT {cin}→{cout}"),
            };
            if !cpu {
                let t = time(device, reps, || {
                    a.matmul(&b)?;
                    Ok(())
                })?;
                (flops, ms) = (flops + f, ms + t);
                println!(
                    "| {layer} | {name} | {m} × {n} × {k} | {t:.2} | {:.0} |",
                    f / t / 1e6
                );
                continue;
            }
            // The operands' values, laid out as the engine's: row-major, or column-major where
            // the engine reads a transposed view.
            let (a, b) = (
                a.flatten_all()?.to_vec1::<f32>()?,
                b.flatten_all()?.to_vec1::<f32>()?,
            );
            let a = MatRef {
                data: &a,
                row_stride: if lhs_t { 1 } else { k },
                col_stride: if lhs_t { m } else { 1 },
            };
            let b = MatRef {
                data: &b,
                row_stride: if rhs_t { 1 } else { n },
                col_stride: if rhs_t { k } else { 1 },
            };
            let ways = [
                Strategy::Plain,
                Strategy::SplitK,
                Strategy::SplitKTransposed,
            ];
            let times = ways
                .iter()
                .map(|&how| {
                    time(device, reps, || {
                        cpu_gemm::matmul_with(a, b, (m, n, k), how);
                        Ok(())
                    })
                })
                .collect::<Result<Vec<f64>>>()?;
            let chosen = cpu_gemm::strategy(m, n, k, b.row_stride == 1);
            let t = times[ways.iter().position(|&w| w == chosen).unwrap_or(0)];
            (flops, ms) = (flops + f, ms + t);
            let torch = roof.torch_gemm(&format!("{layer} from {side}×{side} | {name}"))?;
            torch_ms += torch.unwrap_or(0.0);
            println!(
                "| {layer} | {name} | {m} × {n} × {k} | {:.2} | {:.2} | {:.2} | {chosen:?} | {:.0} | {}{} |",
                times[0],
                times[1],
                times[2],
                f / t / 1e6,
                roof.share(f, t),
                roof.torch_cells(f, t, torch)
            );
        }
    }
    if cpu {
        println!(
            "| all | | {:.2} GFLOP | | | {ms:.2} ms (chosen ways) | | {:.0} | {}{} |",
            flops / 1e9,
            flops / ms / 1e6,
            roof.share(flops, ms),
            roof.torch_cells(flops, ms, roof.pytorch.as_ref().map(|_| torch_ms))
        );
    } else {
        println!(
            "| all | | {:.2} GFLOP | {ms:.2} ms | {:.0} |",
            flops / 1e9,
            flops / ms / 1e6
        );
    }
    Ok(())
}

/// What each row is measured against: the machine's FMA peak (on the CPU) and PyTorch's times.
struct Roof {
    /// GFLOP/s of the FMA loop on every thread; `None` on a GPU.
    peak: Option<f64>,
    pytorch: Option<PytorchTimes>,
}

impl Roof {
    /// `flops` in `ms` as a share of the peak ("62 %"), or "" without a peak.
    fn share(&self, flops: f64, ms: f64) -> String {
        self.peak
            .map(|peak| format!("{:.0} %", 100.0 * flops / ms / 1e6 / peak))
            .unwrap_or_default()
    }

    fn torch_header(&self) -> &'static str {
        if self.pytorch.is_some() {
            " | PyTorch ms | PyTorch GFLOP/s | × PyTorch"
        } else {
            ""
        }
    }

    fn torch_rule(&self) -> &'static str {
        if self.pytorch.is_some() {
            "---:|---:|---:|"
        } else {
            ""
        }
    }

    /// PyTorch's ms for a product, `Err` if its file lacks a row this tool times.
    fn torch_gemm(&self, key: &str) -> Result<Option<f64>> {
        let Some(times) = &self.pytorch else {
            return Ok(None);
        };
        match times.gemms.get(key) {
            Some(&ms) => Ok(Some(ms)),
            None => anyhow::bail!("--pytorch: no product {key:?} in the file"),
        }
    }

    /// The PyTorch cells of a row whose candle time is `ms`: its time, rate, and candle's
    /// speed over it (above 1: candle is faster).
    fn torch_cells(&self, flops: f64, ms: f64, torch_ms: Option<f64>) -> String {
        match torch_ms {
            Some(t) => format!(" | {t:.2} | {:.0} | {:.2}", flops / t / 1e6, t / ms),
            None => String::new(),
        }
    }
}

/// GFLOP/s of fused multiply-adds on every thread at once, on the widest SIMD path the engine
/// takes here (`LOGOGAN_SIMD` caps it, as it caps the matrix products): the roof the products
/// are measured against. Twelve independent accumulators per thread, more than an FMA unit's
/// latency × throughput (4 cycles × 2 units), so the loop is bound by the units, not by waiting.
fn fma_peak() -> f64 {
    const CHAINS: usize = 12;
    /// 64 M rounds: about a third of a second per thread with AVX-512, long enough for the
    /// cores to settle at the clock they keep under load (a short burst reads their boost).
    const ROUNDS: usize = 1 << 26;
    /// ARM cores have up to 4 FMA pipes of 4 cycles: more chains to keep them all busy.
    const NEON_CHAINS: usize = 16;
    /// The portable path has no FMA: a multiply and an add on 4 lanes, SSE's, which every
    /// x86-64 has. (The vendored GEMM's portable kernel is scalar, so its products stay far
    /// below this roof; the roof is the machine's, not the kernel's.)
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "sse2")]
    fn portable() -> f32 {
        use std::arch::x86_64::*;
        let mut acc: [__m128; CHAINS] = std::array::from_fn(|i| _mm_set1_ps(1.0 + i as f32 * 1e-3));
        let a = _mm_set1_ps(std::hint::black_box(0.999_999));
        let b = _mm_set1_ps(std::hint::black_box(1e-7));
        for _ in 0..ROUNDS {
            for x in acc.iter_mut() {
                *x = _mm_add_ps(_mm_mul_ps(*x, a), b);
            }
        }
        let mut lanes = [0f32; 4];
        let sum = acc.iter().fold(_mm_setzero_ps(), |s, &x| _mm_add_ps(s, x));
        // SAFETY: `lanes` holds 4 floats, the width of one 128-bit vector.
        unsafe { _mm_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }
    // ARM's NEON: fused, 4 lanes; 16 chains, as its cores have up to 4 FMA pipes of 4 cycles.
    #[cfg(target_arch = "aarch64")]
    fn portable() -> f32 {
        use std::arch::aarch64::*;
        // SAFETY: NEON is part of aarch64.
        unsafe {
            let mut acc: [float32x4_t; NEON_CHAINS] =
                std::array::from_fn(|i| vdupq_n_f32(1.0 + i as f32 * 1e-3));
            let a = vdupq_n_f32(std::hint::black_box(0.999_999));
            let b = vdupq_n_f32(std::hint::black_box(1e-7));
            for _ in 0..ROUNDS {
                for x in acc.iter_mut() {
                    *x = vfmaq_f32(b, *x, a);
                }
            }
            acc.iter().map(|&x| vaddvq_f32(x)).sum()
        }
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    fn portable() -> f32 {
        let mut acc: [[f32; 4]; CHAINS] = std::array::from_fn(|i| [1.0 + i as f32 * 1e-3; 4]);
        let (a, b) = (
            std::hint::black_box(0.999_999f32),
            std::hint::black_box(1e-7f32),
        );
        for _ in 0..ROUNDS {
            for lane in acc.iter_mut() {
                for x in lane.iter_mut() {
                    *x = *x * a + b;
                }
            }
        }
        acc.iter().flatten().sum()
    }
    // `ROUNDS` × `CHAINS` vector FMAs, written with the intrinsics so that the loop is exactly
    // the instruction measured; returns a lane of the result so that it cannot be dropped.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx512f")]
    fn avx512() -> f32 {
        use std::arch::x86_64::*;
        // Each chain from its own value, so that no optimiser may merge equal chains.
        let mut acc: [__m512; CHAINS] =
            std::array::from_fn(|i| _mm512_set1_ps(1.0 + i as f32 * 1e-3));
        let a = _mm512_set1_ps(std::hint::black_box(0.999_999));
        let b = _mm512_set1_ps(std::hint::black_box(1e-7));
        for _ in 0..ROUNDS {
            for x in acc.iter_mut() {
                *x = _mm512_fmadd_ps(*x, a, b);
            }
        }
        acc.iter().map(|&x| _mm512_reduce_add_ps(x)).sum()
    }
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    fn avx2() -> f32 {
        use std::arch::x86_64::*;
        let mut acc: [__m256; CHAINS] =
            std::array::from_fn(|i| _mm256_set1_ps(1.0 + i as f32 * 1e-3));
        let a = _mm256_set1_ps(std::hint::black_box(0.999_999));
        let b = _mm256_set1_ps(std::hint::black_box(1e-7));
        for _ in 0..ROUNDS {
            for x in acc.iter_mut() {
                *x = _mm256_fmadd_ps(*x, a, b);
            }
        }
        let mut lanes = [0f32; 8];
        let sum = acc
            .iter()
            .fold(_mm256_setzero_ps(), |s, &x| _mm256_add_ps(s, x));
        // SAFETY: `lanes` holds 8 floats, the width of one 256-bit vector.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), sum) };
        lanes.iter().sum()
    }
    let lanes = match cpu_gemm::simd_path() {
        "AVX-512" => 16,
        "AVX2" => 8,
        _ => 4,
    };
    let chains = if cfg!(target_arch = "aarch64") {
        NEON_CHAINS
    } else {
        CHAINS
    };
    // Each thread runs the loop at the same time; the slowest sets the time.
    let start = Instant::now();
    let sums = rayon::broadcast(|_| match cpu_gemm::simd_path() {
        // SAFETY: `simd_path` names a path only where the CPU has its features.
        #[cfg(target_arch = "x86_64")]
        "AVX-512" => unsafe { avx512() },
        #[cfg(target_arch = "x86_64")]
        "AVX2" => unsafe { avx2() },
        // SAFETY: SSE2 is part of x86-64; elsewhere `portable` is plain Rust.
        #[allow(unused_unsafe)]
        _ => unsafe { portable() },
    });
    let seconds = start.elapsed().as_secs_f64();
    std::hint::black_box(&sums);
    // Every round of every chain is `lanes` × 2 FLOP (a multiply and an add, fused or not).
    (sums.len() * ROUNDS * chains * lanes * 2) as f64 / seconds / 1e9
}

/// PyTorch's forward and forward+backward ms for a layer, and candle's speed over each.
fn conv_torch_cells(torch: Option<(f64, f64)>, f: f64, fb: f64) -> String {
    match torch {
        Some((tf, tfb)) => format!(" | {tf:.2} | {tfb:.2} | {:.2} | {:.2}", tf / f, tfb / fb),
        None => String::new(),
    }
}

/// Milliseconds per call of `f`, device synchronised.
fn time(device: &Device, reps: usize, mut f: impl FnMut() -> Result<()>) -> Result<f64> {
    for _ in 0..2 {
        f()?;
    }
    device.synchronize()?;
    let start = Instant::now();
    for _ in 0..reps {
        f()?;
    }
    device.synchronize()?;
    Ok(start.elapsed().as_secs_f64() * 1e3 / reps as f64)
}

/// Forward, and forward + backward of `sum(f(x) · r)` with respect to `x` and the layer's weights.
fn fwd_bwd(
    device: &Device,
    reps: usize,
    x: &Var,
    f: &dyn Fn(&Tensor) -> candle_core::Result<Tensor>,
) -> Result<(f64, f64)> {
    let r = Tensor::randn(0f32, 1.0, f(x.as_tensor())?.shape(), device)?;
    let fwd = time(device, reps, || {
        f(x.as_tensor())?;
        Ok(())
    })?;
    let both = time(device, reps, || {
        (f(x.as_tensor())? * &r)?.sum_all()?.backward()?;
        Ok(())
    })?;
    Ok((fwd, both))
}

fn main() -> Result<()> {
    logogan::ops::allocator::tune_for_tensors();
    let args = Args::parse();
    let device = args.device.open()?;
    let (b, reps) = (args.batch, args.reps);
    println!(
        "device {} · batch {b} · {reps} timed repetitions",
        describe(&device)
    );
    let pytorch = match &args.pytorch {
        Some(path) => Some(PytorchTimes::read(path, args.layers, b)?),
        None => None,
    };
    let roof = Roof {
        // The best of three: the first run also wakes the cores up.
        peak: device
            .is_cpu()
            .then(|| (0..3).map(|_| fma_peak()).fold(0.0, f64::max)),
        pytorch,
    };
    if let Some(peak) = roof.peak {
        println!(
            "FMA peak: {peak:.0} GFLOP/s ({} threads, {} multiply-adds)",
            rayon::current_num_threads(),
            cpu_gemm::simd_path()
        );
    }
    if let Some(t) = &roof.pytorch {
        println!(
            "PyTorch {} ({} threads): {}",
            t.torch,
            t.threads,
            args.pytorch
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        );
    }
    println!(
        "\n| layer | output | conv | forward ms | forward GFLOP/s | of peak | forward+backward ms | forward+backward GFLOP/s | of peak{} |\n|---|---|---|---:|---:|---:|---:|---:|---:|{}",
        if roof.pytorch.is_some() {
            " | PyTorch forward ms | PyTorch forward+backward ms | × PyTorch forward | × PyTorch forward+backward"
        } else {
            ""
        },
        if roof.pytorch.is_some() { "---:|---:|---:|---:|" } else { "" }
    );
    let layers: &[Layer] = match args.layers {
        Layers::Dcgan => &DCGAN,
        Layers::Laptop => &LAPTOP,
    };
    let mut totals = vec![(0.0, 0.0); args.conv.len()];
    let (mut all_flops, mut torch_totals) = (0.0, (0.0, 0.0));
    for &(direction, cin, cout, side, stride, padding) in layers {
        // The layer's FLOP: its forward product, and all three (the two gradients too) for
        // forward+backward, as the GEMM table counts them. The three have the same m·n·k, so
        // a step is three forwards (the "all convolutions" row uses that).
        let gemms = layer_gemms(direction, (cin, cout, side, stride, padding), b);
        let forward_flops = 2.0 * (gemms[0].1 * gemms[0].2 * gemms[0].3) as f64;
        let step_flops: f64 = gemms.iter().map(|g| 2.0 * (g.1 * g.2 * g.3) as f64).sum();
        all_flops += forward_flops;
        let name = match direction {
            Direction::Down => "conv",
            Direction::Up => "convT",
        };
        let torch = match &roof.pytorch {
            Some(t) => match t
                .convs
                .get(&format!("{name} {cin}→{cout} from {side}×{side}"))
            {
                Some(&[f, fb]) => Some((f, fb)),
                None => anyhow::bail!(
                    "--pytorch: no layer \"{name} {cin}→{cout} from {side}×{side}\" in the file"
                ),
            },
            None => None,
        };
        if let Some((f, fb)) = torch {
            torch_totals = (torch_totals.0 + f, torch_totals.1 + fb);
        }
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, cin, side, side), &device)?)?;
        let shape = match direction {
            Direction::Down => (cout, cin, 4, 4),
            Direction::Up => (cin, cout, 4, 4),
        };
        let weight = Var::from_tensor(&Tensor::randn(0f32, 0.02, shape, &device)?)?;
        for (i, &algorithm) in args.conv.iter().enumerate() {
            let conv = Conv {
                direction,
                weight: weight.as_tensor().clone(),
                stride,
                padding,
                algorithm,
            };
            let out = conv.forward(x.as_tensor())?.dims().to_vec();
            let (f, fb) = fwd_bwd(&device, reps, &x, &|x| conv.forward(x))?;
            totals[i].0 += f;
            totals[i].1 += fb;
            println!(
                "| {name} {cin}→{cout} s{stride} | {}×{}×{} | {algorithm:?} | {f:.2} | {:.0} | {} | {fb:.2} | {:.0} | {}{} |",
                out[1],
                out[2],
                out[3],
                forward_flops / f / 1e6,
                roof.share(forward_flops, f),
                step_flops / fb / 1e6,
                roof.share(step_flops, fb),
                conv_torch_cells(torch, f, fb)
            );
        }
    }
    let torch_all = roof.pytorch.as_ref().map(|_| torch_totals);
    for (i, algorithm) in args.conv.iter().enumerate() {
        let (f, fb) = totals[i];
        println!(
            "| all convolutions | | {algorithm:?} | {f:.2} | {:.0} | {} | {fb:.2} | {:.0} | {}{} |",
            all_flops / f / 1e6,
            roof.share(all_flops, f),
            3.0 * all_flops / fb / 1e6,
            roof.share(3.0 * all_flops, fb),
            conv_torch_cells(torch_all, f, fb)
        );
    }

    // Batch-norm (training mode) and the activations, at the generator's and D's map sizes.
    let varmap = candle_nn::VarMap::new();
    let vb = candle_nn::VarBuilder::from_varmap(&varmap, DType::F32, &device);
    // The maps that batch-norm sees: every hidden layer's output (G's, then D's).
    let maps: Vec<(usize, usize)> = layers
        .iter()
        .map(
            |&(direction, _, cout, side, stride, padding)| match direction {
                Direction::Up => (cout, (side - 1) * stride + 4 - 2 * padding),
                Direction::Down => (cout, (side + 2 * padding - 4) / stride + 1),
            },
        )
        .filter(|&(c, side)| c > 3 && side > 1)
        .collect();
    // Their own table: these layers do too little arithmetic for a roofline.
    println!("\n| layer | map | forward ms | forward+backward ms |\n|---|---|---:|---:|");
    for (c, side) in maps {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, c, side, side), &device)?)?;
        let bn = batch_norm(c, vb.pp(format!("bn{c}")))?;
        let (f, fb) = fwd_bwd(&device, reps, &x, &|x| bn.forward_t(x, true))?;
        println!("| batch-norm | {c}×{side}×{side} | {f:.2} | {fb:.2} |");
        let (f, fb) = fwd_bwd(&device, reps, &x, &|x| x.relu())?;
        println!("| ReLU | {c}×{side}×{side} | {f:.2} | {fb:.2} |");
        let (f, fb) = fwd_bwd(&device, reps, &x, &|x| candle_nn::ops::leaky_relu(x, 0.2))?;
        println!("| LeakyReLU 0.2 | {c}×{side}×{side} | {f:.2} | {fb:.2} |");
    }
    if args.gemms {
        gemm_table(&device, layers, b, reps, &roof)?;
    }
    Ok(())
}

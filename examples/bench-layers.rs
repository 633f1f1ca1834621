//! Per-layer profile of the training step: forward and forward+backward time of every layer of
//! the classic DCGAN at 64×64 (the model of `bench-train` and `reference/bench/torch_dcgan.py`)
//! or of the laptop preset's 32×32 LogoGan (`--layers laptop`), for each convolution algorithm,
//! plus batch-norm and the activations. With `--gemms`, every matrix product of the layers
//! alone, on the CPU in each of the ways `ops::cpu_gemm` can run it. Where the step's time goes,
//! layer by layer, before and after a change.
//!
//! ```sh
//! cargo run --release --example bench-layers -- --device cpu --batch 32 --gemms
//! cargo run --release --example bench-layers -- --device cpu --layers laptop --batch 64 --gemms
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
fn gemm_table(device: &Device, layers: &[Layer], batch: usize, reps: usize) -> Result<()> {
    let cpu = device.is_cpu();
    if cpu {
        println!("\n| layer | GEMM | m × n × k | plain ms | split-K ms | split-K transposed ms | chosen | GFLOP/s |\n|---|---|---|---:|---:|---:|---|---:|");
    } else {
        println!("\n| layer | GEMM | m × n × k | ms | GFLOP/s |\n|---|---|---|---:|---:|");
    }
    let (mut flops, mut ms) = (0.0, 0.0);
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
            println!(
                "| {layer} | {name} | {m} × {n} × {k} | {:.2} | {:.2} | {:.2} | {chosen:?} | {:.0} |",
                times[0],
                times[1],
                times[2],
                f / t / 1e6
            );
        }
    }
    println!(
        "| all | | {:.2} GFLOP | {ms:.2} ms{} | {:.0} |",
        flops / 1e9,
        if cpu { " (chosen ways)" } else { "" },
        flops / ms / 1e6
    );
    Ok(())
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
        "device {} · batch {b} · {reps} timed repetitions\n",
        describe(&device)
    );
    println!(
        "| layer | output | conv | forward ms | forward+backward ms |\n|---|---|---|---:|---:|"
    );
    let layers: &[Layer] = match args.layers {
        Layers::Dcgan => &DCGAN,
        Layers::Laptop => &LAPTOP,
    };
    let mut totals = vec![(0.0, 0.0); args.conv.len()];
    for &(direction, cin, cout, side, stride, padding) in layers {
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
            let name = match direction {
                Direction::Down => "conv",
                Direction::Up => "convT",
            };
            println!(
                "| {name} {cin}→{cout} s{stride} | {}×{}×{} | {algorithm:?} | {f:.2} | {fb:.2} |",
                out[1], out[2], out[3]
            );
        }
    }
    for (i, algorithm) in args.conv.iter().enumerate() {
        println!(
            "| all convolutions | | {algorithm:?} | {:.2} | {:.2} |",
            totals[i].0, totals[i].1
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
    for (c, side) in maps {
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, c, side, side), &device)?)?;
        let bn = batch_norm(c, vb.pp(format!("bn{c}")))?;
        let (f, fb) = fwd_bwd(&device, reps, &x, &|x| bn.forward_t(x, true))?;
        println!("| batch-norm | {c}×{side}×{side} | | {f:.2} | {fb:.2} |");
        let (f, fb) = fwd_bwd(&device, reps, &x, &|x| x.relu())?;
        println!("| ReLU | {c}×{side}×{side} | | {f:.2} | {fb:.2} |");
        let (f, fb) = fwd_bwd(&device, reps, &x, &|x| candle_nn::ops::leaky_relu(x, 0.2))?;
        println!("| LeakyReLU 0.2 | {c}×{side}×{side} | | {f:.2} | {fb:.2} |");
    }
    if args.gemms {
        gemm_table(&device, layers, b, reps)?;
    }
    Ok(())
}

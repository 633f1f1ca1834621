//! Time the real training step of this project's GAN, after warm-up, with the device
//! synchronised, and print a table: img/s, ms/step, peak memory.
//!
//! The model and the step match `reference/bench/torch_dcgan.py` (the PyTorch reference): the
//! classic DCGAN at 64×64, nz 100, ngf = ndf = 64, one D step on a real and a fake batch, one G
//! step, Adam(2e-4, 0.5, 0.999), BCE with logits, fp32, random "real" images in [-1, 1]. Run both
//! in one command to compare on one machine:
//!
//! ```sh
//! cargo run --release --example bench-train -- --device cpu --batch 32,128
//! python3 reference/bench/torch_dcgan.py cpu 2
//! ```

use std::time::Instant;

use anyhow::Result;
use candle_core::{DType, Tensor};
use clap::Parser;
use logogan::cli::DeviceArg;
use logogan::device::describe;
use logogan::model::latent_noise;
use logogan::model::{Architecture, ConvAlgorithm, ModelConfig};
use logogan::train::{GanStep, Preset, TrainConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Benchmark the training step: img/s, ms/step and peak memory for each batch size.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    device: DeviceArg,
    /// Batch sizes, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "64,128,512")]
    batch: Vec<usize>,
    /// Timed steps per batch size.
    #[arg(long, default_value_t = 20)]
    steps: usize,
    /// Untimed steps first (allocations, kernel loading, caches).
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Network design: dcgan (as the PyTorch reference) or logogan.
    #[arg(long, value_enum, default_value_t = Architecture::Dcgan)]
    model: Architecture,
    /// Image size.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Time a course preset's model instead (e.g. `quick`: chapter 5's 32×32 model with few
    /// filters, the one a reader trains on a laptop CPU); `--model` picks the design, `--size`
    /// is then the preset's.
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Convolution algorithms to time, comma-separated: gemm (the course's default), candle.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "gemm,candle")]
    conv: Vec<ConvAlgorithm>,
}

/// Peak resident memory of this process since the last reset, in bytes (Linux), resetting it.
fn take_peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: u64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    // Writing 5 to clear_refs resets the high-water mark for the next measurement.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    Some(kib * 1024)
}

fn main() -> Result<()> {
    logogan::ops::allocator::tune_for_tensors();
    // Steps run on a rayon worker thread, as chapter 5's training does.
    logogan::ops::on_worker_thread(bench)
}

fn bench() -> Result<()> {
    let args = Args::parse();
    let device = args.device.open()?;
    let mut config = TrainConfig::preset(args.preset.unwrap_or(Preset::Default), args.model);
    if args.preset.is_none() {
        config.model = ModelConfig::new(args.model, args.size);
    }
    config.validate()?;
    let base = config.clone();
    let size = config.image_size();
    println!(
        "device {} · model {:?}{} {size}×{size} · {} warm-up + {} timed steps",
        describe(&device),
        args.model,
        args.preset
            .map(|p| format!(" (preset {p:?})").to_lowercase())
            .unwrap_or_default(),
        args.warmup,
        args.steps
    );
    println!("\n| device | conv | batch | ms/step | img/s | memory (CPU: peak RSS; GPU: in use) |\n|---|---|---:|---:|---:|---:|");
    take_peak_rss();
    let runs = args
        .conv
        .iter()
        .flat_map(|&conv| args.batch.iter().map(move |&batch| (conv, batch)));
    for (conv, batch) in runs {
        let config = TrainConfig {
            model: base.model.clone().with_conv(conv),
            ..base.clone()
        };
        let mut step = GanStep::new(&config, &device)?;
        let real = Tensor::rand(-1f32, 1f32, (batch, 3, size, size), &device)?;
        let noise: Vec<Tensor> = (0..args.warmup + args.steps)
            .map(|i| {
                latent_noise(
                    1,
                    i as u64,
                    batch,
                    config.model.generator.latent_dim,
                    &device,
                )
            })
            .collect::<logogan::Result<_>>()?;
        let mut last = None;
        for z in &noise[..args.warmup] {
            last = Some(step.step(&real, z)?);
        }
        device.synchronize()?;
        let start = Instant::now();
        for z in &noise[args.warmup..] {
            last = Some(step.step(&real, z)?);
        }
        device.synchronize()?;
        let seconds = start.elapsed().as_secs_f64();
        let d_loss = last
            .map(|stats| stats.d_loss.to_dtype(DType::F32)?.to_scalar::<f32>())
            .transpose()?;
        let memory = logogan::ops::gpu_memory_used(&device)
            .or_else(take_peak_rss)
            .map_or("?".into(), |b| format!("{:.0} MiB", b as f64 / 1048576.0));
        println!(
            "| {} | {conv:?} | {batch} | {:.1} | {:.1} | {memory} |",
            describe(&device),
            1e3 * seconds / args.steps as f64,
            (args.steps * batch) as f64 / seconds,
        );
        if d_loss.is_some_and(|l| !l.is_finite()) {
            anyhow::bail!("the D loss is not finite: the step is broken");
        }
    }
    Ok(())
}

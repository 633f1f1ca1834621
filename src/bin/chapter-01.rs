//! Chapter 1 — Inspiration: what a GAN is up against. Real logos on the left, what an untrained
//! generator gives on the right, and a look at the machine we will train on.

use std::path::PathBuf;

use anyhow::Result;
use clap::Parser;
use logogan::cli::DataDirArg;
use logogan::data::pipeline::{ensure_dataset, sample_grid};
use logogan::environment::Environment;
use logogan::fsutil::save_png;
use logogan::model::{untrained_samples, ModelConfig};
use logogan::paths::{default_runs_dir, display_path};
use logogan::viz::{image_grid, side_by_side};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see logogan::cli::init

/// Show 64 real logos from the training set beside 64 images from an untrained generator, and
/// describe the compute environment (CPU, CUDA, cargo features). Builds the dataset first if it
/// is missing.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Image size of the dataset to show (32, 64 or 128).
    #[arg(long, default_value_t = 64)]
    size: u32,
    /// Seed of the sample of logos and of the untrained generator.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[command(flatten)]
    data: DataDirArg,
    /// Output folder. Default: <runs>/chapter-01.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    logogan::cli::init();
    let args = Args::parse();
    println!("{}\n", Environment::detect());
    let layout = args.data.layout();
    let train = ensure_dataset(&layout, args.size, true)?;
    let real = sample_grid(&train, 64, 8, args.seed)?;
    let config = ModelConfig::logogan(args.size as usize);
    let fakes = untrained_samples(&config, 64, args.seed, &candle_core::Device::Cpu)?;
    let figure = side_by_side(&real, &image_grid(&fakes, 8, 2), 24);
    let out = args
        .out
        .unwrap_or_else(|| default_runs_dir().join("chapter-01"));
    let path = out.join("real-vs-untrained.png");
    save_png(&path, &figure)?;
    println!("left: 64 real logos from {}", display_path(&train));
    println!("right: 64 images from an untrained generator: where training starts");
    println!("saved {}", display_path(&path));
    Ok(())
}

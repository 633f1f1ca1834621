//! Chapter 6 — Tuning: judging a trained run with numbers.
//!
//! `cargo run --release --bin chapter-06 -- score runs/<name>` generates samples from the run,
//! looks at them and at the real logos through a feature encoder trained on the real logos
//! (trained once and cached, versioned by a hash of its settings and data), and prints Fréchet
//! distance, KID, precision/recall and a memorisation check, each beside its real-vs-real floor.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::device::{describe, DeviceChoice};
use logogan::metrics::{score_run, ScoreConfig};
use logogan::paths::{display_path, DataLayout};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Score a trained run against the real logos.
    Score(ScoreArgs),
}

#[derive(clap::Args, Debug)]
struct ScoreArgs {
    /// The run folder (runs/<name>).
    run: PathBuf,
    /// Generated images to score (real images per half are capped at the same number).
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Size of the random subsets of the KID estimate.
    #[arg(long, default_value_t = 500)]
    kid_subset_size: usize,
    /// Epochs of the feature encoder's training (only when it is not cached yet).
    #[arg(long)]
    encoder_epochs: Option<usize>,
    /// Filters of the encoder's first layer.
    #[arg(long)]
    encoder_filters: Option<usize>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Data folder. Default: $LOGOGAN_DATA_DIR or the repository's data/.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

fn main() -> Result<()> {
    logogan::allocator::tune_for_tensors();
    match Cli::parse().command {
        Command::Score(args) => score(args),
    }
}

fn score(args: ScoreArgs) -> Result<()> {
    let device = args.device.open()?;
    let layout = args
        .data_dir
        .clone()
        .map(DataLayout::new)
        .unwrap_or_default();
    let mut config = ScoreConfig {
        samples: args.samples,
        kid_subset_size: args.kid_subset_size,
        seed: args.seed,
        ..ScoreConfig::default()
    };
    if let Some(e) = args.encoder_epochs {
        config.encoder.epochs = e;
    }
    if let Some(f) = args.encoder_filters {
        config.encoder.filters = f;
    }
    println!(
        "scoring {} on {}",
        display_path(&args.run),
        describe(&device)
    );
    let report = score_run(&args.run, &layout, &config, &device, &mut |epoch, loss| {
        println!(
            "feature encoder (first use): epoch {epoch}/{} reconstruction loss {loss:.4}",
            config.encoder.epochs
        );
    })?;
    println!("\n{}", report.table());
    println!(
        "written: {} and {}",
        display_path(&args.run.join("score.md")),
        display_path(&args.run.join("score.json"))
    );
    Ok(())
}

//! Chapter 6 — Tuning: judging a trained run with numbers.
//!
//! `cargo run --release --bin chapter-06 -- score runs/<name>` generates samples from the run,
//! looks at them and at the real logos through a feature encoder trained on the real logos
//! (trained once and cached, versioned by a hash of its settings and data), and prints Fréchet
//! distance, KID, precision/recall and a memorisation check, each beside its real-vs-real floor.
//! `chapter-06 -- sweep data/sweeps/stability.toml` trains, scores and ranks several short runs.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::device::{describe, DeviceChoice};
use logogan::metrics::{score_run, ScoreConfig};
use logogan::paths::{default_runs_dir, display_path, DataLayout};
use logogan::sweep::{results_table, run_sweep, sweep_dir, SweepFile};

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
    /// Run, score and rank the trials of a sweep file (TOML); resumable.
    Sweep(SweepArgs),
}

#[derive(clap::Args, Debug)]
struct SweepArgs {
    /// The sweep file, e.g. data/sweeps/stability.toml.
    file: PathBuf,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Runs folder. Default: $LOGOGAN_RUNS_DIR or the repository's runs/.
    #[arg(long)]
    runs_dir: Option<PathBuf>,
    /// Data folder. Default: $LOGOGAN_DATA_DIR or the repository's data/.
    #[arg(long)]
    data_dir: Option<PathBuf>,
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
        Command::Sweep(args) => sweep(args),
    }
}

fn sweep(args: SweepArgs) -> Result<()> {
    let device = args.device.open()?;
    let layout = args
        .data_dir
        .clone()
        .map(DataLayout::new)
        .unwrap_or_default();
    let runs = args.runs_dir.clone().unwrap_or_else(default_runs_dir);
    let file = SweepFile::load(&args.file)?;
    let trials = file.trials()?;
    println!(
        "sweep `{}`: {} trials on {} → {}",
        file.name,
        trials.len(),
        describe(&device),
        display_path(&sweep_dir(&runs, &file))
    );
    let results = run_sweep(&file, &runs, &layout, &device, &mut |line| {
        println!("{line}")
    })?;
    println!("\n{}", results_table(&results));
    println!(
        "written: results.md, results.csv, scores.png and one grid per trial in {}",
        display_path(&sweep_dir(&runs, &file))
    );
    Ok(())
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

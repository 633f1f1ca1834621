//! Chapter 6 — Tuning: judging a trained run with numbers.
//!
//! `cargo run --release --bin chapter-06 -- calibrate` proves the judge first: it scores sets
//! whose right order is known (held-out logos, blurred, noisy, washed-out logos, blobs, repeated
//! logos, copies) and checks the orderings. `score runs/<name>` generates samples from the run,
//! looks at them and at the real logos through a contrastive encoder trained on the train logos
//! (trained once and cached, versioned by a hash of its settings and data), and prints KID,
//! Fréchet distance, precision/recall, density/coverage, a two-sample test and a memorisation
//! check, each beside the held-out floor.
//! `chapter-06 -- sweep data/sweeps/stability.toml` trains, scores and ranks several short runs.
//! `score-images <file.npy>…` judges images made by another program (e.g. the PyTorch reference in
//! `reference/pytorch-dcgan`), `export-training-set` gives that program the exact images a run
//! trained on, and `export-samples` writes a run's samples in the same format (to judge a run's
//! snapshots over time side by side with the reference's).

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::cli::judge::{
    CalibrateArgs, ExportArgs, ExportSamplesArgs, ScoreArgs, ScoreImagesArgs, SweepArgs,
};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see logogan::cli::init

#[derive(Parser, Debug)]
#[command(version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Prove the judge: score sets whose right order is known and check every ordering.
    Calibrate(CalibrateArgs),
    /// Score a trained run against the real logos.
    Score(ScoreArgs),
    /// Run, score and rank the trials of a sweep file (TOML); resumable.
    Sweep(SweepArgs),
    /// Score images made by another program (a .npy of u8 (N, 3, S, S)), e.g. the PyTorch
    /// reference in reference/pytorch-dcgan; several files share one real side.
    ScoreImages(ScoreImagesArgs),
    /// Write the samples `score` would judge from a run's latest checkpoint as a .npy of u8
    /// (N, 3, S, S), e.g. to judge a run's snapshots over time with `score-images`.
    ExportSamples(ExportSamplesArgs),
    /// Write the exact images a run trained on as a .npy of u8 (N, 3, S, S), for the PyTorch
    /// reference to train on the same data.
    ExportTrainingSet(ExportArgs),
}

fn main() -> Result<()> {
    logogan::cli::init();
    Ok(match Cli::parse().command {
        Command::Calibrate(args) => args.run(),
        Command::Score(args) => args.run(),
        Command::Sweep(args) => args.run(),
        Command::ScoreImages(args) => args.run(),
        Command::ExportTrainingSet(args) => args.run(),
        Command::ExportSamples(args) => args.run(),
    }?)
}

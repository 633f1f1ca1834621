//! Chapter 6 — Tuning: judging a trained run with numbers.
//!
//! `cargo run --release --bin chapter-06 -- score runs/<name>` generates samples from the run,
//! looks at them and at the real logos through a feature encoder trained on the real logos
//! (trained once and cached, versioned by a hash of its settings and data), and prints Fréchet
//! distance, KID, precision/recall and a memorisation check, each beside its real-vs-real floor.
//! `chapter-06 -- sweep data/sweeps/stability.toml` trains, scores and ranks several short runs.
//! `score-images <file.npy>` judges images made by another program (e.g. the PyTorch reference in
//! `reference/pytorch-dcgan`), and `export-training-set` gives that program the exact images a run
//! trained on.

use std::path::PathBuf;

use anyhow::Result;
use candle_core::Device;
use clap::{Parser, Subcommand};
use logogan::device::{describe, DeviceChoice};
use logogan::metrics::{score_run, ScoreConfig};
use logogan::paths::{default_runs_dir, display_path, DataLayout};
use logogan::sweep::{results_table, run_sweep, sweep_dir, SweepFile};
use logogan::train::Trainer;

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
    /// Score images made by another program (a .npy of u8 (N, 3, S, S)), e.g. the PyTorch
    /// reference in reference/pytorch-dcgan.
    ScoreImages(ScoreImagesArgs),
    /// Write the exact images a run trained on as a .npy of u8 (N, 3, S, S), for the PyTorch
    /// reference to train on the same data.
    ExportTrainingSet(ExportArgs),
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// The run folder (runs/<name>); its config.json says which images it used.
    run: PathBuf,
    /// Where to write the .npy file.
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ScoreImagesArgs {
    /// The .npy file of images, u8 (N, 3, S, S).
    images: PathBuf,
    #[command(flatten)]
    scoring: ScoringArgs,
}

#[derive(clap::Args, Debug)]
struct SweepArgs {
    /// The sweep file, e.g. data/sweeps/stability.toml.
    file: PathBuf,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Trials trained at once (each on its own thread and, on a GPU, its own CUDA stream).
    /// Worth it on a big GPU, which one small GAN leaves mostly idle; not on a CPU.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    jobs: u64,
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
    #[command(flatten)]
    scoring: ScoringArgs,
}

#[derive(clap::Args, Debug)]
struct ScoringArgs {
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

impl ScoringArgs {
    fn config(&self) -> ScoreConfig {
        let mut config = ScoreConfig {
            samples: self.samples,
            kid_subset_size: self.kid_subset_size,
            seed: self.seed,
            ..ScoreConfig::default()
        };
        if let Some(e) = self.encoder_epochs {
            config.encoder.epochs = e;
        }
        if let Some(f) = self.encoder_filters {
            config.encoder.filters = f;
        }
        config
    }

    fn layout(&self) -> DataLayout {
        self.data_dir
            .clone()
            .map(DataLayout::new)
            .unwrap_or_default()
    }
}

/// Prints the encoder's progress the first time it is trained.
fn encoder_progress(epochs: usize) -> impl FnMut(usize, f32) {
    move |epoch, loss| {
        println!(
            "feature encoder (first use): epoch {epoch}/{epochs} reconstruction loss {loss:.4}"
        )
    }
}

fn main() -> Result<()> {
    logogan::allocator::tune_for_tensors();
    match Cli::parse().command {
        Command::Score(args) => score(args),
        Command::Sweep(args) => sweep(args),
        Command::ScoreImages(args) => score_images(args),
        Command::ExportTrainingSet(args) => export_training_set(args),
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
    let results = run_sweep(
        &file,
        &runs,
        &layout,
        &device,
        args.jobs as usize,
        &|line| println!("{line}"),
    )?;
    println!("\n{}", results_table(&results));
    println!(
        "written: results.md, results.csv, scores.png and one grid per trial in {}",
        display_path(&sweep_dir(&runs, &file))
    );
    Ok(())
}

fn score(args: ScoreArgs) -> Result<()> {
    let (s, config) = (&args.scoring, args.scoring.config());
    let device = s.device.open()?;
    println!(
        "scoring {} on {}",
        display_path(&args.run),
        describe(&device)
    );
    let report = score_run(
        &args.run,
        &s.layout(),
        &config,
        &device,
        &mut encoder_progress(config.encoder.epochs),
    )?;
    println!("\n{}", report.table());
    println!(
        "written: {} and {}",
        display_path(&args.run.join("score.md")),
        display_path(&args.run.join("score.json"))
    );
    Ok(())
}

fn score_images(args: ScoreImagesArgs) -> Result<()> {
    let (s, config) = (&args.scoring, args.scoring.config());
    let device = s.device.open()?;
    println!(
        "scoring the images in {} on {}",
        display_path(&args.images),
        describe(&device)
    );
    let report = logogan::metrics::score_images(
        &args.images,
        &s.layout(),
        &config,
        &device,
        &mut encoder_progress(config.encoder.epochs),
    )?;
    println!("\n{}", report.table());
    println!(
        "written: {}.{{md,json}} and {}",
        display_path(&args.images.with_extension("score")),
        display_path(&args.images.with_extension("grid.png"))
    );
    Ok(())
}

fn export_training_set(args: ExportArgs) -> Result<()> {
    let images = Trainer::training_set_of_run(&args.run, &Device::Cpu)?;
    images.save_npy(&args.out)?;
    println!(
        "{} images of {1}×{1} (the training set of {2}) → {3}",
        images.len(),
        images.image_size,
        display_path(&args.run),
        display_path(&args.out)
    );
    Ok(())
}

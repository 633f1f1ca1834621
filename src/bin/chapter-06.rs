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

use std::path::PathBuf;

use anyhow::Result;
use candle_core::Device;
use clap::{Parser, Subcommand};
use logogan::data::dataset::ImageDataset;
use logogan::device::{describe, DeviceChoice};
use logogan::metrics::{
    calibrate, sample_generator, score_run, CalibrationConfig, RealReference, ScoreConfig,
};
use logogan::paths::{default_runs_dir, display_path, DataLayout};
use logogan::sweep::{results_table, run_sweep, summarise, summary_table, sweep_dir, SweepFile};
use logogan::train::generate::TrainedGenerator;
use logogan::train::Trainer;
use logogan::viz::tensor_to_images;

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

#[derive(clap::Args, Debug)]
struct CalibrateArgs {
    /// Where to write calibration.{md,csv,json}, the chart and the sets' grid.
    /// Default: <runs folder>/calibration.
    #[arg(long)]
    out: Option<PathBuf>,
    #[command(flatten)]
    scoring: ScoringArgs,
}

#[derive(clap::Args, Debug)]
struct ExportArgs {
    /// The run folder (runs/<name>); its config.json says which images it used.
    run: PathBuf,
    /// Where to write the .npy file.
    out: PathBuf,
}

#[derive(clap::Args, Debug)]
struct ExportSamplesArgs {
    /// The run folder (runs/<name>).
    run: PathBuf,
    /// Where to write the .npy file.
    out: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    samples: u64,
    /// Seed of the noise (the same rule as `score --seed`).
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Sample the generator the run trained, not its moving average (what the average adds).
    #[arg(long)]
    no_average: bool,
}

#[derive(clap::Args, Debug)]
struct ScoreImagesArgs {
    /// The .npy files of images, u8 (N, 3, S, S).
    #[arg(required = true, num_args = 1..)]
    images: Vec<PathBuf>,
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
    /// Images per set (generated, held-out, train reference); fewer when there are fewer
    /// held-out logos.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..=100_000))]
    samples: u64,
    /// Size of the random subsets of the KID estimate.
    #[arg(long, default_value_t = 500)]
    kid_subset_size: usize,
    /// Training steps of the feature encoder (only when it is not cached yet).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    encoder_steps: Option<u64>,
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
            samples: self.samples as usize,
            kid_subset_size: self.kid_subset_size,
            seed: self.seed,
            ..ScoreConfig::default()
        };
        if let Some(steps) = self.encoder_steps {
            config.encoder.steps = steps as usize;
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
fn encoder_progress(steps: usize) -> impl FnMut(usize, f32) {
    move |step, loss| {
        if step % 200 == 0 || step == steps {
            println!("feature encoder (first use): step {step}/{steps} contrastive loss {loss:.3}")
        }
    }
}

fn main() -> Result<()> {
    logogan::ops::allocator::tune_for_tensors();
    match Cli::parse().command {
        Command::Calibrate(args) => calibrate_judge(args),
        Command::Score(args) => score(args),
        Command::Sweep(args) => sweep(args),
        Command::ScoreImages(args) => score_images(args),
        Command::ExportTrainingSet(args) => export_training_set(args),
        Command::ExportSamples(args) => export_samples(args),
    }
}

fn calibrate_judge(args: CalibrateArgs) -> Result<()> {
    let (s, score) = (&args.scoring, args.scoring.config());
    let device = s.device.open()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| default_runs_dir().join("calibration"));
    let start = std::time::Instant::now();
    let reference = RealReference::load(
        &s.layout(),
        &score,
        &device,
        &mut encoder_progress(score.encoder.steps),
    )?;
    println!(
        "judge: encoder {} ({:.0} s), {} train and {} held-out images; scoring the ladder on {}",
        reference.encoder.version,
        start.elapsed().as_secs_f64(),
        reference.train.len(),
        reference.held_out.len(),
        describe(&device)
    );
    let config = CalibrationConfig {
        score,
        ..CalibrationConfig::default()
    };
    let result = calibrate(&reference, &config, &mut |rung, scores| {
        println!(
            "  {:<38} KID×1000 {:>8.2}  two-sample {:.3}",
            rung.label(),
            scores.kid.mean * 1e3,
            scores.two_sample.accuracy
        )
    })?;
    result.save(&out, &reference)?;
    println!(
        "
{}",
        result.table()
    );
    println!(
        "written: calibration.{{md,csv,json}}, calibration-kid.{{png,svg}} and \
         calibration-sets.png in {} ({:.0} s in all)",
        display_path(&out),
        start.elapsed().as_secs_f64()
    );
    if !result.all_held() {
        anyhow::bail!("the judge failed the ladder: the orderings marked ✗ above did not hold");
    }
    Ok(())
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
    println!(
        "\n{}\n{}",
        summary_table(&summarise(&results)),
        results_table(&results)
    );
    println!(
        "written: results.md, results.csv, summary.csv, scores.png and one grid per run in {}",
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
        &mut encoder_progress(config.encoder.steps),
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
        "scoring the images in {} file(s) on {}",
        args.images.len(),
        describe(&device)
    );
    let reports = logogan::metrics::score_image_files(
        &args.images,
        &s.layout(),
        &config,
        &device,
        &mut encoder_progress(config.encoder.steps),
    )?;
    for (file, report) in args.images.iter().zip(reports) {
        println!("\n{}\n{}", display_path(file), report.table());
        println!(
            "written: {}.{{md,json}} and {}",
            display_path(&file.with_extension("score")),
            display_path(&file.with_extension("grid.png"))
        );
    }
    Ok(())
}

fn export_samples(args: ExportSamplesArgs) -> Result<()> {
    let generator = if args.no_average {
        TrainedGenerator::load_trained(&args.run, &Device::Cpu)?
    } else {
        TrainedGenerator::load(&args.run, &Device::Cpu)?
    };
    let images = sample_generator(&generator, args.samples as usize, args.seed)?;
    let images = tensor_to_images(&images)?;
    let names = (0..images.len())
        .map(|i| format!("sample-{i:06}"))
        .collect();
    ImageDataset::from_images(&images, names, &Device::Cpu)?.save_npy(&args.out)?;
    println!(
        "{} samples of {} (step {}) → {}",
        images.len(),
        display_path(&args.run),
        generator.step,
        display_path(&args.out)
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

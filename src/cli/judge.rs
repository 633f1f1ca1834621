//! Chapter 6's command line: the judge's calibration, scoring runs and image files, sweeps,
//! and the exports that let another program (the PyTorch reference) be judged the same way.

use std::path::PathBuf;

use candle_core::Device;

use super::{DataDirArg, DeviceArg, RunsDirArg};
use crate::data::dataset::ImageDataset;
use crate::device::describe;
use crate::error::{Error, Result};
use crate::metrics::families::{DEFAULT_FAMILIES, MAX_FAMILIES};
use crate::metrics::score::{family_score_file, score_families, score_run_trained_generator};
use crate::metrics::{
    calibrate, sample_generator, score_run, CalibrationConfig, RealReference, ScoreConfig,
};
use crate::paths::{default_runs_dir, display_path, DataLayout};
use crate::sweep::{results_table, run_sweep, summarise, summary_table, sweep_dir, SweepFile};
use crate::train::generate::TrainedGenerator;
use crate::train::Trainer;
use crate::viz::tensor_to_images;

#[derive(clap::Args, Debug)]
pub struct CalibrateArgs {
    /// Where to write calibration.{md,csv,json}, the chart and the sets' grid.
    /// Default: <runs folder>/calibration.
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub scoring: ScoringArgs,
}

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// The run folder (runs/<name>); its config.json says which images it used.
    pub run: PathBuf,
    /// Where to write the .npy file.
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct ExportSamplesArgs {
    /// The run folder (runs/<name>).
    pub run: PathBuf,
    /// Where to write the .npy file.
    pub out: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub samples: u64,
    /// Seed of the noise (the same rule as `score --seed`).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Sample the generator the run trained, not its moving average (what the average adds).
    #[arg(long)]
    pub no_average: bool,
}

#[derive(clap::Args, Debug)]
pub struct ScoreImagesArgs {
    /// The .npy files of images, u8 (N, 3, S, S).
    #[arg(required = true, num_args = 1..)]
    pub images: Vec<PathBuf>,
    #[command(flatten)]
    pub scoring: ScoringArgs,
}

#[derive(clap::Args, Debug)]
pub struct SweepArgs {
    /// The sweep file, e.g. data/sweeps/stability.toml.
    pub file: PathBuf,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Trials trained at once (each on its own thread and, on a GPU, its own CUDA stream).
    /// Worth it on a big GPU, which one small GAN leaves mostly idle; not on a CPU.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=64))]
    pub jobs: u64,
    #[command(flatten)]
    pub runs: RunsDirArg,
    #[command(flatten)]
    pub data: DataDirArg,
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    /// The run folder (runs/<name>).
    pub run: PathBuf,
    /// Also the KID of every logo family (chapter 7) against that family's train logos, beside
    /// its held-out floor, and the share of G's samples in it (families.score.md). A
    /// conditional run is asked for each of its families; an unconditional one's samples are
    /// sorted into `--families` families.
    #[arg(long)]
    pub per_family: bool,
    /// With `--per-family` on an unconditional run: the number of families (clustered as
    /// chapter 7 does); a conditional run uses its own.
    #[arg(long, default_value_t = DEFAULT_FAMILIES as u64, value_parser = clap::value_parser!(u64).range(2..=MAX_FAMILIES as u64))]
    pub families: u64,
    /// Judge the generator the run trained, not the moving average of its weights (what the
    /// average adds; written as score-trained-g.* and families-trained-g.score.*).
    #[arg(long)]
    pub no_average: bool,
    #[command(flatten)]
    pub scoring: ScoringArgs,
}

#[derive(clap::Args, Debug)]
pub struct ScoringArgs {
    /// Images per set (generated, held-out, train reference); fewer when there are fewer
    /// held-out logos.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..=100_000))]
    pub samples: u64,
    /// Size of the random subsets of the KID estimate.
    #[arg(long, default_value_t = 500)]
    pub kid_subset_size: usize,
    /// Training steps of the feature encoder (only when it is not cached yet).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub encoder_steps: Option<u64>,
    /// Filters of the encoder's first layer.
    #[arg(long)]
    pub encoder_filters: Option<usize>,
    /// Epochs of each classifier of the two-sample test on pixels (`score.two_sample.epochs`
    /// in a sweep file): fewer is quicker and tells sets apart less sharply.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=1000))]
    pub two_sample_epochs: Option<u64>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub data: DataDirArg,
}

impl ScoringArgs {
    pub fn config(&self) -> ScoreConfig {
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
        if let Some(epochs) = self.two_sample_epochs {
            config.two_sample.epochs = epochs as usize;
        }
        config
    }

    pub fn layout(&self) -> DataLayout {
        self.data.layout()
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

impl CalibrateArgs {
    /// Score the calibration ladder and check every ordering; fails when one does not hold.
    pub fn run(self) -> Result<()> {
        let args = self;
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
            return Err(Error::Metric(
                "the judge failed the ladder: the orderings marked ✗ above did not hold".into(),
            ));
        }
        Ok(())
    }
}

impl SweepArgs {
    /// Run, score and rank the sweep's trials, printing the tables.
    pub fn run(self) -> Result<()> {
        let args = self;
        let device = args.device.open()?;
        let layout = args.data.layout();
        let runs = args.runs.runs();
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
}

impl ScoreArgs {
    /// Score the run and print its table.
    pub fn run(self) -> Result<()> {
        let args = self;
        let (s, config) = (&args.scoring, args.scoring.config());
        let device = s.device.open()?;
        println!(
            "scoring {} on {}",
            display_path(&args.run),
            describe(&device)
        );
        let score = if args.no_average {
            score_run_trained_generator
        } else {
            score_run
        };
        let report = score(
            &args.run,
            &s.layout(),
            &config,
            &device,
            &mut encoder_progress(config.encoder.steps),
        )?;
        let stem = if args.no_average {
            "score-trained-g"
        } else {
            "score"
        };
        println!("\n{}", report.table());
        println!(
            "written: {} and {}",
            display_path(&args.run.join(format!("{stem}.md"))),
            display_path(&args.run.join(format!("{stem}.json")))
        );
        if args.per_family {
            let families = score_families(
                &args.run,
                &s.layout(),
                &config,
                args.families as usize,
                !args.no_average,
                &device,
            )?;
            println!("\n{}", families.table());
            println!(
                "written: {}",
                display_path(&args.run.join(family_score_file(!args.no_average, "md")))
            );
        }
        Ok(())
    }
}

impl ScoreImagesArgs {
    /// Score each file of images against one real side.
    pub fn run(self) -> Result<()> {
        let args = self;
        let (s, config) = (&args.scoring, args.scoring.config());
        let device = s.device.open()?;
        println!(
            "scoring the images in {} file(s) on {}",
            args.images.len(),
            describe(&device)
        );
        let reports = crate::metrics::score_image_files(
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
}

impl ExportSamplesArgs {
    /// Write the run's samples as a .npy file.
    pub fn run(self) -> Result<()> {
        let args = self;
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
}

impl ExportArgs {
    /// Write the run's training images as a .npy file.
    pub fn run(self) -> Result<()> {
        let args = self;
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
}

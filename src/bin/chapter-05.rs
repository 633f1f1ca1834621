//! Chapter 5 — Training and loss graphs.
//!
//! `cargo run --release --bin chapter-05` trains LogoGan's GAN on the default dataset (building
//! it first if needed) and leaves sample grids, loss charts, a GIF and checkpoints in
//! `runs/<name>/`. `generate` samples a trained run; `report` redraws a run's charts.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use logogan::data::dataset::ImageDataset;
use logogan::data::pipeline::ensure_dataset;
use logogan::device::{describe, DeviceChoice};
use logogan::fsutil::save_png;
use logogan::model::{Architecture, ConvAlgorithm};
use logogan::paths::{default_runs_dir, display_path, DataLayout};
use logogan::train::config::Overrides;
use logogan::train::generate::TrainedGenerator;
use logogan::train::loss::GanLoss;
use logogan::train::report::write_report;
use logogan::train::run::default_run_name;
use logogan::train::{Preset, RunDir, TrainConfig, TrainEvent, Trainer};
use logogan::viz::image_grid;

// A faster allocator than glibc's for the many short-lived buffers of tensor code
// (measured: 134 → 177 img/s for `--preset quick` on 2 CPU cores).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Train the logo GAN (default), sample from a trained run, or redraw a run's charts.
#[derive(Parser, Debug)]
#[command(version, args_conflicts_with_subcommands = true)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    train: TrainArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Train (the default when no command is given).
    Train(Box<TrainArgs>),
    /// Sample a trained run: a grid, single PNGs, and optionally a latent interpolation strip.
    Generate(GenerateArgs),
    /// Redraw a run's loss charts and progress GIF from its files.
    Report {
        /// The run folder (runs/<name>).
        run: PathBuf,
    },
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    /// Settings to start from: default (64 px, 25 epochs; the choice on a GPU), laptop (32 px,
    /// about half an hour on two CPU cores; the choice without a GPU), quick (32 px, a few CPU
    /// minutes, blobs), tiny (smoke tests).
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Network design.
    #[arg(long, value_enum, default_value_t = Architecture::Logogan)]
    model: Architecture,
    /// Image size (32, 64 or 128); the dataset of that size is built if missing.
    #[arg(long)]
    size: Option<usize>,
    /// Length of the noise vector.
    #[arg(long)]
    latent_dim: Option<usize>,
    /// Width of the generator: filters of its last hidden layer (doubling towards the noise).
    #[arg(long)]
    g_filters: Option<usize>,
    /// Width of the discriminator: filters per layer (LogoGan) or of its first layer (classic).
    #[arg(long)]
    d_filters: Option<usize>,
    /// How convolutions are computed: gemm (fast), composed (the same algorithm in candle's
    /// tensor ops, portable) or candle (candle's own kernels).
    #[arg(long, value_enum)]
    conv: Option<ConvAlgorithm>,
    #[arg(long)]
    epochs: Option<usize>,
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate of both networks (Adam).
    #[arg(long)]
    lr: Option<f64>,
    /// Learning rate of the generator alone (two time-scale updates: e.g. --lr-g 1e-4 --lr-d 4e-4).
    #[arg(long)]
    lr_g: Option<f64>,
    /// Learning rate of the discriminator alone.
    #[arg(long)]
    lr_d: Option<f64>,
    /// The game: bce (DCGAN) or hinge.
    #[arg(long, value_enum)]
    loss: Option<GanLoss>,
    /// Instance noise: σ of the Gaussian noise added to D's inputs, annealed to 0 (e.g. 0.1).
    #[arg(long)]
    instance_noise: Option<f64>,
    /// Keep an exponential moving average of G's weights with this decay (e.g. 0.999) and
    /// sample from it; 0 turns the average off.
    #[arg(long)]
    ema: Option<f64>,
    /// Differentiable augmentation (colour, translation, cutout) of D's inputs.
    #[arg(long)]
    diff_augment: bool,
    /// Spectral normalisation of the discriminator's convolutions.
    #[arg(long)]
    spectral_norm: bool,
    /// One-sided label smoothing: real images get the target 1 − this (e.g. 0.1).
    #[arg(long)]
    label_smoothing: Option<f64>,
    /// Use at most this many training images.
    #[arg(long)]
    max_images: Option<usize>,
    #[arg(long)]
    checkpoint_every: Option<u64>,
    #[arg(long)]
    seed: Option<u64>,
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Run name (a folder under the runs folder). Default: <model>-<size>px-<date-time>.
    #[arg(long)]
    name: Option<String>,
    /// Continue the run in this folder from its latest checkpoint (its saved settings are used;
    /// --epochs may raise the total).
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Runs folder. Default: $LOGOGAN_RUNS_DIR or the repository's runs/.
    #[arg(long)]
    runs_dir: Option<PathBuf>,
    /// Data folder. Default: $LOGOGAN_DATA_DIR or the repository's data/.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Stop after this many steps in total (the run can be resumed later).
    #[arg(long)]
    stop_after: Option<u64>,
}

#[derive(clap::Args, Debug)]
struct GenerateArgs {
    /// The trained run folder (runs/<name>).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    n: u64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Also draw an interpolation strip between the noise of two seeds, e.g. 3,7.
    #[arg(long, value_delimiter = ',')]
    interpolate: Option<Vec<u64>>,
    /// Images in the interpolation strip.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=256))]
    frames: u64,
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Output folder. Default: <run>/generated.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn main() -> Result<()> {
    logogan::ops::allocator::tune_for_tensors();
    let cli = Cli::parse();
    match cli.command {
        None => train(cli.train),
        Some(Command::Train(args)) => train(*args),
        Some(Command::Generate(args)) => generate(args),
        Some(Command::Report { run }) => {
            let files = write_report(&RunDir::new(&run))?;
            println!(
                "{} steps, {} grids → charts and progress.gif in {}",
                files.steps,
                files.frames,
                display_path(&run)
            );
            Ok(())
        }
    }
}

fn config_from(args: &TrainArgs, preset: Preset) -> TrainConfig {
    Overrides {
        preset: Some(preset),
        model: Some(args.model),
        size: args.size,
        latent_dim: args.latent_dim,
        g_filters: args.g_filters,
        d_filters: args.d_filters,
        conv: args.conv,
        epochs: args.epochs,
        batch_size: args.batch_size,
        lr: args.lr,
        lr_g: args.lr_g,
        lr_d: args.lr_d,
        label_smoothing: args.label_smoothing,
        loss: args.loss,
        instance_noise: args.instance_noise,
        ema_decay: args.ema,
        diff_augment: args.diff_augment.then_some(true),
        spectral_norm: args.spectral_norm.then_some(true),
        max_images: args.max_images,
        checkpoint_every: args.checkpoint_every,
        seed: args.seed,
        name: None,
    }
    .config()
}

fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

fn train(args: TrainArgs) -> Result<()> {
    let device = args.device.open()?;
    let layout = args
        .data_dir
        .clone()
        .map(DataLayout::new)
        .unwrap_or_default();
    let runs = args.runs_dir.clone().unwrap_or_else(default_runs_dir);
    let mut trainer = match &args.resume {
        Some(run) => {
            let record = logogan::train::RunRecord::load(&RunDir::new(run))?;
            let size = record.config.image_size();
            let data = ImageDataset::load(&record.data, size, &device).with_context(|| {
                format!("loading the run's data from {}", record.data.display())
            })?;
            println!("resuming {} on {}", display_path(run), describe(&device));
            Trainer::resume(run.clone(), &data, args.epochs)?
        }
        None => {
            let preset = args.preset.unwrap_or_else(|| {
                if device.is_cpu() {
                    println!(
                        "no GPU: training the `laptop` preset (32×32, about half an hour on two \
                         cores); `--preset default` trains the 64×64 model (hours on a CPU)"
                    );
                    Preset::Laptop
                } else {
                    Preset::Default
                }
            });
            let config = config_from(&args, preset);
            config.validate()?;
            let size = config.image_size();
            let train_dir = ensure_dataset(&layout, size as u32, true)?;
            let data = ImageDataset::load(&train_dir, size, &device)?;
            let name = args.name.clone().unwrap_or_else(|| {
                default_run_name(&config, &format!("{:?}", args.model).to_lowercase())
            });
            let run = runs.join(&name);
            println!(
                "run {} on {} with {} images of {size}×{size}",
                display_path(&run),
                describe(&device),
                data.len()
            );
            Trainer::create(config, &data, train_dir, run)?
        }
    };

    let epochs = trainer.config.epochs;
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let on_cpu = device.is_cpu();
    let chosen_preset = args.preset;
    let result = trainer.train(args.stop_after, &mut |event| match event {
        TrainEvent::Started { first_step, total_steps, steps_per_epoch, images } => {
            bar.set_length(total_steps);
            bar.set_position(first_step - 1);
            bar.suspend(|| println!("{images} images, {steps_per_epoch} steps per epoch, {epochs} epochs"));
        }
        TrainEvent::Estimate { seconds_per_step, remaining_seconds } => {
            let eta = format_duration(remaining_seconds);
            bar.suspend(|| println!("measured {seconds_per_step:.2} s/step → about {eta} for the rest of the run"));
            if on_cpu && remaining_seconds > 3600.0 && chosen_preset == Some(Preset::Default) {
                bar.suspend(|| {
                    println!("on a CPU this is long: `--preset laptop` makes 32×32 logos in about half an hour");
                    println!("(Ctrl-C stops; `--resume <run>` continues from the last checkpoint)");
                });
            }
        }
        TrainEvent::Step { step, epoch, images_per_second } => {
            bar.set_position(step);
            bar.set_message(format!("epoch {epoch}/{epochs} · {images_per_second:.0} img/s"));
        }
        TrainEvent::Logged(_) => {}
        TrainEvent::EpochEnd { epoch, mean, images_per_second, seconds, grid_path, .. } => {
            if let Some(m) = mean {
                let (took, grid) = (format_duration(seconds), display_path(&grid_path));
                bar.suspend(|| {
                    println!(
                        "epoch {epoch:>3}/{epochs}: D loss {:.3}  G loss {:.3}  D(x) {:.3}  D(G(z)) {:.3}→{:.3}  {images_per_second:.0} img/s  {took}  → {grid}",
                        m.d_loss, m.g_loss, m.d_real, m.d_fake, m.d_fake_after
                    )
                });
            }
        }
        TrainEvent::Checkpoint { .. } => {}
    });
    bar.finish_and_clear();
    let run = trainer.run.clone();
    result?;
    let files = write_report(&run)?;
    println!(
        "done: step {} · {} grids · charts loss.png, d_outputs.png and progress.gif in {}",
        trainer.step(),
        files.frames,
        display_path(&run.root)
    );
    println!(
        "sample it: cargo run --release --bin chapter-05 -- generate --checkpoint {}",
        display_path(&run.root)
    );
    Ok(())
}

fn generate(args: GenerateArgs) -> Result<()> {
    let device = args.device.open()?;
    let g = TrainedGenerator::load(&args.checkpoint, &device)?;
    let out = args
        .out
        .unwrap_or_else(|| RunDir::new(&args.checkpoint).generated());
    let n = args.n as usize;
    let images = g.images(&g.noise(n, args.seed)?)?;
    let columns = (n as f64).sqrt().ceil() as usize;
    save_png(
        &out.join(format!("grid-seed{}.png", args.seed)),
        &image_grid(&images, columns, 2),
    )?;
    for (i, image) in images.iter().enumerate() {
        save_png(&out.join(format!("seed{}-{i:03}.png", args.seed)), image)?;
    }
    println!(
        "{} images from step {} in {}",
        images.len(),
        g.step,
        display_path(&out)
    );
    if let Some(seeds) = args.interpolate {
        anyhow::ensure!(
            seeds.len() == 2,
            "--interpolate takes two seeds, like 3,7 (got {seeds:?})"
        );
        let strip = g.interpolate(seeds[0], seeds[1], args.frames as usize)?;
        let path = out.join(format!("interpolation-{}-{}.png", seeds[0], seeds[1]));
        save_png(&path, &image_grid(&strip, strip.len(), 2))?;
        println!(
            "interpolation {} → {}: {}",
            seeds[0],
            seeds[1],
            display_path(&path)
        );
    }
    Ok(())
}

//! Chapter 5's command line: the flags of a training run and of sampling a trained one.

use std::path::PathBuf;

use super::{CommonArgs, DeviceArg};
use crate::train::TrainOptions;

/// Train a run: every option of [`TrainOptions`], from flags or a config file.
#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub options: TrainOptions,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Options from a TOML file with the flags' names (`lr_d = 4e-4`); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in this folder from its latest checkpoint, with its saved settings
    /// (--epochs may raise the total).
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Stop after this many steps in total (the run can be resumed later).
    #[arg(long)]
    pub stop_after: Option<u64>,
}

impl TrainArgs {
    /// The options of the run: the config file's, if any, overridden by the flags.
    pub fn options(&self) -> crate::Result<TrainOptions> {
        Ok(match &self.config {
            Some(file) => TrainOptions::load(file)?.overlay(&self.options),
            None => self.options.clone(),
        })
    }
}

/// Sample a trained run.
#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// The trained run folder (runs/<name>).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Number of images.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..=4096))]
    pub n: u64,
    /// Seed of the noise.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// For a conditional run (chapter 7): draw every image from this logo family. Default: all
    /// families, in the training set's proportions.
    #[arg(long, value_parser = clap::value_parser!(u32).range(0..64))]
    pub class: Option<u32>,
    /// Also draw an interpolation strip between the noise of two seeds, e.g. 3,7.
    #[arg(long, value_delimiter = ',')]
    pub interpolate: Option<Vec<u64>>,
    /// Images in the interpolation strip.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(2..=256))]
    pub frames: u64,
    #[command(flatten)]
    pub device: DeviceArg,
    /// Output folder. Default: <run>/generated.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Train the run `args` describe (or resume it) with `options`, with a progress bar, and say
/// where its files are and how `bin` samples it.
pub fn train_and_report(args: &TrainArgs, options: &TrainOptions, bin: &str) -> crate::Result<()> {
    use crate::paths::display_path;
    use crate::train::session::{train_with_console, Session};
    let device = args.common.open_device()?;
    let (layout, runs) = (args.common.layout(), args.common.runs());
    let session = Session {
        device: &device,
        layout: &layout,
        runs: &runs,
    };
    let mut trainer = match &args.resume {
        Some(run) => session.resume(run, options)?,
        None => session.start(options)?,
    };
    let frames = train_with_console(&mut trainer, args.stop_after)?.frames;
    let (run, step) = (display_path(&trainer.run.root), trainer.step());
    println!("done: step {step} · {frames} grids · loss.png, d_outputs.png, progress.gif in {run}");
    println!("sample it: cargo run --release --bin {bin} -- generate --checkpoint {run}");
    Ok(())
}

/// Sample the trained run `args` names: a grid, one PNG per image, and the interpolation strip
/// when asked for; of one family with `--class` (a conditional run).
pub fn generate_samples(args: &GenerateArgs) -> crate::Result<()> {
    use crate::paths::display_path;
    use crate::train::generate::TrainedGenerator;
    let mut g = TrainedGenerator::load(&args.checkpoint, &args.device.open()?)?;
    g.set_family(args.class)?;
    let out = (args.out.clone())
        .unwrap_or_else(|| crate::train::RunDir::new(&args.checkpoint).generated());
    let grid = display_path(&g.save_samples(args.n as usize, args.seed, &out)?);
    println!(
        "{} images from step {}: {grid} and one PNG each",
        args.n, g.step
    );
    match args.interpolate.as_deref() {
        None => {}
        Some(&[a, b]) => {
            let strip = display_path(&g.save_interpolation((a, b), args.frames as usize, &out)?);
            println!("interpolation {a} → {b}: {strip}");
        }
        Some(other) => {
            return Err(crate::Error::config(
                "interpolate",
                format!("takes two seeds, like 3,7 (got {other:?})"),
            ))
        }
    }
    Ok(())
}

//! Chapter 5 — Training and loss graphs.
//!
//! `cargo run --release --bin chapter-05` trains LogoGan's GAN on the default dataset (building
//! it first if needed) and leaves sample grids, loss charts, a GIF and checkpoints in
//! `runs/<name>/`. `generate` samples a trained run; `charts` redraws a run's charts.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::cli::train::{GenerateArgs, TrainArgs};
use logogan::paths::display_path;
use logogan::train::charts::draw_charts;
use logogan::train::generate::TrainedGenerator;
use logogan::train::session::{train_with_console, Session};
use logogan::train::RunDir;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see logogan::cli::init

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
    /// Redraw a run's loss charts and progress GIF from its loss log and grids.
    #[command(alias = "report")]
    Charts { run: PathBuf },
}

fn main() -> Result<()> {
    logogan::cli::init();
    let cli = Cli::parse();
    match cli.command {
        None => train_run(cli.train),
        Some(Command::Train(train)) => train_run(*train),
        Some(Command::Generate(args)) => generate(args),
        Some(Command::Charts { run }) => {
            let files = draw_charts(&RunDir::new(&run))?;
            let (steps, frames) = (files.steps, files.frames);
            println!(
                "{steps} steps, {frames} grids → charts and GIF in {}",
                display_path(&run)
            );
            Ok(())
        }
    }
}

fn train_run(args: TrainArgs) -> Result<()> {
    let options = args.options()?; // flags over the config file, if any
    let device = args.common.open_device()?;
    let (layout, runs) = (args.common.layout(), args.common.runs());
    let session = Session {
        device: &device,
        layout: &layout,
        runs: &runs,
    };
    let mut trainer = match &args.resume {
        Some(run) => session.resume(run, &options)?,
        None => session.start(&options)?,
    };
    let frames = train_with_console(&mut trainer, args.stop_after)?.frames;
    let (run, step) = (display_path(&trainer.run.root), trainer.step());
    println!("done: step {step} · {frames} grids · loss.png, d_outputs.png, progress.gif in {run}");
    println!("sample it: cargo run --release --bin chapter-05 -- generate --checkpoint {run}");
    Ok(())
}

fn generate(args: GenerateArgs) -> Result<()> {
    let mut g = TrainedGenerator::load(&args.checkpoint, &args.device.open()?)?;
    g.set_family(args.class)?;
    let out = (args.out.clone()).unwrap_or_else(|| RunDir::new(&args.checkpoint).generated());
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
        Some(other) => anyhow::bail!("--interpolate takes two seeds, like 3,7 (got {other:?})"),
    }
    Ok(())
}

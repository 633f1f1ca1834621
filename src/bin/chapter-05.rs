//! Chapter 5 — Training and loss graphs.
//!
//! `cargo run --release --bin chapter-05` trains LogoGan's GAN on the default dataset (building
//! it first if needed) and leaves sample grids, loss charts, a GIF and checkpoints in
//! `runs/<name>/`. `generate` samples a trained run; `charts` redraws a run's charts.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::cli::train::{generate_samples, train_and_report, GenerateArgs, TrainArgs};
use logogan::paths::display_path;
use logogan::train::charts::draw_charts;
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
        Some(Command::Generate(args)) => Ok(generate_samples(&args)?),
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
    Ok(train_and_report(&args, &options, "chapter-05")?)
}

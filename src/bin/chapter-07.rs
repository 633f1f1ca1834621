//! Chapter 7 — Logos on demand: a conditional GAN over logo families.
//!
//! `cargo run --release --bin chapter-07` weighs 2 to 8 families by their silhouette, clusters
//! the training logos into six families (`--families K` for another number) in the judge's
//! feature space, draws each family as a row of `families-k<K>.png`, then trains the laptop
//! recipe conditioned on them: its grids show one family per row. `families` only clusters; `generate --checkpoint
//! runs/<name> --class K` samples one family of a trained run.

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::cli::train::{generate_samples, train_and_report, GenerateArgs, TrainArgs};
use logogan::cli::DeviceArg;
use logogan::metrics::families::{
    choose_k, cluster_and_save, families_path, family_features, KMeansConfig, CANDIDATE_FAMILIES,
    DEFAULT_FAMILIES,
};
use logogan::paths::{display_path, DataLayout};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see logogan::cli::init

/// Cluster the logos into families and train a GAN that draws the family it is asked for.
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
    /// Cluster the families, then train conditioned on them (the default).
    Train(Box<TrainArgs>),
    /// Only cluster: a table of candidate numbers of families, the file and the grid.
    Families {
        /// This many families instead of the course's six.
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..=64))]
        k: Option<u64>,
        #[command(flatten)]
        device: DeviceArg,
    },
    /// Sample a trained run; `--class K` draws every image from family K.
    Generate(GenerateArgs),
}

fn main() -> Result<()> {
    logogan::cli::init();
    let cli = Cli::parse();
    let layout = cli.train.common.layout(); // --data-dir is global: before or after the command
    match cli.command {
        None => train(cli.train),
        Some(Command::Train(args)) => train(*args),
        Some(Command::Families { k, device }) => {
            families(&layout, k.map(|k| k as usize), &device.open()?).map(|_| ())
        }
        Some(Command::Generate(args)) => Ok(generate_samples(&args)?),
    }
}

/// Weigh 2 to 8 families by the silhouette (printed), cluster the training logos into `k`
/// (default: the course's six, see `DEFAULT_FAMILIES`), say what was found, return the number.
fn families(layout: &DataLayout, k: Option<usize>, device: &candle_core::Device) -> Result<usize> {
    let (train, features) = family_features(layout, device)?;
    let (best, candidates) = choose_k(&features, CANDIDATE_FAMILIES, &KMeansConfig::default())?;
    println!("families  silhouette  images per family");
    for c in &candidates {
        println!("{:>8}  {:>10.3}  {:?}", c.k, c.silhouette, c.sizes);
    }
    let k = k.unwrap_or(DEFAULT_FAMILIES);
    let top = &candidates[best];
    println!(
        "highest silhouette: {} families ({:.3}); clustering into {k}",
        top.k, top.silhouette
    );
    let report = cluster_and_save(&train, &features, k, 8, &families_path(layout, k))?;
    println!(
        "{k} families of {:?} images: {}, one row each in {}",
        report.sizes,
        display_path(&report.path),
        display_path(&report.grid)
    );
    Ok(k)
}

fn train(args: TrainArgs) -> Result<()> {
    let mut options = args.options()?; // flags over the config file, if any
    if options.families.is_none() && args.resume.is_none() {
        let device = args.common.open_device()?;
        options.families = Some(families(&args.common.layout(), None, &device)?);
    }
    Ok(train_and_report(&args, &options, "chapter-07")?)
}

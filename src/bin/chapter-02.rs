//! Chapter 2 — Dataset gathering.
//!
//! With no arguments: unpack the vendored real logos into `data/raw/` (offline, seconds).
//! `spider` and `download` are the original project's web path, done politely; `hub` (with the
//! `hub` feature) fetches an image data set of the Hugging Face Hub through candle-datasets.

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::cli::DataDirArg;
use logogan::data::pipeline::ensure_raw;
use logogan::data::sources::VendorManifest;
use logogan::paths::display_path;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see logogan::cli::init

/// Gather real logos: the offline default (vendored Simple Icons + Font Awesome brands), or a
/// polite spider that lists image links in items.csv and a resumable downloader for such lists.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    #[command(flatten)]
    data: DataDirArg,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Unpack the vendored logo archives into data/raw/ (the default command).
    Vendored,
    /// List the vendored sources with their version, licence and file count.
    Sources,
    /// Crawl listing pages from START_URL and write image links to items.csv.
    #[cfg(feature = "gather")]
    Spider(logogan::cli::gather::SpiderArgs),
    /// Download the images listed in a CSV (items.csv) into data/raw/downloaded/.
    #[cfg(feature = "gather")]
    Download(logogan::cli::gather::DownloadArgs),
    /// Fetch an image data set of the Hugging Face Hub (parquet, through candle-datasets) into
    /// data/raw/hub-<owner>--<name>/.
    #[cfg(feature = "hub")]
    Hub(logogan::cli::hub::HubArgs),
}

fn main() -> Result<()> {
    logogan::cli::init();
    let args = Args::parse();
    let layout = args.data.layout();
    match args.command.unwrap_or(Command::Vendored) {
        Command::Vendored => {
            let start = std::time::Instant::now();
            for source in ensure_raw(&layout)? {
                let state = match (source.already_done, source.missing) {
                    (true, _) => "already there".to_string(),
                    (false, 0) => "unpacked".to_string(),
                    (false, n) => format!("{n} deleted files restored"),
                };
                println!(
                    "{:<20} {:>5} SVGs in {} ({state})",
                    source.id,
                    source.total,
                    display_path(&source.folder)
                );
                for refused in &source.refused {
                    eprintln!("warning: archive entry refused: {refused}");
                }
            }
            println!(
                "done in {:.1} s; next: cargo run --release --bin chapter-03",
                start.elapsed().as_secs_f64()
            );
        }
        Command::Sources => {
            let manifest = VendorManifest::load(&layout.vendor())?;
            println!("| source | package | version | licence | SVGs |\n|---|---|---|---|---:|");
            for s in &manifest.sources {
                println!(
                    "| {} | {} | {} | {} | {} |",
                    s.id, s.package, s.version, s.license, s.file_count
                );
            }
            for s in &manifest.sources {
                println!("\n{}: {}", s.id, s.notice);
            }
        }
        #[cfg(feature = "gather")]
        Command::Spider(a) => a.run(&layout)?,
        #[cfg(feature = "gather")]
        Command::Download(a) => a.run(&layout)?,
        #[cfg(feature = "hub")]
        Command::Hub(a) => a.run(&layout)?,
    }
    Ok(())
}

//! Chapter 2 — Dataset gathering.
//!
//! With no arguments: unpack the vendored real logos into `data/raw/` (offline, seconds).
//! `spider` and `download` are the original project's web path, done politely.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};
use logogan::data::pipeline::ensure_raw;
use logogan::data::sources::VendorManifest;
use logogan::paths::{display_path, DataLayout};

// A faster allocator than glibc's for the many short-lived buffers of tensor code.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Gather real logos: the offline default (vendored Simple Icons + Font Awesome brands), or a
/// polite spider that lists image links in items.csv and a resumable downloader for such lists.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Data folder (vendor/, raw/, processed/). Default: $LOGOGAN_DATA_DIR or the repository's data/.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
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
    Spider(SpiderArgs),
    /// Download the images listed in a CSV (items.csv) into data/raw/downloaded/.
    #[cfg(feature = "gather")]
    Download(DownloadArgs),
}

#[cfg(feature = "gather")]
#[derive(clap::Args, Debug)]
struct SpiderArgs {
    /// First listing page, e.g. a category page of logos. The crawl never leaves its site.
    start_url: url::Url,
    /// Where to write the image links (an existing file is extended, not replaced).
    /// Default: <data-dir>/items.csv.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Most pages to fetch.
    #[arg(long, default_value_t = 50)]
    max_pages: usize,
    /// Milliseconds to wait between requests (robots.txt's Crawl-delay wins if larger).
    #[arg(long, default_value_t = 1000)]
    delay_ms: u64,
    /// Also follow links whose URL contains this text (repeatable), e.g. "Category:".
    #[arg(long)]
    follow: Vec<String>,
    /// Skip images whose width/height attributes are below this (icons of the page itself).
    #[arg(long, default_value_t = 32)]
    min_side: u32,
    /// Keep thumbnail URLs as they are instead of pointing at the original files.
    #[arg(long)]
    keep_thumbnails: bool,
}

#[cfg(feature = "gather")]
#[derive(clap::Args, Debug)]
struct DownloadArgs {
    /// CSV of image links: the spider's items.csv, or any CSV/TSV with an image_url or url column.
    items: PathBuf,
    /// Output folder. Default: <data-dir>/raw/downloaded (where chapter-03 will find them).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Downloads in flight at once.
    #[arg(long, default_value_t = 4)]
    jobs: usize,
    /// Seconds before a request is abandoned.
    #[arg(long, default_value_t = 30)]
    timeout_s: u64,
    /// Extra attempts after a timeout, connection error, 5xx or 429.
    #[arg(long, default_value_t = 3)]
    retries: u32,
    /// Refuse bodies larger than this many bytes.
    #[arg(long, default_value_t = 10 << 20)]
    max_bytes: u64,
    /// Follow redirects to other hosts (refused by default).
    #[arg(long)]
    cross_host_redirects: bool,
}

fn main() -> Result<()> {
    logogan::ops::allocator::tune_for_tensors();
    let args = Args::parse();
    let layout = args
        .data_dir
        .clone()
        .map(DataLayout::new)
        .unwrap_or_default();
    match args.command.unwrap_or(Command::Vendored) {
        Command::Vendored => {
            let start = std::time::Instant::now();
            for source in ensure_raw(&layout)? {
                let state = if source.already_done {
                    "already there"
                } else {
                    "unpacked"
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
        Command::Spider(a) => spider(a, &layout)?,
        #[cfg(feature = "gather")]
        Command::Download(a) => download(a, &layout)?,
    }
    Ok(())
}

#[cfg(feature = "gather")]
fn spider(a: SpiderArgs, layout: &DataLayout) -> Result<()> {
    use logogan::data::spider::{crawl, SpiderConfig};
    let cfg = SpiderConfig {
        max_pages: a.max_pages,
        delay: std::time::Duration::from_millis(a.delay_ms),
        follow: a.follow,
        min_side: a.min_side,
        original_images: !a.keep_thumbnails,
        ..SpiderConfig::new(a.start_url)
    };
    let progress = logogan::progress::bar(cfg.max_pages as u64, "pages");
    let out = a.out.unwrap_or_else(|| layout.root.join("items.csv"));
    let summary = crawl(&cfg, &out, &progress)?;
    for page in &summary.disallowed {
        println!("robots.txt disallows {page}: skipped");
    }
    for failure in &summary.failed {
        eprintln!("warning: {failure}");
    }
    println!(
        "{} pages fetched, {} new image links, {} in {}{}",
        summary.pages_fetched,
        summary.new_items,
        summary.total_items,
        display_path(&out),
        if summary.budget_exhausted {
            " (page budget used up: raise --max-pages to go on)"
        } else {
            ""
        }
    );
    Ok(())
}

#[cfg(feature = "gather")]
fn download(a: DownloadArgs, layout: &DataLayout) -> Result<()> {
    use logogan::data::download::{download_all, read_wanted, DownloadConfig, Status};
    let cfg = DownloadConfig {
        jobs: a.jobs,
        timeout: std::time::Duration::from_secs(a.timeout_s),
        retries: a.retries,
        max_bytes: a.max_bytes,
        cross_host_redirects: a.cross_host_redirects,
        ..DownloadConfig::new(a.out.unwrap_or_else(|| layout.raw().join("downloaded")))
    };
    let items = read_wanted(&a.items)?;
    let progress = logogan::progress::bar(items.len() as u64, "downloading");
    let summary = download_all(&items, &cfg, &progress)?;
    for problem in &summary.problems {
        eprintln!("{}: {problem}", display_path(&a.items));
    }
    println!(
        "{} rows: {} saved, {} duplicates, {} refused, {} failed (retried next run), {} already done",
        summary.requested,
        summary.count(Status::Ok),
        summary.count(Status::Duplicate),
        summary.count(Status::Refused),
        summary.count(Status::Failed),
        summary.skipped
    );
    println!(
        "files and log (downloads.csv) in {}",
        display_path(&cfg.out_dir)
    );
    Ok(())
}

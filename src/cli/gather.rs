//! Chapter 2's command line for the web path: the polite spider and the resumable downloader
//! (builds with the `gather` feature). Both are explained in the book's appendix D.

use std::path::PathBuf;

use crate::data::download::{download_all, read_wanted, DownloadConfig, Status};
use crate::data::spider::{crawl, SpiderConfig};
use crate::error::Result;
use crate::paths::{display_path, DataLayout};

#[derive(clap::Args, Debug)]
pub struct SpiderArgs {
    /// First listing page, e.g. a category page of logos. The crawl never leaves its site.
    pub start_url: url::Url,
    /// Where to write the image links (an existing file is extended, not replaced).
    /// Default: <data-dir>/items.csv.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Most pages to fetch.
    #[arg(long, default_value_t = 50)]
    pub max_pages: usize,
    /// Milliseconds to wait between requests (robots.txt's Crawl-delay wins if larger).
    #[arg(long, default_value_t = 1000)]
    pub delay_ms: u64,
    /// Also follow links whose URL contains this text (repeatable), e.g. "Category:".
    #[arg(long)]
    pub follow: Vec<String>,
    /// Skip images whose width/height attributes are below this (icons of the page itself).
    #[arg(long, default_value_t = 32)]
    pub min_side: u32,
    /// Keep thumbnail URLs as they are instead of pointing at the original files.
    #[arg(long)]
    pub keep_thumbnails: bool,
}

#[derive(clap::Args, Debug)]
pub struct DownloadArgs {
    /// CSV of image links: the spider's items.csv, or any CSV/TSV with an image_url or url column.
    pub items: PathBuf,
    /// Output folder. Default: <data-dir>/raw/downloaded (where chapter-03 will find them).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Downloads in flight at once.
    #[arg(long, default_value_t = 4)]
    pub jobs: usize,
    /// Seconds before a request is abandoned.
    #[arg(long, default_value_t = 30)]
    pub timeout_s: u64,
    /// Extra attempts after a timeout, connection error, 5xx or 429.
    #[arg(long, default_value_t = 3)]
    pub retries: u32,
    /// Refuse bodies larger than this many bytes.
    #[arg(long, default_value_t = 10 << 20)]
    pub max_bytes: u64,
    /// Follow redirects to other hosts (refused by default).
    #[arg(long)]
    pub cross_host_redirects: bool,
    /// All the waiting (backoff, the server's Retry-After) one URL may do, in seconds; a URL
    /// that would wait longer is logged failed and retried by the next run.
    #[arg(long, default_value_t = 120)]
    pub max_wait_s: u64,
    /// Stop requesting a host after this many of its URLs in a row failed (0: never).
    #[arg(long, default_value_t = 5)]
    pub give_up_after: usize,
}

impl SpiderArgs {
    /// Crawl and print what was found.
    pub fn run(self, layout: &DataLayout) -> Result<()> {
        let a = self;
        let cfg = SpiderConfig {
            max_pages: a.max_pages,
            delay: std::time::Duration::from_millis(a.delay_ms),
            follow: a.follow,
            min_side: a.min_side,
            original_images: !a.keep_thumbnails,
            ..SpiderConfig::new(a.start_url)
        };
        let progress = crate::progress::bar(cfg.max_pages as u64, "pages");
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
}

impl DownloadArgs {
    /// Download the listed images and print the tally.
    pub fn run(self, layout: &DataLayout) -> Result<()> {
        let a = self;
        let cfg = DownloadConfig {
            jobs: a.jobs,
            timeout: std::time::Duration::from_secs(a.timeout_s),
            retries: a.retries,
            max_bytes: a.max_bytes,
            cross_host_redirects: a.cross_host_redirects,
            max_wait: std::time::Duration::from_secs(a.max_wait_s),
            give_up_after: a.give_up_after,
            ..DownloadConfig::new(a.out.unwrap_or_else(|| layout.raw().join("downloaded")))
        };
        let items = read_wanted(&a.items)?;
        let progress = crate::progress::bar(items.len() as u64, "downloading");
        let summary = download_all(&items, &cfg, &progress)?;
        for problem in &summary.problems {
            eprintln!("{}: {problem}", display_path(&a.items));
        }
        for host in &summary.hosts_given_up {
            eprintln!(
                "warning: gave up on {host} after {} failures in a row; its other URLs are \
                 logged failed and the next run tries them again",
                cfg.give_up_after
            );
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
}

//! Chapter 2's command line for the hub path (builds with the `hub` feature): an image data set
//! of the Hugging Face Hub, through `candle-datasets`, into `data/raw/hub-<owner>--<name>/`.

use crate::data::hub::{fetch, HubConfig, HubError, MANIFEST};
use crate::paths::{display_path, DataLayout};

/// Skipped rows printed one by one; the manifest lists them all.
const SHOWN_SKIPS: usize = 20;

#[derive(clap::Args, Debug)]
pub struct HubArgs {
    /// The data set's id on the Hub, owner/name (as in its page address).
    pub dataset: String,
    /// Which split to read.
    #[arg(long, default_value = "train")]
    pub split: String,
    /// The column that holds the images (the Hub's image feature, or plain binary).
    #[arg(long, default_value = "image")]
    pub image_column: String,
    /// Stop once this many images are in the folder (new and already there together).
    #[arg(long)]
    pub limit: Option<usize>,
}

impl HubArgs {
    /// Fetch, write and print the tally; rows that gave no image are listed, one line each.
    pub fn run(self, layout: &DataLayout) -> Result<(), HubError> {
        let cfg = HubConfig {
            split: self.split,
            image_column: self.image_column,
            limit: self.limit,
            // Its own folder under data/raw/ (the id is checked by `fetch` before anything else).
            ..HubConfig::new(self.dataset, &layout.raw())
        };
        let progress = crate::progress::bar(0, "listing");
        let result = fetch(&cfg, &progress);
        progress.finish_and_clear();
        let summary = result?;
        for skipped in summary.skipped.iter().take(SHOWN_SKIPS) {
            eprintln!(
                "warning: data set `{}`: {} row {}: {} (skipped; the other rows are kept)",
                cfg.dataset, skipped.file, skipped.row, skipped.reason
            );
        }
        if summary.skipped.len() > SHOWN_SKIPS {
            eprintln!(
                "warning: data set `{}`: {} more rows skipped, listed in {}",
                cfg.dataset,
                summary.skipped.len() - SHOWN_SKIPS,
                display_path(&summary.folder.join(MANIFEST))
            );
        }
        if let Some(stale) = &summary.stale_cache {
            eprintln!("warning: {stale}");
        }
        let c = &summary.counts;
        println!(
            "{} images in {} ({} new, {} already there, {} rows skipped){}",
            c.images,
            display_path(&summary.folder),
            c.written,
            c.already_there,
            c.skipped,
            if summary.limited {
                " (stopped at --limit: raise it to go on)"
            } else {
                ""
            }
        );
        println!(
            "data set `{}` at revision {}; licence as published: {}",
            cfg.dataset, summary.revision, summary.license
        );
        println!("next: cargo run --release --bin chapter-03");
        Ok(())
    }
}

//! Chapter 3 — Cleaning: turn the raw logos into a clean, augmented training set.
//!
//! With no arguments: unpack the vendored logos if needed (chapter 2's offline default), clean
//! them to 64×64, triple them by augmentation, and write the report and previews under
//! `data/processed/64px/`.

use anyhow::Result;
use clap::Parser;
use logogan::cli::DataDirArg;
use logogan::data::augment::{AugmentConfig, Variant};
use logogan::data::clean::CleanConfig;
use logogan::data::pipeline::{build_dataset, DatasetConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see logogan::cli::init

/// Clean the raw logos (SVG → PNG, white background, no words, no near-duplicates, square,
/// resized) and augment them (mirror + recolour) into the training set.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Output image size in pixels: 32, 64 or 128.
    #[arg(long, default_value_t = 64)]
    size: u32,
    #[command(flatten)]
    data: DataDirArg,
    /// Augmented copies of each clean image (comma-separated: mirror, recolour, mirror-recolour).
    #[arg(long, value_delimiter = ',', default_value = "mirror,recolour")]
    variants: Vec<Variant>,
    /// Only clean; do not augment.
    #[arg(long)]
    no_augment: bool,
    /// Seed of the augmentation's random colours and of the preview's sample.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Drop images with more than this many letter-like shapes in a row (the text heuristic).
    #[arg(long, default_value_t = CleanConfig::default().max_glyphs_in_row)]
    max_glyphs_in_row: usize,
    /// Near-duplicate threshold: hash bits (of 256) that may differ.
    #[arg(long, default_value_t = CleanConfig::default().max_duplicate_distance)]
    max_duplicate_distance: u32,
}

fn main() -> Result<()> {
    logogan::cli::init();
    let args = Args::parse();
    let layout = args.data.layout();
    let cfg = DatasetConfig {
        clean: CleanConfig {
            image_size: args.size,
            max_glyphs_in_row: args.max_glyphs_in_row,
            max_duplicate_distance: args.max_duplicate_distance,
            ..CleanConfig::default()
        },
        augment: (!args.no_augment).then(|| AugmentConfig {
            variants: args.variants.clone(),
            seed: args.seed,
        }),
        split: Default::default(),
    };
    let report = build_dataset(&layout, &cfg, true)?;
    print!("{}", report.summary(&layout, args.size));
    Ok(())
}

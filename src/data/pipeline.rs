//! The whole data path of chapters 2 and 3 in one call: gather (offline default), clean, augment,
//! previews. `chapter-03` with no arguments runs [`build_dataset`] with the defaults.

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::augment::{augment_folder, preview_grid, AugmentConfig, AugmentSummary};
use super::clean::{clean_folder, list_images, CleanConfig, CleanSummary};
use super::sources::{unpack_vendored, UnpackedSource};
use crate::error::{Error, Result};
use crate::fsutil::save_png;
use crate::paths::DataLayout;
use crate::viz::image_grid;

/// Settings of the data pipeline.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct DatasetConfig {
    pub clean: CleanConfig,
    /// `None` skips augmentation: `train/` then holds the clean images only.
    pub augment: Option<AugmentConfig>,
}

impl DatasetConfig {
    /// The defaults with augmentation on (mirror + recolour, ×3).
    pub fn with_augmentation() -> Self {
        Self {
            clean: CleanConfig::default(),
            augment: Some(AugmentConfig::default()),
        }
    }
}

/// What [`build_dataset`] did, with the time each step took.
#[derive(Debug, Clone)]
pub struct DatasetReport {
    pub unpacked: Vec<UnpackedSource>,
    pub clean: CleanSummary,
    pub augment: Option<AugmentSummary>,
    pub train_dir: PathBuf,
    pub train_images: usize,
    pub preview_clean: PathBuf,
    pub preview_augment: Option<PathBuf>,
    pub seconds_unpack: f64,
    pub seconds_augment: f64,
}

/// Chapter 2's offline default: make sure the vendored logos are unpacked into `data/raw/`.
pub fn ensure_raw(layout: &DataLayout) -> Result<Vec<UnpackedSource>> {
    unpack_vendored(&layout.vendor(), &layout.raw())
}

/// Unpack (if needed), clean, augment and preview. Returns where the training images are.
pub fn build_dataset(
    layout: &DataLayout,
    cfg: &DatasetConfig,
    show_progress: bool,
) -> Result<DatasetReport> {
    cfg.clean.validate()?;
    if cfg.augment.as_ref().is_some_and(|a| a.variants.is_empty()) {
        return Err(Error::config(
            "augment.variants",
            "empty: use no augmentation instead",
        ));
    }
    let size = cfg.clean.image_size;
    let start = Instant::now();
    let unpacked = ensure_raw(layout)?;
    let seconds_unpack = start.elapsed().as_secs_f64();

    let progress = if show_progress {
        crate::progress::bar(0, "cleaning")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let processed = layout.processed(size);
    let clean = clean_folder(
        &layout.raw(),
        &processed,
        &cfg.clean,
        &progress,
        show_progress,
    )?;

    let start = Instant::now();
    let train_dir = layout.train(size);
    let (augment, preview_augment) = match &cfg.augment {
        Some(aug) => {
            let summary = augment_folder(&clean.clean_dir, &train_dir, aug)?;
            let preview = processed.join("preview-augment.png");
            save_png(&preview, &preview_grid(&clean.clean_dir, aug, 8)?)?;
            (Some(summary), Some(preview))
        }
        None => {
            let summary = augment_folder(
                &clean.clean_dir,
                &train_dir,
                &AugmentConfig {
                    variants: vec![],
                    seed: 0,
                },
            )?;
            let _ = summary;
            (None, None)
        }
    };
    let seconds_augment = start.elapsed().as_secs_f64();
    let preview_clean = processed.join("preview-clean.png");
    save_png(&preview_clean, &sample_grid(&clean.clean_dir, 64, 8, 0)?)?;
    let train_images = list_images(&train_dir)?.len();
    Ok(DatasetReport {
        unpacked,
        clean,
        augment,
        train_dir,
        train_images,
        preview_clean,
        preview_augment,
        seconds_unpack,
        seconds_augment,
    })
}

/// The training folder for `image_size`, building the default dataset first if it is missing.
pub fn ensure_dataset(
    layout: &DataLayout,
    image_size: u32,
    show_progress: bool,
) -> Result<PathBuf> {
    let train = layout.train(image_size);
    if train.is_dir() && !list_images(&train)?.is_empty() {
        return Ok(train);
    }
    let cfg = DatasetConfig {
        clean: CleanConfig {
            image_size,
            ..CleanConfig::default()
        },
        augment: Some(AugmentConfig::default()),
    };
    Ok(build_dataset(layout, &cfg, show_progress)?.train_dir)
}

/// A grid of `count` images picked at random (with `seed`) from `dir`.
pub fn sample_grid(
    dir: &std::path::Path,
    count: usize,
    columns: usize,
    seed: u64,
) -> Result<image::RgbImage> {
    let files = list_images(dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let chosen = rand::seq::index::sample(&mut rng, files.len(), count.min(files.len()));
    let tiles = chosen
        .iter()
        .map(|i| {
            let path = dir.join(&files[i]);
            Ok(image::open(&path)
                .map_err(|e| Error::bad_input(&path, e.to_string()))?
                .to_rgb8())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(image_grid(&tiles, columns, 2))
}

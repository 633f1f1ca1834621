//! The whole data path of chapters 2 and 3 in one call: gather (offline default), clean, augment,
//! previews. `chapter-03` with no arguments runs [`build_dataset`] with the defaults.

use std::path::PathBuf;
use std::time::Instant;

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::augment::{augment_files, preview_grid, AugmentConfig, AugmentSummary};
use super::clean::{clean_folder, list_images, CleanConfig, CleanSummary};
use super::sources::{unpack_vendored, UnpackedSource};
use super::split::{write_split, Side, SplitConfig, SplitRow};
use crate::error::{Error, Result};
use crate::fsutil::save_png;
use crate::paths::{display_path, DataLayout};
use crate::viz::image_grid;

/// Settings of the data pipeline.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct DatasetConfig {
    pub clean: CleanConfig,
    /// `None` skips augmentation: `train/` then holds the clean images only.
    pub augment: Option<AugmentConfig>,
    /// Which clean logos are held out of training (the judge's floor).
    #[serde(default)]
    pub split: SplitConfig,
}

impl DatasetConfig {
    /// The defaults with augmentation on (mirror + recolour, ×3).
    pub fn with_augmentation() -> Self {
        Self {
            clean: CleanConfig::default(),
            augment: Some(AugmentConfig::default()),
            split: SplitConfig::default(),
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
    /// Clean logos on each side of the split, and the held-out folder (augmented like train/).
    pub train_logos: usize,
    pub held_out_logos: usize,
    pub held_out_dir: PathBuf,
    pub held_out_images: usize,
    pub preview_clean: PathBuf,
    pub preview_augment: Option<PathBuf>,
    pub seconds_unpack: f64,
    pub seconds_augment: f64,
}

impl DatasetReport {
    /// What was built, for a person: sources, the cleaning table, the split, the folders, the
    /// previews and the time each step took. `size` is the images' side, `layout` where they are.
    pub fn summary(&self, layout: &DataLayout, size: u32) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        for source in &self.unpacked {
            let state = match (source.already_done, source.missing) {
                (true, _) => "already unpacked".to_string(),
                (false, 0) => "unpacked".to_string(),
                (false, n) => format!("{n} deleted from data/raw/ were restored"),
            };
            let _ = writeln!(s, "{:<20} {:>5} SVGs ({state})", source.id, source.total);
        }
        let _ = writeln!(s, "\nCleaning ({size} px): {:.1} s", self.clean.seconds);
        s += &self.clean.table();
        let clean_dir = display_path(&self.clean.clean_dir);
        let _ = writeln!(s, "\n{} clean images in {clean_dir}", self.clean.kept);
        let _ = writeln!(
            s,
            "split: {} logos train, {} held out (never trained on; the judge's floor), see {}",
            self.train_logos,
            self.held_out_logos,
            display_path(&layout.split(size))
        );
        let factor = self.train_images as f64 / self.train_logos.max(1) as f64;
        let _ = writeln!(
            s,
            "{} training images (×{factor:.0}) in {}, {} held-out images in {} ({:.1} s)",
            self.train_images,
            display_path(&self.train_dir),
            self.held_out_images,
            display_path(&self.held_out_dir),
            self.seconds_augment
        );
        let report = layout.processed(size).join("report.csv");
        let _ = writeln!(s, "report : {}", display_path(&report));
        let _ = writeln!(s, "preview: {}", display_path(&self.preview_clean));
        if let Some(p) = &self.preview_augment {
            let _ = writeln!(s, "preview: {}", display_path(p));
        }
        let _ = writeln!(
            s,
            "data steps took {:.1} s (unpack {:.1} s, clean {:.1} s, augment {:.1} s)",
            self.seconds_unpack + self.clean.seconds + self.seconds_augment,
            self.seconds_unpack,
            self.clean.seconds,
            self.seconds_augment
        );
        s
    }
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
    cfg.split.validate()?;
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
    // Split before augmenting, so that a logo's variants stay on its side.
    let files = list_images(&clean.clean_dir)?;
    let names: Vec<String> = files
        .iter()
        .map(|f| f.to_string_lossy().into_owned())
        .collect();
    let stems: Vec<&str> = names.iter().map(|n| n.trim_end_matches(".png")).collect();
    let sides = cfg.split.assign(&stems);
    let on = |want: Side| -> Vec<PathBuf> {
        files
            .iter()
            .zip(&sides)
            .filter(|(_, side)| **side == want)
            .map(|(f, _)| f.clone())
            .collect()
    };
    let (train_files, held_out_files) = (on(Side::Train), on(Side::HeldOut));
    if train_files.is_empty() || held_out_files.is_empty() {
        return Err(Error::bad_input(
            &clean.clean_dir,
            format!(
                "{} clean images cannot be split into train and held-out sides: gather more logos",
                files.len()
            ),
        ));
    }
    let rows: Vec<SplitRow> = names
        .into_iter()
        .zip(sides)
        .map(|(name, side)| SplitRow { name, side })
        .collect();
    let no_variants = AugmentConfig {
        variants: vec![],
        seed: 0,
    };
    let aug = cfg.augment.as_ref().unwrap_or(&no_variants);
    let train_dir = layout.train(size);
    let held_out_dir = layout.held_out(size);
    let summary = augment_files(&clean.clean_dir, &train_files, &train_dir, aug)?;
    augment_files(&clean.clean_dir, &held_out_files, &held_out_dir, aug)?;
    // Written last: its presence says the folders above are complete and split.
    write_split(&layout.split(size), &rows)?;
    let (augment, preview_augment) = match &cfg.augment {
        Some(aug) => {
            let preview = processed.join("preview-augment.png");
            save_png(&preview, &preview_grid(&clean.clean_dir, aug, 8)?)?;
            (Some(summary), Some(preview))
        }
        None => (None, None),
    };
    let seconds_augment = start.elapsed().as_secs_f64();
    let preview_clean = processed.join("preview-clean.png");
    save_png(&preview_clean, &sample_grid(&clean.clean_dir, 64, 8, 0)?)?;
    let train_images = list_images(&train_dir)?.len();
    let held_out_images = list_images(&held_out_dir)?.len();
    Ok(DatasetReport {
        unpacked,
        clean,
        augment,
        train_dir,
        train_images,
        train_logos: train_files.len(),
        held_out_logos: held_out_files.len(),
        held_out_dir,
        held_out_images,
        preview_clean,
        preview_augment,
        seconds_unpack,
        seconds_augment,
    })
}

/// The training folder for `image_size`, building the default dataset first if it is missing
/// (or was built before the train / held-out split existed).
pub fn ensure_dataset(
    layout: &DataLayout,
    image_size: u32,
    show_progress: bool,
) -> Result<PathBuf> {
    let train = layout.train(image_size);
    if layout.split(image_size).is_file() && train.is_dir() && !list_images(&train)?.is_empty() {
        return Ok(train);
    }
    let cfg = DatasetConfig {
        clean: CleanConfig {
            image_size,
            ..CleanConfig::default()
        },
        ..DatasetConfig::with_augmentation()
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

//! Where the project keeps its files. Everything is relative to two roots that the user can
//! move: the data folder (vendored archives, raw images, processed datasets) and the runs folder
//! (one sub-folder per training run or chapter output).

use std::path::{Path, PathBuf};

/// Environment variable that moves the data folder.
pub const DATA_DIR_ENV: &str = "LOGOGAN_DATA_DIR";
/// Environment variable that moves the runs folder.
pub const RUNS_DIR_ENV: &str = "LOGOGAN_RUNS_DIR";

/// The repository root as seen when this library was compiled. Binaries and notebooks use it for
/// their defaults, so `cargo run` works from any working directory.
pub fn project_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The folder layout of the data steps (chapters 2 and 3).
///
/// ```text
/// data/
///   vendor/                 committed: logo archives + manifest.json + licences
///   raw/<source>/           chapter 2: one image file per logo, as gathered
///   processed/<N>px/        chapter 3, for image size N:
///     clean/                  cleaned N×N PNGs
///     train/                  the train side's clean logos + augmented variants: what the GAN
///                             and the judge's encoder learn from
///     held-out/               the held-out side, augmented the same way: never trained on
///     split.csv               the side of every clean logo
///     report.csv              one row per raw image: kept or dropped, why, the measures
///     summary.csv             counts per reason
///     preview-clean.png       a grid of cleaned logos
///     preview-augment.png     originals beside their variants
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataLayout {
    pub root: PathBuf,
}

impl Default for DataLayout {
    /// `$LOGOGAN_DATA_DIR`, or the `data/` folder of the repository.
    fn default() -> Self {
        let root = std::env::var_os(DATA_DIR_ENV)
            .map(PathBuf::from)
            .unwrap_or_else(|| project_root().join("data"));
        Self { root }
    }
}

impl DataLayout {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// Committed archives of real logos, with `manifest.json`.
    pub fn vendor(&self) -> PathBuf {
        self.root.join("vendor")
    }
    /// Raw images, one folder per source.
    pub fn raw(&self) -> PathBuf {
        self.root.join("raw")
    }
    /// Processed dataset for one image size.
    pub fn processed(&self, image_size: u32) -> PathBuf {
        self.root.join("processed").join(format!("{image_size}px"))
    }
    /// Cleaned images for one size.
    pub fn clean(&self, image_size: u32) -> PathBuf {
        self.processed(image_size).join("clean")
    }
    /// Training images (the train side's clean logos + augmented variants) for one size.
    pub fn train(&self, image_size: u32) -> PathBuf {
        self.processed(image_size).join("train")
    }
    /// Held-out images (the held-out side, augmented the same way): the judge's real floor.
    pub fn held_out(&self, image_size: u32) -> PathBuf {
        self.processed(image_size).join("held-out")
    }
    /// The side of every clean logo (see [`crate::data::split`]).
    pub fn split(&self, image_size: u32) -> PathBuf {
        self.processed(image_size).join("split.csv")
    }
}

/// `$LOGOGAN_RUNS_DIR`, or the `runs/` folder of the repository.
pub fn default_runs_dir() -> PathBuf {
    std::env::var_os(RUNS_DIR_ENV)
        .map(PathBuf::from)
        .unwrap_or_else(|| project_root().join("runs"))
}

/// Path shown to the user: relative to the current directory when it is inside it.
pub fn display_path(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}

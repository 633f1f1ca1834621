//! Everything a chapter needs, in one `use logogan::prelude::*;`.
//!
//! Notebooks can only name crates they depend on directly, so the crates the course's cells use
//! (candle, candle-nn, image, url) are re-exported here too.

pub use crate::data::augment::{AugmentConfig, Variant};
pub use crate::data::clean::{CleanConfig, CleanSummary, ReportRow};
pub use crate::data::dataset::ImageDataset;
pub use crate::data::pipeline::{
    build_dataset, ensure_dataset, ensure_raw, sample_grid, DatasetConfig,
};
pub use crate::data::raster::{load_image, LoadLimits};
pub use crate::data::sources::VendorManifest;
pub use crate::device::DeviceChoice;
pub use crate::environment::Environment;
pub use crate::error::{Error, Result};
pub use crate::metrics::{
    calibration_sets, density_coverage, frechet_distance, kernel_inception_distance, memorisation,
    precision_recall, score_run, two_sample_test, EncoderConfig, FeatureEncoder, Features,
    RealReference, ScoreConfig, TwoSampleConfig,
};
pub use crate::model::summary::{discriminator_table, generator_table};
pub use crate::model::{latent_noise, untrained_samples, Architecture, Gan, ModelConfig};
pub use crate::paths::{default_runs_dir, DataLayout};
pub use crate::train::charts::{discriminator_chart, loss_chart};
pub use crate::train::loss_log::read_metrics;
pub use crate::train::{Preset, RunDir, TrainConfig, Trainer};
pub use crate::viz::plot::render_png;
pub use crate::viz::{image_grid, side_by_side, tensor_to_images, Figure};
pub use candle_core::{DType, Device, Tensor};
pub use image::RgbImage;
pub use {candle_core, candle_nn, image, url};

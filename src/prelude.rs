//! Everything a chapter needs, in one `use logogan::prelude::*;`.

pub use crate::data::augment::{AugmentConfig, Variant};
pub use crate::data::clean::{CleanConfig, CleanSummary, ReportRow};
pub use crate::data::dataset::ImageDataset;
pub use crate::data::pipeline::{
    build_dataset, ensure_dataset, ensure_raw, sample_grid, DatasetConfig,
};
pub use crate::data::raster::{load_image, LoadLimits};
pub use crate::data::sources::VendorManifest;
pub use crate::environment::Environment;
pub use crate::error::{Error, Result};
pub use crate::paths::{default_runs_dir, DataLayout};
pub use crate::viz::{image_grid, side_by_side, tensor_to_images, Figure};
pub use candle_core::{DType, Device, Tensor};
pub use image::RgbImage;

//! The data path: gathering (chapter 2), cleaning and augmentation (chapter 3), loading.

pub mod augment;
pub mod clean;
pub mod dataset;
#[cfg(feature = "gather")]
pub mod download;
pub mod format;
#[cfg(feature = "gather")]
pub mod http;
#[cfg(feature = "hub")]
pub mod hub;
pub mod pipeline;
pub mod raster;
pub mod rules;
pub mod sources;
#[cfg(feature = "gather")]
pub mod spider;
pub mod split;
pub mod svg_cost;

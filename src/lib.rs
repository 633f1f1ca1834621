//! # LogoGAN
//!
//! The library behind the LogoGAN course: everything the chapters' binaries, notebooks and book
//! run lives here, once.
//!
//! * [`data`]: real logos (vendored offline sources, a spider, a downloader), cleaning,
//!   augmentation and loading into candle tensors;
//! * [`model`]: the generator and the discriminator (LogoGan's design and the classic DCGAN);
//! * [`train`]: loss, optimiser, training loop, checkpoints, metrics, the run's charts;
//! * [`metrics`]: quality measures of generated images (Fréchet distance, KID, precision and
//!   recall, memorisation);
//! * [`gan2d`]: the same game on points in the plane, small enough to watch (chapter 1);
//! * [`sweep`]: several short runs that differ in a few settings, scored and ranked;
//! * [`viz`]: image grids, charts, GIFs and inline figures;
//! * [`environment`]: what the machine and the build can do;
//! * [`ops`]: the speed engine (GEMM convolutions, fused kernels, in-place Adam, the allocator),
//!   apart from the course's code, which uses only its public API.
//!
//! A notebook needs a single `use logogan::prelude::*;`.

#[forbid(unsafe_code)]
pub mod cli;
#[forbid(unsafe_code)]
pub mod data;
#[forbid(unsafe_code)]
pub mod device;
#[forbid(unsafe_code)]
pub mod environment;
#[forbid(unsafe_code)]
pub mod error;
#[forbid(unsafe_code)]
pub mod fsutil;
#[forbid(unsafe_code)]
pub mod gan2d;
#[forbid(unsafe_code)]
pub mod metrics;
#[forbid(unsafe_code)]
pub mod model;
/// The only module with `unsafe` code (FFI to the allocator, CUDA launches).
pub mod ops;
#[forbid(unsafe_code)]
pub mod paths;
#[forbid(unsafe_code)]
pub mod prelude;
#[forbid(unsafe_code)]
pub mod progress;
#[forbid(unsafe_code)]
pub mod sweep;
#[forbid(unsafe_code)]
pub mod train;
#[forbid(unsafe_code)]
pub mod viz;

pub use error::{Error, Result};

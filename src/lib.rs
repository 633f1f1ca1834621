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

// The course's code is safe Rust; `ops` alone may opt out (FFI to the allocator, CUDA launches).
#![deny(unsafe_code)]

pub mod cli;
pub mod data;
pub mod device;
pub mod environment;
pub mod error;
pub mod fsutil;
pub mod gan2d;
pub mod metrics;
pub mod model;
/// The only module with `unsafe` code (FFI to the allocator, CUDA launches).
#[allow(unsafe_code)]
pub mod ops;
pub mod paths;
pub mod prelude;
pub mod progress;
pub mod sweep;
pub mod train;
pub mod viz;

pub use error::{Error, Result};

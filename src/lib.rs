//! # LogoGAN
//!
//! The library behind the LogoGAN course: everything the chapters' binaries, notebooks and book
//! run lives here, once.
//!
//! * [`data`]: real logos (vendored offline sources, a spider, a downloader), cleaning,
//!   augmentation and loading into candle tensors;
//! * [`viz`]: image grids and inline figures;
//! * [`environment`]: what the machine and the build can do.
//!
//! A notebook needs a single `use logogan::prelude::*;`.

pub mod data;
pub mod environment;
pub mod error;
pub mod fsutil;
pub mod paths;
pub mod prelude;
pub mod progress;
pub mod viz;

pub use error::{Error, Result};

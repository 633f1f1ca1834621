//! What the chapters' binaries share: the flags for the device and the data and runs folders,
//! and the set-up every binary does first.

use std::path::PathBuf;

use candle_core::Device;

use crate::device::DeviceChoice;
use crate::error::Result;
use crate::paths::{default_runs_dir, DataLayout};

/// `--device`, `--data-dir` and `--runs-dir`, flattened into a binary's own flags.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    /// auto, cpu, cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
    /// Data folder. Default: $LOGOGAN_DATA_DIR or the repository's data/.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Runs folder. Default: $LOGOGAN_RUNS_DIR or the repository's runs/.
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
}

impl CommonArgs {
    pub fn open_device(&self) -> Result<Device> {
        self.device.open()
    }

    pub fn layout(&self) -> DataLayout {
        self.data_dir
            .clone()
            .map(DataLayout::new)
            .unwrap_or_default()
    }

    pub fn runs(&self) -> PathBuf {
        self.runs_dir.clone().unwrap_or_else(default_runs_dir)
    }
}

/// What every binary does first: refuse a misspelt `LOGOGAN_SIMD` before any work, and keep
/// freed memory for the many short-lived tensors (see [`crate::ops::allocator`]). The binary
/// declares `mimalloc::MiMalloc` its global allocator.
pub fn init() {
    if let Err(message) = crate::ops::cpu_gemm::check_simd_setting() {
        eprintln!("error: {message}");
        std::process::exit(2);
    }
    crate::ops::allocator::tune_for_tensors();
}

#[cfg(feature = "gather")]
pub mod gather;
#[cfg(feature = "hub")]
pub mod hub;
pub mod judge;
pub mod train;

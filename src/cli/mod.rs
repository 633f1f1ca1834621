//! What the chapters' binaries share: the flags for the device and the data and runs folders,
//! and the set-up every binary does first.

use std::path::PathBuf;

use candle_core::Device;

use crate::device::DeviceChoice;
use crate::error::Result;
use crate::paths::{default_runs_dir, DataLayout};

/// `--device`: where tensors live. Flattened into every binary that computes
/// (`#[command(flatten)] device: DeviceArg`), so the flag has one name, one default and one help.
#[derive(clap::Args, Debug, Clone)]
pub struct DeviceArg {
    /// auto (a GPU when built with the cuda feature and one is there, else the CPU), cpu,
    /// cuda or cuda:N.
    #[arg(long, default_value = "auto")]
    pub device: DeviceChoice,
}

impl DeviceArg {
    pub fn open(&self) -> Result<Device> {
        self.device.open()
    }
}

/// `--data-dir`: the folder of logos, data sets and the judge's encoder.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct DataDirArg {
    /// Data folder (vendored archives, raw/, processed/, the judge's encoder). Default:
    /// $LOGOGAN_DATA_DIR or the repository's data/.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

impl DataDirArg {
    pub fn layout(&self) -> DataLayout {
        self.data_dir
            .clone()
            .map(DataLayout::new)
            .unwrap_or_default()
    }
}

/// `--runs-dir`: the folder of training runs.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct RunsDirArg {
    /// Runs folder. Default: $LOGOGAN_RUNS_DIR or the repository's runs/.
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
}

impl RunsDirArg {
    pub fn runs(&self) -> PathBuf {
        self.runs_dir.clone().unwrap_or_else(default_runs_dir)
    }
}

/// `--device`, `--data-dir` and `--runs-dir` together, for the binaries that train.
#[derive(clap::Args, Debug, Clone)]
pub struct CommonArgs {
    #[command(flatten)]
    pub device: DeviceArg,
    #[command(flatten)]
    pub data: DataDirArg,
    #[command(flatten)]
    pub runs: RunsDirArg,
}

impl CommonArgs {
    pub fn open_device(&self) -> Result<Device> {
        self.device.open()
    }

    pub fn layout(&self) -> DataLayout {
        self.data.layout()
    }

    pub fn runs(&self) -> PathBuf {
        self.runs.runs()
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

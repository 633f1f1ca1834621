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
    #[cfg(not(target_arch = "wasm32"))]
    crate::ops::allocator::tune_for_tensors();
}

#[cfg(feature = "gather")]
pub mod gather;
#[cfg(feature = "hub")]
pub mod hub;
pub mod judge;
pub mod train;

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct Tool {
        #[command(flatten)]
        data: DataDirArg,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Subcommand, Debug)]
    enum Sub {
        Train(CommonOnly),
    }

    #[derive(clap::Args, Debug)]
    struct CommonOnly {
        #[command(flatten)]
        device: DeviceArg,
        #[command(flatten)]
        runs: RunsDirArg,
    }

    #[test]
    fn the_shared_flags_parse_the_same_wherever_they_are_flattened() {
        Tool::command().debug_assert();
        Args::command().debug_assert();
        // --data-dir is global: accepted before or after a subcommand.
        for line in [
            vec!["tool", "--data-dir", "d", "train", "--device", "cpu"],
            vec!["tool", "train", "--data-dir", "d", "--runs-dir", "r"],
        ] {
            let tool = Tool::try_parse_from(&line).unwrap();
            assert_eq!(
                tool.data.layout().vendor(),
                PathBuf::from("d/vendor"),
                "{line:?}"
            );
            let Sub::Train(args) = tool.command;
            let cpu_named = line.contains(&"cpu");
            assert_eq!(
                args.device.device == DeviceChoice::Cpu,
                cpu_named,
                "{line:?}"
            );
            assert_eq!(
                args.runs.runs() == std::path::Path::new("r"),
                line.contains(&"r")
            );
        }
        let err = Tool::try_parse_from(["tool", "train", "--device", "tpu"]).unwrap_err();
        assert!(err.to_string().contains("tpu"), "{err}");
    }

    #[derive(Parser, Debug)]
    struct Args {
        #[command(flatten)]
        common: CommonArgs,
    }
}

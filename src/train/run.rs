//! The files of one run: `runs/<name>/`.
//!
//! ```text
//! runs/<name>/
//!   config.json               the TrainConfig and where/when/how it ran (written before step 1)
//!   metrics.csv               one row per step: losses, D(x), D(G(z))
//!   samples/epoch-0001.png    8×8 grid from the fixed noise, every epoch
//!   checkpoints/              latest.json + step-NNNNNNN.safetensors
//!   loss.png, loss.svg        D and G losses
//!   d_outputs.png, .svg       D(x) and D(G(z))
//!   progress.gif              the epoch grids, animated
//! ```

use std::path::{Path, PathBuf};

use super::config::TrainConfig;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;

/// Paths inside a run folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    pub root: PathBuf,
}

impl RunDir {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    pub fn config(&self) -> PathBuf {
        self.root.join("config.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.root.join("metrics.csv")
    }
    pub fn samples(&self) -> PathBuf {
        self.root.join("samples")
    }
    pub fn sample(&self, epoch: u64) -> PathBuf {
        self.samples().join(format!("epoch-{epoch:04}.png"))
    }
    pub fn checkpoints(&self) -> PathBuf {
        self.root.join("checkpoints")
    }
    pub fn generated(&self) -> PathBuf {
        self.root.join("generated")
    }
}

/// `config.json`: the settings and the circumstances of a run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunRecord {
    pub config: TrainConfig,
    /// The folder of training images.
    pub data: PathBuf,
    /// Images actually used.
    pub images: usize,
    pub device: String,
    /// `git rev-parse HEAD` of the project when the run started, if known.
    pub commit: String,
    /// Start time, RFC 3339 (UTC).
    pub started: String,
    pub logogan_version: String,
}

impl RunRecord {
    pub fn save(&self, run: &RunDir) -> Result<()> {
        write_atomic(&run.config(), &serde_json::to_vec_pretty(self)?)
    }

    pub fn load(run: &RunDir) -> Result<Self> {
        let path = run.config();
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::bad_input(&path, format!("not a run folder (no config.json: {e})"))
        })?;
        let mut record: Self = serde_json::from_str(&text)
            .map_err(|e| Error::bad_input(&path, format!("damaged run config: {e}")))?;
        // Runs saved before the architecture was recorded: name it from the settings, so they
        // compare equal to the same settings made today (a sweep resumes them).
        let model = &mut record.config.model;
        model.architecture = Some(model.architecture());
        Ok(record)
    }
}

/// The project's git commit, when the library sits in a git checkout and git is installed.
pub fn current_commit() -> String {
    // A binary carried to a machine without the repository's history (the GPU machine) is told
    // its commit by the environment.
    if let Ok(commit) = std::env::var("LOGOGAN_COMMIT") {
        return commit;
    }
    std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(crate::paths::project_root())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// Now, as RFC 3339 UTC with seconds.
pub fn now_rfc3339() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

/// A default run name: `<architecture>-<size>px-<UTC date and time>`.
pub fn default_run_name(config: &TrainConfig, architecture: &str) -> String {
    let stamp: String = now_rfc3339()
        .chars()
        .filter(|c| c.is_ascii_digit())
        .take(12)
        .collect();
    format!(
        "{architecture}-{}px-{}-{}",
        config.image_size(),
        &stamp[..8],
        &stamp[8..]
    )
}

/// True when `dir` already holds a run with a checkpoint.
pub fn has_checkpoint(dir: &Path) -> bool {
    RunDir::new(dir)
        .checkpoints()
        .join(super::checkpoint::LATEST)
        .exists()
}

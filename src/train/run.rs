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
use crate::error::{Error, IoResultExt, Result};
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
    /// Adaptive augmentation's strength as it moved (runs that adapt it).
    pub fn augment(&self) -> PathBuf {
        self.root.join("augment.csv")
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
    /// A conditional run's own copy of its images' families (chapter 7), read when it resumes.
    pub fn families(&self) -> PathBuf {
        self.root.join("families.csv")
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
        // The file is data: whoever reads a run (resume, generate, score, export, a sweep) gets
        // settings held to the same bounds as the flags, before anything is allocated.
        record.config.validate().map_err(|e| {
            Error::bad_input(
                &path,
                format!(
                    "{e}. This run's settings were changed after it was saved: restore the \
                     file from a backup, or start a new run"
                ),
            )
        })?;
        if record.images == 0 {
            return Err(Error::bad_input(
                &path,
                "`images` is 0: no run trains on no images; the file was damaged",
            ));
        }
        Ok(record)
    }

    /// The folder of training images the run names (`data` in `config.json`), if it is there.
    pub fn data_folder(&self, run: &RunDir) -> Result<&Path> {
        if self.data.is_dir() {
            return Ok(&self.data);
        }
        Err(Error::bad_input(
            run.config(),
            format!(
                "`data` names {}, which is not a folder here: rebuild the dataset with \
                 chapter-03 (the same size and settings), or, if it moved, write its new place \
                 into `data`",
                self.data.display()
            ),
        ))
    }
}

/// The claim of one process on a run folder: held from before its first write until the
/// trainer is dropped. Two processes started on the same folder (the same `--name` at the same
/// moment, or a `--resume` of a run still training) would interleave their `config.json`,
/// `metrics.csv` and checkpoints; the second is refused instead. The claim is an advisory lock
/// on `<run>/.lock` (`flock`), which the system releases when the process ends, killed or not,
/// so no stale claim survives a crash.
#[derive(Debug)]
pub struct RunLock {
    _file: std::fs::File,
}

/// The lock file in a run folder.
pub const LOCK_FILE: &str = ".lock";

impl RunLock {
    /// Claim `run` for this process (creating the folder), or say who holds it.
    pub fn acquire(run: &RunDir) -> Result<Self> {
        std::fs::create_dir_all(&run.root).at(&run.root)?;
        let path = run.root.join(LOCK_FILE);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .at(&path)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::bad_input(
                    &run.root,
                    "another process is training this run right now (it holds the folder's \
                     .lock): wait for it to end and then --resume, or choose another --name",
                ))
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e).at(&path),
        }
        remove_stale_temporaries(run)?;
        Ok(Self { _file: file })
    }
}

/// Remove the temporary files (`.tmp-*`) a killed process left in the run folder, its
/// checkpoints and its samples. Only called with the run's lock held, so none of them can be
/// another process's write in progress.
fn remove_stale_temporaries(run: &RunDir) -> Result<()> {
    for dir in [run.root.clone(), run.checkpoints(), run.samples()] {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let stale = entry.file_name().to_string_lossy().starts_with(".tmp-")
                && entry.file_type().is_ok_and(|t| t.is_file());
            if stale {
                std::fs::remove_file(entry.path()).at(entry.path())?;
            }
        }
    }
    Ok(())
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

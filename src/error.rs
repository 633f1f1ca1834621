//! The library's error type. Binaries and tests wrap it in `anyhow`; every variant that
//! concerns a file names it, so a message tells the reader what to look at.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the library.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading or writing a file or folder failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but its content is not what it should be (a corrupt archive, a bad CSV row).
    #[error("{}: {reason}", path.display())]
    BadInput { path: PathBuf, reason: String },
    /// A configuration value is impossible; `field` is the name the user typed.
    #[error("invalid setting `{field}`: {reason}")]
    Config { field: String, reason: String },
    /// A network operation failed in a way that stops the whole command.
    #[error("{url}: {reason}")]
    Network { url: String, reason: String },
    /// Training produced NaN or infinite values and was stopped.
    #[error(
        "training diverged at step {step}: {what}. {}",
        match last_checkpoint {
            Some(s) => format!("The last good checkpoint (step {s}) is kept. Start a new run with a lower learning rate (a resumed run keeps its settings and would diverge again), or see the book's \"When training goes wrong\"."),
            None => "No checkpoint had been written yet: start again with a lower learning rate.".to_string(),
        }
    )]
    Diverged {
        step: u64,
        what: String,
        last_checkpoint: Option<u64>,
    },
    /// A quality metric cannot be computed from what it was given (too few images, …).
    #[error("{0}")]
    Metric(String),
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
    #[error(transparent)]
    Image(#[from] image::ImageError),
    #[error(transparent)]
    Csv(#[from] csv::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A [`Error::BadInput`] for `path`.
    pub fn bad_input(path: impl AsRef<Path>, reason: impl Into<String>) -> Self {
        Error::BadInput {
            path: path.as_ref().to_path_buf(),
            reason: reason.into(),
        }
    }

    /// A [`Error::Config`] for the setting called `field`.
    pub fn config(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::Config {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

/// Attach the path an I/O error happened at.
pub trait IoResultExt<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T>;
}

impl<T> IoResultExt<T> for std::io::Result<T> {
    fn at(self, path: impl AsRef<Path>) -> Result<T> {
        self.map_err(|source| Error::Io {
            path: path.as_ref().to_path_buf(),
            source,
        })
    }
}

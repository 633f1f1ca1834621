//! The loss log, `runs/<name>/metrics.csv`: one row per training step with both losses and D's
//! verdicts; and `augment.csv`, the strength of adaptive augmentation as it moved. (What the
//! samples are worth is measured elsewhere, by `crate::metrics`.)

use std::path::{Path, PathBuf};

use super::ada::AdaAdjustment;
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::write_atomic;

/// The numbers of one step.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct StepMetrics {
    /// 1-based global step.
    pub step: u64,
    /// 1-based epoch.
    pub epoch: u64,
    /// Discriminator loss: BCE on real + BCE on fake.
    pub d_loss: f32,
    /// Generator loss: BCE of D's verdict on fakes against "real".
    pub g_loss: f32,
    /// Mean D(x): the probability D gives real images.
    pub d_real: f32,
    /// Mean D(G(z)) before D's update.
    pub d_fake: f32,
    /// Mean D(G(z)) after D's update (what the generator's step sees).
    pub d_fake_after: f32,
}

impl StepMetrics {
    pub fn is_finite(&self) -> bool {
        [
            self.d_loss,
            self.g_loss,
            self.d_real,
            self.d_fake,
            self.d_fake_after,
        ]
        .iter()
        .all(|v| v.is_finite())
    }
}

/// A row of a per-step log: its columns and the step it belongs to.
pub trait LogRow: serde::Serialize + serde::de::DeserializeOwned {
    /// The header line's column names, in the order the row serialises.
    const COLUMNS: &'static [&'static str];
    /// The training step the row was written after.
    fn step(&self) -> u64;
}

impl LogRow for StepMetrics {
    const COLUMNS: &'static [&'static str] = &[
        "step",
        "epoch",
        "d_loss",
        "g_loss",
        "d_real",
        "d_fake",
        "d_fake_after",
    ];
    fn step(&self) -> u64 {
        self.step
    }
}

impl LogRow for AdaAdjustment {
    const COLUMNS: &'static [&'static str] = &["step", "overfitting", "p"];
    fn step(&self) -> u64 {
        self.step
    }
}

/// Appends rows to a run's CSV log (`metrics.csv`, `augment.csv`), flushing after every batch
/// of rows.
pub struct CsvLog<R> {
    path: PathBuf,
    writer: csv::Writer<std::fs::File>,
    _rows: std::marker::PhantomData<R>,
}

/// `metrics.csv`: one row per step.
pub type MetricsLog = CsvLog<StepMetrics>;
/// `augment.csv`: one row each time adaptive augmentation moved its strength.
pub type AugmentLog = CsvLog<AdaAdjustment>;

impl<R: LogRow> CsvLog<R> {
    /// Open the log of a run. Rows after `keep_through_step` (written after the checkpoint a run
    /// resumes from) are removed first, so a resumed log has each step exactly once.
    pub fn open(path: &Path, keep_through_step: u64) -> Result<Self> {
        let kept: Vec<R> = if path.exists() {
            read_log_to_resume::<R>(path)?
                .into_iter()
                .filter(|m| m.step() <= keep_through_step)
                .collect()
        } else {
            vec![]
        };
        let mut w = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(Vec::new());
        w.write_record(R::COLUMNS)?;
        for row in &kept {
            w.serialize(row)?;
        }
        let bytes = w
            .into_inner()
            .map_err(|e| Error::bad_input(path, e.to_string()))?;
        write_atomic(path, &bytes)?;
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .at(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            writer: csv::WriterBuilder::new()
                .has_headers(false)
                .from_writer(file),
            _rows: std::marker::PhantomData,
        })
    }

    pub fn append(&mut self, rows: &[R]) -> Result<()> {
        for row in rows {
            self.writer
                .serialize(row)
                .map_err(|e| Error::bad_input(&self.path, format!("could not append: {e}")))?;
        }
        self.writer.flush().at(&self.path)
    }
}

/// Read a metrics file back.
pub fn read_metrics(path: &Path) -> Result<Vec<StepMetrics>> {
    crate::fsutil::read_csv(path)
}

/// Read a log to continue it. A last line cut short (the process was killed while writing it)
/// is dropped: it was written after the last flush, so after any checkpoint. A bad line
/// elsewhere is an error that says how to go on.
fn read_log_to_resume<R: LogRow>(path: &Path) -> Result<Vec<R>> {
    crate::fsutil::check_not_special(path)?;
    let mut reader =
        csv::Reader::from_path(path).map_err(|e| Error::bad_input(path, e.to_string()))?;
    let rows: Vec<_> = reader.deserialize::<R>().collect();
    let last = rows.len().saturating_sub(1);
    let mut kept = Vec::with_capacity(rows.len());
    for (i, row) in rows.into_iter().enumerate() {
        match row {
            Ok(row) => kept.push(row),
            Err(_) if i == last => {}
            Err(e) => {
                return Err(Error::bad_input(
                    path,
                    format!(
                        "row {} cannot be read ({e}); the log is damaged before its end. \
                         Delete that line (or move the file aside: the log then restarts at \
                         the checkpoint) and resume again",
                        i + 2
                    ),
                ))
            }
        }
    }
    Ok(kept)
}

/// Averages over a set of steps, for the one-line epoch summary.
pub fn mean(rows: &[StepMetrics]) -> Option<StepMetrics> {
    let last = rows.last()?;
    let n = rows.len() as f32;
    let avg = |f: fn(&StepMetrics) -> f32| rows.iter().map(f).sum::<f32>() / n;
    Some(StepMetrics {
        step: last.step,
        epoch: last.epoch,
        d_loss: avg(|m| m.d_loss),
        g_loss: avg(|m| m.g_loss),
        d_real: avg(|m| m.d_real),
        d_fake: avg(|m| m.d_fake),
        d_fake_after: avg(|m| m.d_fake_after),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(step: u64) -> StepMetrics {
        StepMetrics {
            step,
            epoch: 1,
            d_loss: 1.0,
            g_loss: 2.0,
            d_real: 0.5,
            d_fake: 0.4,
            d_fake_after: 0.3,
        }
    }

    #[test]
    fn reopening_drops_rows_after_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("metrics.csv");
        let mut log = MetricsLog::open(&path, 0).unwrap();
        log.append(&[row(1), row(2), row(3)]).unwrap();
        drop(log);
        let mut log = MetricsLog::open(&path, 2).unwrap();
        log.append(&[row(3)]).unwrap();
        let steps: Vec<u64> = read_metrics(&path)
            .unwrap()
            .iter()
            .map(|m| m.step)
            .collect();
        assert_eq!(steps, [1, 2, 3]);

        // Killed while writing a row: resuming drops the torn line instead of refusing.
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("4,1,0.5,0.");
        std::fs::write(&path, &text).unwrap();
        assert!(
            read_metrics(&path).is_err(),
            "the torn line is really unreadable"
        );
        drop(MetricsLog::open(&path, 3).unwrap());
        assert_eq!(read_metrics(&path).unwrap().len(), 3);
        // A damaged row in the middle is an error that names the row and the way out.
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replacen("\n2,", "\nx,", 1);
        std::fs::write(&path, text).unwrap();
        let err = MetricsLog::open(&path, 3).err().unwrap().to_string();
        assert!(
            err.contains("row 3") && err.contains("move the file aside"),
            "{err}"
        );
        assert_eq!(mean(&[row(1), row(2)]).unwrap().g_loss, 2.0);
        assert!(!StepMetrics {
            d_loss: f32::NAN,
            ..row(1)
        }
        .is_finite());
    }
}

//! Chapter 6's sweeps: several short training runs that differ in a few settings, each scored,
//! ranked in one table.
//!
//! A sweep file (TOML) names a base configuration and the trials, as a list, a grid, or both:
//!
//! ```toml
//! name = "stability"          # runs/stability/<trial>/
//! [base]                      # settings every trial starts from
//! preset = "quick"
//! epochs = 3
//! [score]
//! samples = 500
//! [[trial]]
//! name = "baseline"
//! [[trial]]
//! name = "hinge"
//! loss = "hinge"
//! [grid]                      # every combination becomes a trial too
//! lr_d = [2e-4, 4e-4]
//! ema_decay = [0.999]
//! ```
//!
//! Trials run one after another. A sweep is resumable: a finished trial (final checkpoint and
//! score present) is skipped, an interrupted one resumes from its last checkpoint.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::Device;

use crate::data::dataset::ImageDataset;
use crate::data::pipeline::ensure_dataset;
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::write_atomic;
use crate::metrics::score::{score_run, ScoreConfig, ScoreReport};
use crate::paths::DataLayout;
use crate::train::checkpoint;
use crate::train::config::Overrides;
use crate::train::{RunDir, RunRecord, TrainConfig, Trainer};
use crate::viz::plot::{save_chart, BarChart};

/// A sweep file.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub name: String,
    #[serde(default)]
    pub base: Overrides,
    #[serde(default)]
    pub score: Option<ScoreConfig>,
    #[serde(default)]
    pub trial: Vec<Overrides>,
    /// Setting name → values; every combination is a trial.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
}

impl SweepFile {
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        toml::from_str(&text)
            .map_err(|e| Error::bad_input(path, format!("not a valid sweep file: {e}")))
    }

    /// Every trial: the listed ones, then the grid's combinations, each over the base, each
    /// with a unique name and a valid configuration.
    pub fn trials(&self) -> Result<Vec<(String, TrainConfig)>> {
        let mut settings: Vec<Overrides> = self.trial.clone();
        let mut combos: Vec<toml::Table> = vec![toml::Table::new()];
        for (key, values) in &self.grid {
            if values.is_empty() {
                return Err(Error::config(format!("grid.{key}"), "has no values"));
            }
            combos = combos
                .into_iter()
                .flat_map(|c| {
                    values.iter().map(move |v| {
                        let mut c = c.clone();
                        c.insert(key.clone(), v.clone());
                        c
                    })
                })
                .collect();
        }
        if !self.grid.is_empty() {
            for combo in combos {
                let name = combo
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let mut s: Overrides = toml::Value::Table(combo)
                    .try_into()
                    .map_err(|e| Error::config("grid", format!("{e}")))?;
                s.name = Some(name.replace('"', ""));
                settings.push(s);
            }
        }
        if settings.is_empty() {
            return Err(Error::config(
                "trial",
                "the sweep has no trials: add [[trial]] entries or a [grid]",
            ));
        }
        let mut out: Vec<(String, TrainConfig)> = Vec::new();
        for (i, s) in settings.iter().enumerate() {
            let merged = self.base.overlay(s);
            let name = merged
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| format!("trial-{i}"));
            let safe = crate::fsutil::safe_file_name(&name, &format!("trial-{i}"));
            if out.iter().any(|(n, _)| *n == safe) {
                return Err(Error::config(
                    "trial.name",
                    format!("`{safe}` is used twice"),
                ));
            }
            let config = merged.config();
            config
                .validate()
                .map_err(|e| Error::config(format!("trial `{safe}`"), e.to_string()))?;
            out.push((safe, config));
        }
        Ok(out)
    }
}

/// One line of the results table.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialResult {
    pub rank: usize,
    pub trial: String,
    pub kid_x1000: f64,
    /// Standard error of the KID estimate over its random subsets (not over training seeds).
    pub kid_se_x1000: f64,
    pub frechet: f64,
    pub precision: f64,
    pub recall: f64,
    pub density: f64,
    pub coverage: f64,
    pub two_sample_accuracy: f64,
    pub memorisation_ratio: f64,
    pub floor_kid_x1000: f64,
    pub floor_two_sample_accuracy: f64,
    pub final_d_loss: f64,
    pub final_g_loss: f64,
    pub seconds: f64,
}

/// Run (or resume) every trial of `sweep` under `runs/<name>/`, score each, and write the ranked
/// table (`results.md`, `results.csv`), each trial's final grid (`<trial>.png`) and a chart of
/// the scores (`scores.png`/`.svg`). With `jobs` > 1, that many trials train at once, each on
/// its own thread (and, on a GPU, its own CUDA stream): a small GAN leaves most of a big GPU idle,
/// so trials side by side finish sooner than one after another. Every trial is seeded by its own
/// settings, so the results do not depend on `jobs`. `say` reports progress.
pub fn run_sweep(
    sweep: &SweepFile,
    runs_dir: &Path,
    layout: &DataLayout,
    device: &Device,
    jobs: usize,
    say: &(dyn Fn(String) + Sync),
) -> Result<Vec<TrialResult>> {
    let trials = sweep.trials()?;
    let root = sweep_dir(runs_dir, sweep);
    std::fs::create_dir_all(&root).at(&root)?;
    write_atomic(
        &root.join("sweep.json"),
        serde_json::to_string_pretty(sweep)?.as_bytes(),
    )?;
    let score_config = sweep.score.clone().unwrap_or_default();
    let mut train_seconds = vec![0.0; trials.len()];
    if jobs > 1 {
        train_seconds = train_in_parallel(&trials, &root, layout, device, jobs, say)?;
    }
    let mut results = Vec::new();
    for (i, (name, config)) in trials.iter().enumerate() {
        let run = root.join(name);
        let started = std::time::Instant::now();
        say(format!("trial {}/{}: {name}", i + 1, trials.len()));
        train_trial(config, &run, layout, device)?; // returns at once if already trained
        let report = match load_score(&run, &score_config) {
            Some(r) => r,
            None => score_run(&run, layout, &score_config, device, &mut |step, loss| {
                if step % 200 == 0 {
                    say(format!("  feature encoder step {step}: loss {loss:.3}"))
                }
            })?,
        };
        let last = crate::train::metrics::read_metrics(&RunDir::new(&run).metrics())?
            .last()
            .cloned()
            .ok_or_else(|| Error::bad_input(&run, "the trial has no metrics"))?;
        let grid = RunDir::new(&run).sample(last.epoch);
        if grid.is_file() {
            std::fs::copy(&grid, root.join(format!("{name}.png"))).at(&grid)?;
        }
        let (g, f) = (&report.generated, &report.real_floor);
        results.push(TrialResult {
            rank: 0,
            trial: name.clone(),
            kid_x1000: g.kid.mean * 1e3,
            kid_se_x1000: g.kid.standard_error * 1e3,
            frechet: g.frechet,
            precision: g.precision_recall.precision,
            recall: g.precision_recall.recall,
            density: g.density_coverage.density,
            coverage: g.density_coverage.coverage,
            two_sample_accuracy: g.two_sample.accuracy,
            memorisation_ratio: g.memorisation.ratio,
            floor_kid_x1000: f.kid.mean * 1e3,
            floor_two_sample_accuracy: f.two_sample.accuracy,
            final_d_loss: last.d_loss as f64,
            final_g_loss: last.g_loss as f64,
            seconds: train_seconds[i] + started.elapsed().as_secs_f64(),
        });
        say(format!(
            "  KID×1000 {:.2} (held-out floor {:.2}), two-sample accuracy {:.3}",
            g.kid.mean * 1e3,
            f.kid.mean * 1e3,
            g.two_sample.accuracy
        ));
    }
    // Ranked by KID, the headline measure: unbiased, so comparable across sample sizes.
    results.sort_by(|a, b| a.kid_x1000.total_cmp(&b.kid_x1000));
    for (i, r) in results.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    crate::fsutil::write_csv(&root.join("results.csv"), &results)?;
    write_atomic(&root.join("results.md"), results_table(&results).as_bytes())?;
    save_chart(&root, "scores", &scores_chart(&results))?;
    Ok(results)
}

/// Train every trial with `jobs` worker threads, each taking the next untrained trial. After
/// the first failure no new trial starts; the error of the first failed trial is returned.
/// Gives each trial's training time in seconds.
fn train_in_parallel(
    trials: &[(String, TrainConfig)],
    root: &Path,
    layout: &DataLayout,
    device: &Device,
    jobs: usize,
    say: &(dyn Fn(String) + Sync),
) -> Result<Vec<f64>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let failed = AtomicBool::new(false);
    let seconds = std::sync::Mutex::new(vec![0.0; trials.len()]);
    let errors = std::sync::Mutex::new(Vec::new());
    // Build each trial size's data set first (if missing), so workers do not race to build it.
    for (_, config) in trials {
        ensure_dataset(layout, config.image_size() as u32, false)?;
    }
    std::thread::scope(|scope| {
        for worker in 0..jobs.min(trials.len()) {
            let (next, failed, seconds, errors) = (&next, &failed, &seconds, &errors);
            scope.spawn(move || {
                let device = match crate::device::worker_device(device) {
                    Ok(d) => d,
                    Err(e) => {
                        failed.store(true, Ordering::SeqCst);
                        errors.lock().unwrap().push((usize::MAX, e));
                        return;
                    }
                };
                while !failed.load(Ordering::SeqCst) {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some((name, config)) = trials.get(i) else {
                        return;
                    };
                    say(format!(
                        "trial {}/{}: {name} training (worker {worker})",
                        i + 1,
                        trials.len()
                    ));
                    let started = std::time::Instant::now();
                    match train_trial(config, &root.join(name), layout, &device) {
                        Ok(()) => seconds.lock().unwrap()[i] = started.elapsed().as_secs_f64(),
                        Err(e) => {
                            failed.store(true, Ordering::SeqCst);
                            errors.lock().unwrap().push((i, e));
                        }
                    }
                }
            });
        }
    });
    let mut errors = errors.into_inner().unwrap();
    errors.sort_by_key(|(i, _)| *i);
    match errors.into_iter().next() {
        Some((i, e)) => Err(match trials.get(i) {
            Some((name, _)) => Error::config(format!("trial `{name}`"), e.to_string()),
            None => e,
        }),
        None => Ok(seconds.into_inner().unwrap()),
    }
}

/// True when `run` holds a trial with exactly `config` whose last checkpoint is its last step
/// (as many steps as the trainer takes over the run's images: whole batches, every epoch).
fn finished(config: &TrainConfig, run: &Path) -> bool {
    let (Ok(info), Ok(record)) = (
        checkpoint::load_info(&run.join("checkpoints")),
        RunRecord::load(&RunDir::new(run)),
    ) else {
        return false;
    };
    let total = (record.images / config.batch_size.max(1)) as u64 * config.epochs as u64;
    record.config == *config && info.step >= total
}

/// Train the trial into `run`: skip when finished, resume when interrupted, else start.
fn train_trial(
    config: &TrainConfig,
    run: &Path,
    layout: &DataLayout,
    device: &Device,
) -> Result<()> {
    if finished(config, run) {
        return Ok(()); // without decoding the data set again
    }
    let size = config.image_size();
    let train_dir = ensure_dataset(layout, size as u32, false)?;
    let data = ImageDataset::load(&train_dir, size, device)?;
    let mut trainer = if checkpoint::load_info(&run.join("checkpoints")).is_ok() {
        let record = RunRecord::load(&RunDir::new(run))?;
        if record.config != *config {
            return Err(Error::bad_input(
                run,
                "holds a trial with other settings: rename the trial or delete the folder",
            ));
        }
        Trainer::resume(run.to_path_buf(), &data, None)?
    } else {
        if run.exists() {
            std::fs::remove_dir_all(run).at(run)?; // a trial that never reached a checkpoint
        }
        Trainer::create(config.clone(), &data, train_dir, run.to_path_buf())?
    };
    if trainer.step() < trainer.total_steps() {
        trainer.train(None, &mut |_| {})?;
        crate::train::report::write_report(&trainer.run)?;
    }
    Ok(())
}

/// The trial's saved score, if it was made with `config` on its final checkpoint.
fn load_score(run: &Path, config: &ScoreConfig) -> Option<ScoreReport> {
    let text = std::fs::read_to_string(run.join("score.json")).ok()?;
    let report: ScoreReport = serde_json::from_str(&text).ok()?;
    let step = checkpoint::load_info(&run.join("checkpoints")).ok()?.step;
    (report.config == *config && report.step == Some(step)).then_some(report)
}

/// The ranked results as a Markdown table.
pub fn results_table(results: &[TrialResult]) -> String {
    let mut out = String::from(
        "| rank | trial | KID ×1000 ↓ (held-out floor) | two-sample accuracy ↓ (floor) | Fréchet distance ↓ | precision ↑ | recall ↑ | density ↑ | coverage ↑ | memorisation ratio | final D / G loss |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} ({:.2}) | {:.3} ({:.3}) | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} |\n",
            r.rank,
            r.trial,
            r.kid_x1000,
            r.kid_se_x1000,
            r.floor_kid_x1000,
            r.two_sample_accuracy,
            r.floor_two_sample_accuracy,
            r.frechet,
            r.precision,
            r.recall,
            r.density,
            r.coverage,
            r.memorisation_ratio,
            r.final_d_loss,
            r.final_g_loss
        ));
    }
    out
}

/// KID per trial (in rank order) beside the held-out floor.
fn scores_chart(results: &[TrialResult]) -> BarChart {
    BarChart {
        title: "KID of each trial, best first (lower is better)".into(),
        value_label: "KID ×1000 in the judge's feature space".into(),
        bars: results
            .iter()
            .map(|r| (r.trial.clone(), r.kid_x1000))
            .collect(),
        reference: results
            .first()
            .map(|r| ("held-out floor".to_string(), r.floor_kid_x1000)),
    }
}

/// Where a sweep's files go.
pub fn sweep_dir(runs_dir: &Path, sweep: &SweepFile) -> PathBuf {
    runs_dir.join(crate::fsutil::safe_file_name(&sweep.name, "sweep"))
}

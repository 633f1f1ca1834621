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
//! With `seeds = [0, 1]` every trial is trained once per seed (`<trial>-seed0`, `<trial>-seed1`)
//! and the table gives each trial's KID as mean ± standard deviation over the seeds: the spread a
//! difference between two trials must exceed before it means anything. `score_trained_generator =
//! true` also scores, for runs with an averaged generator, the generator they trained (as the trial
//! `<trial>-trained-g`): what the average adds, without a second training run.
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
use crate::metrics::families::with_families;
use crate::metrics::score::{score_run, score_run_trained_generator, ScoreConfig, ScoreReport};
use crate::paths::DataLayout;
use crate::train::checkpoint;
use crate::train::config::TrainOptions;
use crate::train::{RunDir, RunRecord, TrainConfig, Trainer};
use crate::viz::plot::{save_chart, BarChart};

/// A sweep file.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SweepFile {
    pub name: String,
    #[serde(default)]
    pub base: TrainOptions,
    #[serde(default)]
    pub score: Option<ScoreConfig>,
    #[serde(default)]
    pub trial: Vec<TrainOptions>,
    /// Setting name → values; every combination is a trial.
    #[serde(default)]
    pub grid: BTreeMap<String, Vec<toml::Value>>,
    /// Train every trial once per seed (empty: once, with the trial's own seed).
    #[serde(default)]
    pub seeds: Vec<u64>,
    /// For runs with an averaged generator, also score the generator they trained, as a trial
    /// of its own named `<trial>-trained-g` (what the average adds, without training again).
    #[serde(default)]
    pub score_trained_generator: bool,
}

/// Appended to a trial's name for the scores of its trained (not averaged) generator.
pub const TRAINED_G: &str = "-trained-g";

/// The most seeds a sweep may train each trial with.
pub const MAX_SEEDS: usize = 32;
/// Most trials in one sweep (listed and from the grid together).
pub const MAX_TRIALS: usize = 1000;

impl SweepFile {
    /// Read a sweep file and check all of it (every trial's settings and `[score]`), so that a
    /// mistake is reported before the first trial trains, naming the file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        let sweep: Self = toml::from_str(&text)
            .map_err(|e| Error::bad_input(path, format!("not a valid sweep file: {e}")))?;
        sweep
            .check()
            .map_err(|e| Error::bad_input(path, format!("{e}; nothing was trained")))?;
        Ok(sweep)
    }

    /// Every trial's settings and the score settings, checked (see [`Self::load`]).
    pub fn check(&self) -> Result<()> {
        self.runs()?;
        if let Some(score) = &self.score {
            score.validate().map_err(|e| match e {
                Error::Config { field, reason } => Error::config(format!("score.{field}"), reason),
                other => other,
            })?;
        }
        Ok(())
    }

    /// Every run of the sweep: each trial (see [`Self::trials`]) once per seed of `seeds`.
    pub fn trials(&self) -> Result<Vec<(String, TrainConfig)>> {
        Ok(self
            .runs()?
            .into_iter()
            .map(|r| (r.name, r.config))
            .collect())
    }

    /// Every run with the trial it belongs to: the listed trials, then the grid's combinations,
    /// each over the base, each once per seed, each with a unique name and a valid configuration.
    pub fn runs(&self) -> Result<Vec<SweepRun>> {
        if self.seeds.len() > MAX_SEEDS {
            return Err(Error::config(
                "seeds",
                format!("{} seeds: at most {MAX_SEEDS}", self.seeds.len()),
            ));
        }
        if let Some(dup) = self
            .seeds
            .iter()
            .enumerate()
            .find_map(|(i, s)| self.seeds[..i].contains(s).then_some(*s))
        {
            return Err(Error::config(
                "seeds",
                format!("seed {dup} is listed twice"),
            ));
        }
        let trials = self.distinct_trials()?;
        if self.seeds.is_empty() {
            return Ok(trials
                .into_iter()
                .map(|(name, config)| SweepRun {
                    trial: name.clone(),
                    name,
                    config,
                })
                .collect());
        }
        let mut runs = Vec::new();
        for (trial, config) in trials {
            for &seed in &self.seeds {
                runs.push(SweepRun {
                    name: format!("{trial}-seed{seed}"),
                    trial: trial.clone(),
                    config: TrainConfig {
                        seed,
                        ..config.clone()
                    },
                });
            }
        }
        Ok(runs)
    }

    fn distinct_trials(&self) -> Result<Vec<(String, TrainConfig)>> {
        // Count before expanding: a grid's combinations multiply (20 keys of 10 values would be
        // 10^20 trials, allocated before the first run).
        let grid_size = self
            .grid
            .values()
            .try_fold(1usize, |n, values| n.checked_mul(values.len()));
        let total = grid_size
            .filter(|_| !self.grid.is_empty())
            .unwrap_or(if self.grid.is_empty() { 0 } else { usize::MAX })
            .saturating_add(self.trial.len());
        if total > MAX_TRIALS {
            return Err(Error::config(
                if self.grid.is_empty() { "trial" } else { "grid" },
                format!(
                    "{} trials ({} listed, the grid's combinations besides): at most {MAX_TRIALS}; \
                     split the sweep into several files",
                    if total == usize::MAX { "more than 10^19".to_string() } else { total.to_string() },
                    self.trial.len()
                ),
            ));
        }
        let mut settings: Vec<TrainOptions> = self.trial.clone();
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
                let mut s: TrainOptions = toml::Value::Table(combo)
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

/// One training run of a sweep: a trial, with one seed when the sweep has `seeds`.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepRun {
    /// The run's folder name: the trial's, plus `-seed<N>` when the sweep has seeds.
    pub name: String,
    pub trial: String,
    pub config: TrainConfig,
}

/// One run's line of the results.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialResult {
    pub rank: usize,
    /// The run (its folder name).
    pub trial: String,
    /// The trial it is a seed of (the same as `trial` without seeds).
    pub group: String,
    pub seed: u64,
    /// Thousands of images shown to the discriminator (steps × batch).
    pub kimg: f64,
    /// Minutes of training (the training loop's own clock).
    pub train_minutes: f64,
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
    sweep.check()?;
    let runs = sweep.runs()?;
    let trials: Vec<(String, TrainConfig)> = runs
        .iter()
        .map(|r| (r.name.clone(), r.config.clone()))
        .collect();
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
        let last = crate::train::loss_log::read_metrics(&RunDir::new(&run).metrics())?
            .last()
            .cloned()
            .ok_or_else(|| Error::bad_input(&run, "the trial has no metrics"))?;
        let info = checkpoint::load_info(&run.join("checkpoints"))?;
        let grid = RunDir::new(&run).sample(last.epoch);
        if grid.is_file() {
            std::fs::copy(&grid, root.join(format!("{name}.png"))).at(&grid)?;
        }
        let row = |report: &ScoreReport, trial: String, group: String| {
            let (g, f) = (&report.generated, &report.real_floor);
            TrialResult {
                rank: 0,
                trial,
                group,
                seed: config.seed,
                kimg: info.step as f64 * config.batch_size as f64 / 1000.0,
                train_minutes: info.training_seconds / 60.0,
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
            }
        };
        results.push(row(&report, name.clone(), runs[i].trial.clone()));
        say(format!(
            "  KID×1000 {:.2} (held-out floor {:.2}), two-sample accuracy {:.3}",
            report.generated.kid.mean * 1e3,
            report.real_floor.kid.mean * 1e3,
            report.generated.two_sample.accuracy
        ));
        // The same run without its average: what the average adds, at no training cost.
        if sweep.score_trained_generator && config.ema_decay.is_some() {
            let trained = match load_saved_score(&run, "score-trained-g.json", &score_config) {
                Some(r) => r,
                None => score_run_trained_generator(
                    &run,
                    layout,
                    &score_config,
                    device,
                    &mut |_, _| {},
                )?,
            };
            say(format!(
                "  without the average: KID×1000 {:.2}",
                trained.generated.kid.mean * 1e3
            ));
            results.push(row(
                &trained,
                format!("{name}{TRAINED_G}"),
                format!("{}{TRAINED_G}", runs[i].trial),
            ));
        }
    }
    // Ranked by KID, the headline measure: unbiased, so comparable across sample sizes.
    results.sort_by(|a, b| a.kid_x1000.total_cmp(&b.kid_x1000));
    for (i, r) in results.iter_mut().enumerate() {
        r.rank = i + 1;
    }
    let summary = summarise(&results);
    crate::fsutil::write_csv(&root.join("results.csv"), &results)?;
    crate::fsutil::write_csv(&root.join("summary.csv"), &summary)?;
    let text = format!("{}\n{}", summary_table(&summary), results_table(&results));
    write_atomic(&root.join("results.md"), text.as_bytes())?;
    save_chart(&root, "scores", &scores_chart(&summary))?;
    Ok(results)
}

/// One trial over all its seeds.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrialSummary {
    pub rank: usize,
    pub trial: String,
    pub seeds: usize,
    pub kid_x1000_mean: f64,
    /// Standard deviation over the seeds (0 with one seed): the training run's own spread.
    pub kid_x1000_sd: f64,
    pub kid_x1000_min: f64,
    pub kid_x1000_max: f64,
    pub two_sample_accuracy_mean: f64,
    pub precision_mean: f64,
    pub recall_mean: f64,
    pub coverage_mean: f64,
    pub memorisation_ratio_mean: f64,
    pub floor_kid_x1000: f64,
    pub kimg: f64,
    pub train_minutes_mean: f64,
    /// Every seed of this trial scored a lower (better) KID than every seed of the trial ranked
    /// first, or every seed a higher one: the difference exceeds the seed spread. False for the
    /// first trial itself and whenever a trial has fewer than two seeds.
    pub apart_from_best: bool,
}

/// The mean of `values` and their standard deviation over seeds (n − 1 in the denominator; 0
/// for a single value).
pub fn mean_and_sd(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let sd = if values.len() > 1 {
        (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
    } else {
        0.0
    };
    (mean, sd)
}

/// The runs grouped by trial, ranked by mean KID.
pub fn summarise(results: &[TrialResult]) -> Vec<TrialSummary> {
    let mut groups: Vec<(&str, Vec<&TrialResult>)> = Vec::new();
    for r in results {
        match groups.iter_mut().find(|(g, _)| *g == r.group) {
            Some((_, members)) => members.push(r),
            None => groups.push((&r.group, vec![r])),
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut out: Vec<TrialSummary> = groups
        .into_iter()
        .map(|(trial, members)| {
            let of = |f: fn(&TrialResult) -> f64| members.iter().map(|r| f(r)).collect::<Vec<_>>();
            let kid = of(|r| r.kid_x1000);
            let (m, sd) = mean_and_sd(&kid);
            TrialSummary {
                rank: 0,
                trial: trial.to_string(),
                seeds: members.len(),
                kid_x1000_mean: m,
                kid_x1000_sd: sd,
                kid_x1000_min: kid.iter().copied().fold(f64::INFINITY, f64::min),
                kid_x1000_max: kid.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                two_sample_accuracy_mean: mean(&of(|r| r.two_sample_accuracy)),
                precision_mean: mean(&of(|r| r.precision)),
                recall_mean: mean(&of(|r| r.recall)),
                coverage_mean: mean(&of(|r| r.coverage)),
                memorisation_ratio_mean: mean(&of(|r| r.memorisation_ratio)),
                floor_kid_x1000: mean(&of(|r| r.floor_kid_x1000)),
                kimg: mean(&of(|r| r.kimg)),
                train_minutes_mean: mean(&of(|r| r.train_minutes)),
                apart_from_best: false,
            }
        })
        .collect();
    out.sort_by(|a, b| a.kid_x1000_mean.total_cmp(&b.kid_x1000_mean));
    if let Some(best) = out.first().cloned() {
        for (i, t) in out.iter_mut().enumerate() {
            t.rank = i + 1;
            t.apart_from_best = i > 0
                && t.seeds > 1
                && best.seeds > 1
                && (t.kid_x1000_min > best.kid_x1000_max || t.kid_x1000_max < best.kid_x1000_min);
        }
    }
    out
}

/// The trials over their seeds as a Markdown table, best mean KID first.
pub fn summary_table(summary: &[TrialSummary]) -> String {
    let mut out = String::from(
        "| rank | trial | seeds | KID ×1000 ↓ mean ± sd over seeds [min–max] | apart from the best? | two-sample accuracy ↓ | precision ↑ | recall ↑ | coverage ↑ | memorisation ratio | kimg | training minutes |\n|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for t in summary {
        let apart = match (t.rank, t.seeds) {
            (1, _) => "(best)",
            (_, 1) => "one seed: unknown",
            _ if t.apart_from_best => "yes",
            _ => "no: within the seed spread",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {:.1} ± {:.1} [{:.1}–{:.1}] | {apart} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.0} | {:.1} |\n",
            t.rank,
            t.trial,
            t.seeds,
            t.kid_x1000_mean,
            t.kid_x1000_sd,
            t.kid_x1000_min,
            t.kid_x1000_max,
            t.two_sample_accuracy_mean,
            t.precision_mean,
            t.recall_mean,
            t.coverage_mean,
            t.memorisation_ratio_mean,
            t.kimg,
            t.train_minutes_mean
        ));
    }
    if let Some(best) = summary.first() {
        out.push_str(&format!(
            "\nHeld-out floor: KID ×1000 {:.1} (real logos the GAN never saw).\n",
            best.floor_kid_x1000
        ));
    }
    out
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
        // A conditional trial (chapter 7) trains on the logo families, clustered once per k.
        let data = match config.model.classes() {
            0 => data,
            k => with_families(layout, k, data, device)?,
        };
        Trainer::create(config.clone(), &data, train_dir, run.to_path_buf())?
    };
    if trainer.step() < trainer.total_steps() {
        trainer.train(None, &mut |_| {})?;
        crate::train::charts::draw_charts(&trainer.run)?;
    }
    Ok(())
}

/// The trial's saved score, if it was made with `config` on its final checkpoint.
fn load_score(run: &Path, config: &ScoreConfig) -> Option<ScoreReport> {
    load_saved_score(run, "score.json", config)
}

fn load_saved_score(run: &Path, file: &str, config: &ScoreConfig) -> Option<ScoreReport> {
    let text = std::fs::read_to_string(run.join(file)).ok()?;
    let report: ScoreReport = serde_json::from_str(&text).ok()?;
    let step = checkpoint::load_info(&run.join("checkpoints")).ok()?.step;
    (report.config == *config && report.step == Some(step)).then_some(report)
}

/// Every run's results as a Markdown table, best KID first.
pub fn results_table(results: &[TrialResult]) -> String {
    let mut out = String::from(
        "| rank | trial | KID ×1000 ↓ (held-out floor) | two-sample accuracy ↓ (floor) | Fréchet distance ↓ | precision ↑ | recall ↑ | density ↑ | coverage ↑ | memorisation ratio | final D / G loss | kimg | training minutes |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in results {
        out.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} ({:.2}) | {:.3} ({:.3}) | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} / {:.3} | {:.0} | {:.1} |\n",
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
            r.final_g_loss,
            r.kimg,
            r.train_minutes
        ));
    }
    out
}

/// Mean KID per trial (in rank order) beside the held-out floor.
fn scores_chart(summary: &[TrialSummary]) -> BarChart {
    BarChart {
        title: "KID of each trial, best first (lower is better; mean over seeds)".into(),
        value_label: "KID ×1000 in the judge's feature space".into(),
        bars: summary
            .iter()
            .map(|t| (t.trial.clone(), t.kid_x1000_mean))
            .collect(),
        reference: summary
            .first()
            .map(|t| ("held-out floor".to_string(), t.floor_kid_x1000)),
        log_scale: false,
    }
}

/// Where a sweep's files go.
pub fn sweep_dir(runs_dir: &Path, sweep: &SweepFile) -> PathBuf {
    runs_dir.join(crate::fsutil::safe_file_name(&sweep.name, "sweep"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(group: &str, seed: u64, kid: f64) -> TrialResult {
        TrialResult {
            rank: 0,
            trial: format!("{group}-seed{seed}"),
            group: group.into(),
            seed,
            kimg: 10.0,
            train_minutes: 1.0,
            kid_x1000: kid,
            kid_se_x1000: 0.1,
            frechet: 1.0,
            precision: 0.5,
            recall: 0.5,
            density: 1.0,
            coverage: 0.5,
            two_sample_accuracy: 0.9,
            memorisation_ratio: 1.0,
            floor_kid_x1000: 20.0,
            floor_two_sample_accuracy: 0.5,
            final_d_loss: 1.0,
            final_g_loss: 1.0,
            seconds: 60.0,
        }
    }

    #[test]
    fn seeds_expand_every_trial_and_are_checked() {
        let mut sweep: SweepFile = toml::from_str(
            r#"
            name = "s"
            seeds = [3, 5]
            [base]
            preset = "tiny"
            [[trial]]
            name = "a"
            [[trial]]
            name = "b"
            loss = "hinge"
            "#,
        )
        .unwrap();
        let runs = sweep.runs().unwrap();
        let names: Vec<_> = runs.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["a-seed3", "a-seed5", "b-seed3", "b-seed5"]);
        assert_eq!(runs[1].config.seed, 5);
        assert_eq!(runs[3].trial, "b");
        assert_eq!(runs[3].config.loss, crate::train::loss::GanLoss::Hinge);
        sweep.seeds = vec![1, 1];
        assert!(sweep.runs().unwrap_err().to_string().contains("twice"));
        sweep.seeds = (0..40).collect();
        assert!(sweep.runs().unwrap_err().to_string().contains("seeds"));

        // A grid whose combinations multiply past the bound is refused before it is expanded.
        sweep.seeds = vec![];
        let mut grid = String::from("name = \"g\"\n[base]\npreset = \"tiny\"\n[grid]\n");
        for key in [
            "lr_d",
            "lr_g",
            "beta1",
            "real_label",
            "epochs",
            "batch_size",
            "latent_dim",
        ] {
            grid += &format!("{key} = [{}]\n", ["1"; 10].join(", "));
        }
        let huge: SweepFile = toml::from_str(&grid).unwrap();
        let start = std::time::Instant::now();
        let err = huge.runs().unwrap_err().to_string();
        assert!(
            err.contains("10000000 trials") && err.contains("at most 1000"),
            "{err}"
        );
        assert!(start.elapsed().as_secs_f64() < 1.0);
    }

    #[test]
    fn a_difference_counts_only_beyond_the_seed_spread() {
        let results = [
            result("overlaps", 0, 110.0),
            result("overlaps", 1, 140.0),
            result("best", 0, 100.0),
            result("best", 1, 120.0),
            result("worse", 0, 200.0),
            result("worse", 1, 260.0),
        ];
        let summary = summarise(&results);
        let order: Vec<_> = summary.iter().map(|t| t.trial.as_str()).collect();
        assert_eq!(order, ["best", "overlaps", "worse"]);
        assert_eq!(summary[0].kid_x1000_mean, 110.0);
        assert!((summary[0].kid_x1000_sd - 200f64.sqrt()).abs() < 1e-9);
        assert!(
            !summary[0].apart_from_best,
            "the best is not apart from itself"
        );
        assert!(!summary[1].apart_from_best, "110–140 overlaps 100–120");
        assert!(summary[2].apart_from_best, "200–260 lies above 100–120");
        let table = summary_table(&summary);
        assert!(table.contains("no: within the seed spread") && table.contains("| yes |"));
        // One seed each: no spread, so no difference can be called real.
        let single = summarise(&[result("a", 0, 1.0), result("b", 0, 9.0)]);
        assert!(!single[1].apart_from_best);
        assert!(summary_table(&single).contains("unknown"));
    }
}

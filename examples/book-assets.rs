//! Regenerate every figure and every shown output of the book from real runs.
//!
//! Writes PNG/GIF files to `book/src/figures/` and Markdown snippets (tables, printouts, figures
//! with their captions) to `book/src/generated/`, which the chapters include. Each caption says
//! which device, commit, seed and date made the picture. Nothing in those folders is edited by
//! hand.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Parser;
use logogan::cli::DeviceArg;
use logogan::data::clean::{examples_for_reason, CleanSummary};
use logogan::data::pipeline::{build_dataset, sample_grid, DatasetConfig, DatasetReport};
use logogan::data::sources::VendorManifest;
use logogan::device::{describe, DeviceChoice};
use logogan::environment::Environment;
use logogan::fsutil::{read_csv, save_png, write_atomic};
use logogan::metrics::floor_anatomy::{floor_anatomy, floor_anatomy_table};
use logogan::metrics::{
    calibrate, score_run, score_run_trained_generator, Calibration, CalibrationConfig,
    RealReference, Rung, ScoreConfig, ScoreReport,
};
use logogan::model::summary::{discriminator_table, generator_table};
use logogan::model::{untrained_samples, Gan, ModelConfig};
use logogan::paths::{default_runs_dir, project_root, DataLayout};
use logogan::sweep::{TrialResult, TrialSummary, TRAINED_G};
use logogan::train::charts::draw_charts;
use logogan::train::generate::TrainedGenerator;
use logogan::train::loss_log::read_metrics;
use logogan::train::run::{current_commit, now_rfc3339};
use logogan::train::{Preset, RunDir, RunRecord, TrainConfig, Trainer};
use logogan::viz::plot::{render_png, LineChart, Series, BLUE, RED};
use logogan::viz::{image_grid, side_by_side, upscale};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Regenerate the book's figures and shown outputs (book/src/figures, book/src/generated).
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Take chapter 5's pictures from this finished run (e.g. a GPU run copied from the GPU
    /// machine). Default: train `--preset quick` on this machine into runs/book-quick (once).
    #[arg(long)]
    run: Option<PathBuf>,
    // The device of the default chapter-5 run.
    #[command(flatten)]
    device: DeviceArg,
    /// Book source folder.
    #[arg(long)]
    book: Option<PathBuf>,
    /// Take chapter 6's sweep tables and grids from these finished sweeps (runs/<sweep name>;
    /// repeat the flag for several, in the order the chapter shows them: the first writes
    /// `ch06-sweep.md`, the others `ch06-sweep-<name>.md`). Without it, the chapter's sweep
    /// snippets are left as they are.
    #[arg(long)]
    sweep: Vec<PathBuf>,

    /// Take chapter 6's calibration ladder from this folder (made by `chapter-06 calibrate`;
    /// its calibration.json must match the default settings and the current encoder). Without
    /// it, the ladder is scored here into runs/calibration.
    #[arg(long)]
    calibration: Option<PathBuf>,
    /// Take chapter 6's budget table from this CSV (made by `scripts/laptop-budget.sh`: the
    /// laptop recipe at several budgets over seeds, trained and averaged generator). Without it,
    /// that snippet is left as it is.
    #[arg(long)]
    budget: Option<PathBuf>,
    /// Take chapter 6's candle-vs-PyTorch table from this comparison folder
    /// (runs/<sweep>-torch, made by reference/pytorch-dcgan/compare.py). Without it, the
    /// chapter's comparison snippet is left as it is.
    #[arg(long)]
    reference: Option<PathBuf>,
    /// Take chapter 6's time-to-quality table (candle and PyTorch) from this folder (made by
    /// reference/pytorch-dcgan/time_to_kid.py). Without it, that snippet is left as it is.
    #[arg(long)]
    time_to_kid: Option<PathBuf>,
    /// Show this finished `--preset laptop-64` run in chapter 5 beside the main run: its fresh
    /// samples at 64×64, its scores and training time. Without it, that snippet is left as it is.
    #[arg(long)]
    run_64: Option<PathBuf>,
    /// Show this finished run of `--preset collapse` in chapter 5 beside the main run: its
    /// samples and its scores. Without it, that snippet is left as it is.
    #[arg(long)]
    collapsed: Option<PathBuf>,
    /// Show this conditional run (`chapter-07`) in chapter 7: fresh samples, one family per
    /// row. Without it, that snippet is left as it is.
    #[arg(long)]
    conditional: Option<PathBuf>,
    /// Take chapter 7's comparison from this finished sweep (runs/families, made by
    /// `chapter-06 sweep data/sweeps/families.toml` and then `chapter-06 score --per-family` on
    /// each of its runs). Without it, that snippet is left as it is.
    #[arg(long)]
    families_sweep: Option<PathBuf>,
    /// Take chapter 7's comparison at the full budget from this finished sweep
    /// (runs/families-full, made by `chapter-06 sweep data/sweeps/families-full.toml`).
    #[arg(long)]
    families_full_sweep: Option<PathBuf>,
    /// Show these finished sweeps in chapter 6 after its budget table: recipe trials at the
    /// main command's budget and seeds, whose baseline is that table's rows (e.g.
    /// runs/laptop-mbstd, made by `chapter-06 sweep data/sweeps/laptop-mbstd.toml`); each
    /// writes `ch06-trial-<name>.md`. A sweep that also trains the preset, as it ships or as it
    /// shipped before the wide G (as runs/laptop-ema and runs/laptop-wide-g-avx2 do), is its own
    /// baseline, and its caption says so. Without it, those snippets are left as they are.
    #[arg(long)]
    recipe_sweep: Vec<PathBuf>,
    /// Show this finished sweep in chapter 6 as the baseline of the recipe trials on the CPU
    /// kind that trained them: the laptop preset before the wide G, over seeds (runs/laptop-baseline,
    /// made by `chapter-06 sweep data/sweeps/laptop-baseline.toml`); writes
    /// `ch06-baseline.md`. Without it, that snippet is left as it is.
    #[arg(long)]
    baseline_sweep: Option<PathBuf>,
    /// Make only the snippets of the sweeps given (`--sweep`, `--families-sweep`,
    /// `--recipe-sweep`, `--baseline-sweep`) and leave every other one as it is (a sweep re-run
    /// does not redraw the book).
    #[arg(long)]
    only_sweeps: bool,
    /// Make chapter 7's snippets only (the families, and the run of `--conditional` if given)
    /// and leave every other one as it is.
    #[arg(long)]
    only_chapter_7: bool,
}

/// Where, when and how a picture was made.
struct Provenance {
    device: String,
    commit: String,
    seed: u64,
    date: String,
}

impl Provenance {
    fn here(seed: u64) -> Self {
        Self {
            device: describe(&candle_core::Device::Cpu),
            commit: current_commit(),
            seed,
            date: now_rfc3339()[..10].to_string(),
        }
    }

    /// Where and when a training run was made, from its `config.json`.
    fn of_run(record: &RunRecord) -> Self {
        Self {
            device: record.device.clone(),
            commit: record.commit.clone(),
            seed: record.config.seed,
            date: record.started[..10].to_string(),
        }
    }

    fn caption(&self) -> String {
        format!(
            "device {}, commit `{}`, seed {}, {}",
            self.device, self.commit, self.seed, self.date
        )
    }
}

struct Book {
    figures: PathBuf,
    generated: PathBuf,
}

impl Book {
    fn figure(&self, name: &str, image: &image::RgbImage) -> Result<()> {
        save_png(&self.figures.join(name), image)?;
        Ok(())
    }

    fn snippet(&self, name: &str, text: &str) -> Result<()> {
        write_atomic(&self.generated.join(name), text.as_bytes())?;
        println!("  {name}");
        Ok(())
    }

    /// A figure with its caption, as a snippet the chapter includes.
    fn figure_with_caption(
        &self,
        snippet: &str,
        file: &str,
        alt: &str,
        caption: &str,
        p: &Provenance,
    ) -> Result<()> {
        self.snippet(snippet, &format!("![{alt}](figures/{file})\n\n*{caption}* <small>Made by `book-assets`: {}.</small>\n", p.caption()))
    }
}

fn main() -> Result<()> {
    logogan::ops::allocator::tune_for_tensors();
    let args = Args::parse();
    let root = args
        .book
        .clone()
        .unwrap_or_else(|| project_root().join("book/src"));
    let book = Book {
        figures: root.join("figures"),
        generated: root.join("generated"),
    };
    std::fs::create_dir_all(&book.figures)?;
    std::fs::create_dir_all(&book.generated)?;
    let layout = DataLayout::default();
    println!("book assets → {}", root.display());

    // Chapter 7: the families and a conditional run.
    if !args.only_sweeps {
        ch07(&book, &layout, args.conditional.as_deref())?;
    }
    if let Some(sweep) = &args.families_sweep {
        ch07_sweep(&book, sweep)?;
    }
    if let Some(sweep) = &args.families_full_sweep {
        ch07_sweep_full(&book, sweep)?;
    }
    if args.only_chapter_7 {
        return Ok(());
    }
    for sweep in &args.recipe_sweep {
        ch06_recipe_sweep(&book, sweep)?;
    }
    if let Some(sweep) = &args.baseline_sweep {
        ch06_baseline_sweep(&book, sweep)?;
    }
    if args.only_sweeps {
        for (i, sweep) in args.sweep.iter().enumerate() {
            ch06_sweep(&book, sweep, i)?;
        }
        return Ok(());
    }

    // Chapter 2: the sources.
    let manifest = VendorManifest::load(&layout.vendor())?;
    let mut table =
        String::from("| source | package | version | licence | SVGs |\n|---|---|---|---|---:|\n");
    for s in &manifest.sources {
        table.push_str(&format!(
            "| {} | `{}` | {} | {} | {} |\n",
            s.id, s.package, s.version, s.license, s.file_count
        ));
    }
    book.snippet("ch02-sources.md", &table)?;

    // Chapter 3: the cleaning report and previews.
    let report = build_dataset(&layout, &DatasetConfig::with_augmentation(), false)?;
    ch03(
        &book,
        &layout,
        &report,
        report.seconds_unpack + report.clean.seconds + report.seconds_augment,
    )?;

    // Chapter 1: real logos beside an untrained generator, and this machine.
    let p = Provenance::here(0);
    let real = sample_grid(&layout.train(64), 16, 4, 0)?;
    let fakes = untrained_samples(&ModelConfig::logogan(64), 16, 0, &candle_core::Device::Cpu)?;
    book.figure(
        "ch01-real-vs-untrained.png",
        &side_by_side(&real, &image_grid(&fakes, 4, 2), 24),
    )?;
    book.figure_with_caption(
        "ch01-real-vs-untrained.md",
        "ch01-real-vs-untrained.png",
        "16 real logos on the left, 16 outputs of an untrained generator on the right",
        "Figure 1.2 — Left: 16 logos from the training set. Right: what the generator makes before it has seen any of them.",
        &p,
    )?;
    book.snippet(
        "ch01-environment.md",
        &format!("```text\n{}\n```\n", Environment::detect()),
    )?;

    // Chapter 1: the game on points in the plane, learnt and collapsed.
    ch01_gan2d(&book, &p)?;
    // Chapter 5: the generator's gradient under the two losses.
    book.figure(
        "ch05-generator-gradients.png",
        &render_png(&generator_gradients_chart())?,
    )?;
    book.figure_with_caption(
        "ch05-generator-gradients.md",
        "ch05-generator-gradients.png",
        "the size of G's gradient against D's logit for the saturating and the non-saturating loss",
        "Figure 5.1 — How hard each loss pushes G, for one fake, against D's logit ℓ (D(G(z)) = σ(ℓ)): the saturating loss's gradient is D(G(z)), the non-saturating loss's is 1 − D(G(z)). Left, where D rejects the fake, only the non-saturating loss still pushes.",
        &p,
    )?;

    // Chapter 4: the layer tables.
    let dev = candle_core::Device::Cpu;
    let logogan = Gan::new(&ModelConfig::logogan(64), &dev, 0)?;
    book.snippet(
        "ch04-generator.md",
        &format!("{}\n", generator_table(&logogan.generator, &dev)?),
    )?;
    book.snippet(
        "ch04-discriminator.md",
        &format!("{}\n", discriminator_table(&logogan.discriminator, &dev)?),
    )?;
    let dcgan = Gan::new(&ModelConfig::dcgan(64), &dev, 0)?;
    book.snippet(
        "ch04-dcgan-discriminator.md",
        &format!("{}\n", discriminator_table(&dcgan.discriminator, &dev)?),
    )?;

    // Chapter 5: a real run, and what the quick preset's two minutes give.
    let quick = quick_run(&layout, args.device.device)?;
    let run = args.run.clone().unwrap_or_else(|| quick.clone());
    ch05(&book, &RunDir::new(&run))?;
    ch05_quick(&book, &RunDir::new(&quick))?;

    // Chapter 6: the judge's calibration ladder, then the same run scored beside the floor.
    let device = args.device.open()?;
    let score_config = ScoreConfig::default();
    let reference = RealReference::load(&layout, &score_config, &device, &mut |step, loss| {
        if step % 200 == 0 {
            println!("  feature encoder step {step}: contrastive loss {loss:.3}")
        }
    })?;
    let ladder = match &args.calibration {
        Some(dir) => {
            let ladder: Calibration = serde_json::from_str(
                &std::fs::read_to_string(dir.join("calibration.json")).with_context(|| {
                    format!("{}: run `chapter-06 calibrate` first", dir.display())
                })?,
            )?;
            anyhow::ensure!(
                ladder.encoder_version == reference.encoder.version
                    && ladder.config == CalibrationConfig::default(),
                "{}: made with other settings or another encoder; run `chapter-06 calibrate` again",
                dir.display()
            );
            ladder
        }
        None => {
            println!("  scoring the calibration ladder (minutes)");
            let ladder = calibrate(&reference, &CalibrationConfig::default(), &mut |rung, _| {
                println!("    {}", rung.label())
            })?;
            ladder.save(&default_runs_dir().join("calibration"), &reference)?;
            ladder
        }
    };
    ch06_calibration(&book, &ladder, args.calibration.as_deref())?;
    let anatomy = floor_anatomy(&reference, &score_config)?;
    book.snippet(
        "ch06-floor-anatomy.md",
        &format!(
            "{}\n*The held-out floor taken apart: real sets that differ from it in one way at a time.* <small>Made by `book-assets` (`logogan::metrics::floor_anatomy`; also `cargo run --release --example floor-anatomy`), encoder {}, seed {}.</small>\n",
            floor_anatomy_table(&anatomy),
            reference.encoder.version,
            score_config.seed
        ),
    )?;
    let report = score_run(&run, &layout, &score_config, &device, &mut |_, _| {})?;
    let record = RunRecord::load(&RunDir::new(&run))?;
    let kid = report.generated.kid.mean * 1e3;
    let heavy_blur = ladder
        .rungs
        .iter()
        .find(|r| r.rung == Rung::HeavyBlur)
        .map(|r| r.scores.kid.mean * 1e3);
    let verdict = match heavy_blur {
        Some(blur) => format!(
            "On the calibration ladder its KID ×1000 of {kid:.1} lies {}; real logos with heavy blur score {blur:.1}, so the run scores {:.1}× {} than they do.",
            ladder.place(kid),
            if kid < blur { blur / kid.max(1e-9) } else { kid / blur.max(1e-9) },
            if kid < blur { "better" } else { "worse" }
        ),
        None => format!("On the calibration ladder its KID ×1000 of {kid:.1} lies {}.", ladder.place(kid)),
    };
    book.snippet(
        "ch06-score.md",
        &format!(
            "{}
*Table 6.2 — The run of chapter 5 (step {}), scored by `chapter-06 score`: its samples and held-out logos (the floor), each against the train logos.* <small>Made by `book-assets`: run trained on {} at commit `{}`, seed {}; scored on {}, {}.</small>\n\n{verdict}\n",
            report.table(),
            report.step.unwrap_or_default(),
            record.device,
            record.commit,
            record.config.seed,
            describe(&device),
            &now_rfc3339()[..10]
        ),
    )?;
    if args.run_64.is_some() || args.collapsed.is_some() {
        let mut shown = vec![(
            "the main command (`laptop`)",
            RunDir::new(&run),
            report.clone(),
        )];
        for (label, other) in [
            ("`--preset laptop-64`", &args.run_64),
            ("`--preset collapse`", &args.collapsed),
        ] {
            if let Some(dir) = other {
                println!("  scoring {}", dir.display());
                // The generator each preset samples: `laptop-64` keeps no average (it lags at
                // that budget), so a run trained with one is judged by its trained G, which is
                // the same network (the average never feeds back into training).
                let scored = score_run_trained_generator(
                    dir,
                    &layout,
                    &score_config,
                    &device,
                    &mut |_, _| {},
                )?;
                shown.push((label, RunDir::new(dir), scored));
            }
        }
        ch05_beside(
            &book,
            &shown,
            args.run_64.as_deref(),
            args.collapsed.as_deref(),
        )?;
    }
    if let Some(csv) = &args.budget {
        ch06_budget(&book, csv)?;
    }
    for (i, sweep) in args.sweep.iter().enumerate() {
        ch06_sweep(&book, sweep, i)?;
    }
    // Tables and figures after the sweeps are numbered after them.
    let after_sweeps = args.sweep.len().max(1);
    if let Some(reference) = &args.reference {
        ch06_reference(&book, reference, 3 + after_sweeps)?;
    }
    if let Some(dir) = &args.time_to_kid {
        ch06_time_to_kid(&book, dir, 3 + after_sweeps, 3 + 2 * after_sweeps)?;
    }
    println!("done");
    Ok(())
}

/// Chapter 6: the calibration ladder's table, its KID chart and a row of every rung's images.
fn ch06_calibration(book: &Book, ladder: &Calibration, from: Option<&Path>) -> Result<()> {
    let dir = from
        .map(Path::to_path_buf)
        .unwrap_or_else(|| default_runs_dir().join("calibration"));
    // Drawn from the ladder's numbers here, so the chart follows the chart code of today.
    book.figure("ch06-calibration-kid.png", &render_png(&ladder.chart())?)?;
    book.figure(
        "ch06-calibration-sets.png",
        &upscale(&image::open(dir.join("calibration-sets.png"))?.to_rgb8(), 2),
    )?;
    let p = Provenance::here(ladder.config.score.seed);
    let held = ladder.checks.iter().filter(|c| c.held).count();
    book.snippet(
        "ch06-calibration.md",
        &format!(
            "![eight images of every rung, one rung per row](figures/ch06-calibration-sets.png)\n\n\
             *Figure 6.1 — The ladder's sets, one row each, top to bottom in the order of the table.*\n\n\
             {}\n*Table 6.1 — The calibration ladder: every set against the train logos, {held} of {} orderings held.* <small>Made by `chapter-06 calibrate` and `book-assets`: {}.</small>\n\n\
             ![KID of every rung beside the held-out floor](figures/ch06-calibration-kid.png)\n\n\
             *Figure 6.2 — KID of every rung (lower is better; a log scale, so that the rungs near the floor show), the held-out floor as a line.*\n",
            ladder.table(),
            ladder.checks.len(),
            p.caption()
        ),
    )
}

/// Chapter 6: a finished sweep's table (trials over their seeds, then every run), its chart, and
/// one grid per trial (its first seed's run).
/// The `index`-th sweep of the chapter gets Table 6.(3 + index) and Figures 6.(3 + 2·index) and
/// 6.(4 + 2·index).
/// One row of `examples/sampling-stats`' CSV (the floor's row has no run).
#[derive(serde::Deserialize)]
struct SamplingRow {
    run: String,
    step: Option<u64>,
    generator: String,
    kid_x1000: f64,
    precision: f64,
    recall: f64,
    density: f64,
    coverage: f64,
    two_sample: f64,
    copies_ratio: f64,
}

/// Chapter 6: the laptop recipe's budget × averaging over seeds, from `scripts/laptop-budget.sh`.
fn ch06_budget(book: &Book, csv: &Path) -> Result<()> {
    let rows: Vec<SamplingRow> = read_csv(csv)?;
    let floor = rows
        .iter()
        .find(|r| r.run.starts_with("held-out"))
        .with_context(|| format!("{}: no held-out floor row", csv.display()))?;
    // (epochs, generator) → [(seed, row)], in order of budget, averaged before trained (by name).
    let mut groups: std::collections::BTreeMap<(usize, String), Vec<(u64, &SamplingRow)>> =
        Default::default();
    let mut batch_size = 0;
    let mut device = String::new();
    for row in rows.iter().filter(|r| !r.run.starts_with("held-out")) {
        let record = RunRecord::load(&RunDir::new(project_root().join(&row.run)))
            .with_context(|| format!("{}: run {} of its rows", csv.display(), row.run))?;
        let c = &record.config;
        batch_size = c.batch_size;
        device = record.device.clone();
        groups
            .entry((c.epochs, row.generator.clone()))
            .or_default()
            .push((c.seed, row));
    }
    anyhow::ensure!(!groups.is_empty(), "{}: no runs scored", csv.display());
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let mut table = String::from(
        "| epochs (kimg) | generator | seeds | KID ×1000 ↓ mean ± sd [min–max] | KID per seed | two-sample accuracy ↓ | precision ↑ | recall ↑ | density ↑ | coverage ↑ | memorisation ratio |\n|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for ((epochs, generator), mut runs) in groups {
        runs.sort_by_key(|(seed, _)| *seed);
        let kids: Vec<f64> = runs.iter().map(|(_, r)| r.kid_x1000).collect();
        let m = mean(&kids);
        let sd = (kids.iter().map(|k| (k - m).powi(2)).sum::<f64>()
            / (kids.len().max(2) - 1) as f64)
            .sqrt();
        let (lo, hi) = kids
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &k| (lo.min(k), hi.max(k)));
        let per_seed: Vec<String> = runs
            .iter()
            .map(|(s, r)| format!("{s}: {:.1}", r.kid_x1000))
            .collect();
        let avg =
            |f: fn(&SamplingRow) -> f64| mean(&runs.iter().map(|(_, r)| f(r)).collect::<Vec<_>>());
        table.push_str(&format!(
            "| {epochs} ({:.0}) | {generator} | {} | {m:.1} ± {sd:.1} [{lo:.1}–{hi:.1}] | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
            runs[0].1.step.unwrap_or_default() as f64 * batch_size as f64 / 1e3,
            runs.len(),
            per_seed.join(", "),
            avg(|r| r.two_sample),
            avg(|r| r.precision),
            avg(|r| r.recall),
            avg(|r| r.density),
            avg(|r| r.coverage),
            avg(|r| r.copies_ratio),
        ));
    }
    table.push_str(&format!(
        "| held-out floor | real logos | | {:.1} | | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
        floor.kid_x1000, floor.two_sample, floor.precision, floor.recall, floor.density, floor.coverage, floor.copies_ratio
    ));
    book.snippet(
        "ch06-budget.md",
        &format!(
            "{table}\n*The laptop recipe (32×32, DiffAugment) trained longer, its trained generator beside its average (EMA, decay 0.999): each budget over the same seeds, each run resumed from the one before it, which is exact. Columns after KID are means over the seeds.* <small>Made by `scripts/laptop-budget.sh` and `book-assets --budget`: trained on {device}, scored {}.</small>\n",
            &now_rfc3339()[..10]
        ),
    )
}

/// A finished sweep's ranked table (results.md), its rows (results.csv) and the record of its
/// first run (for the provenance of the snippets made from it).
fn finished_sweep(sweep: &Path) -> Result<(String, Vec<TrialResult>, RunRecord)> {
    let table = std::fs::read_to_string(sweep.join("results.md"))
        .with_context(|| format!("{}: not a finished sweep", sweep.display()))?;
    let results: Vec<TrialResult> = read_csv(&sweep.join("results.csv"))?;
    let first = results.first().context("the sweep has no results")?;
    let record = RunRecord::load(&RunDir::new(
        sweep.join(first.trial.trim_end_matches(TRAINED_G)),
    ))?;
    Ok((table, results, record))
}

/// Chapter 7: conditional against unconditional at one budget over seeds (the sweep's own
/// table), then family by family: each family's KID over the seeds of each trial, beside its
/// floor and the share of samples that land in it.
fn ch07_sweep(book: &Book, sweep: &Path) -> Result<()> {
    use logogan::metrics::score::FamilyScores;
    let (table, results, record) = finished_sweep(sweep)?;
    let p = Provenance::of_run(&record);
    // Every run of a trial, through the generator it trained (better than its average at this
    // budget; chapter 6).
    let family_scores = |group: &str| -> Result<Vec<(u64, FamilyScores)>> {
        let mut runs: Vec<&TrialResult> = results.iter().filter(|r| r.group == group).collect();
        runs.sort_by_key(|r| r.seed);
        runs.iter()
            .map(|r| {
                let path = sweep
                    .join(&r.trial)
                    .join(logogan::metrics::score::family_score_file(false, "json"));
                let text = std::fs::read_to_string(&path).with_context(|| {
                    format!(
                        "{}: missing; run `chapter-06 score {} --per-family --no-average` first",
                        path.display(),
                        sweep.join(&r.trial).display()
                    )
                })?;
                Ok((r.seed, serde_json::from_str(&text)?))
            })
            .collect()
    };
    let plain = family_scores("unconditional")?;
    let conditional = family_scores("families-6")?;
    let mut rows = String::from(
        "| family | train logos | floor KID ×1000 | unconditional: KID ×1000 ↓ (seeds) | its free samples in the family | conditional: KID ×1000 ↓ (seeds) | samples asked for the family that land in it | apart? |\n|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    let families = &conditional
        .first()
        .context("no conditional run")?
        .1
        .families;
    for f in families {
        let of = |runs: &[(u64, FamilyScores)]| -> (Vec<f64>, Vec<f64>) {
            let mut kids = Vec::new();
            let mut shares = Vec::new();
            for (_, s) in runs {
                if let Some(row) = s.families.iter().find(|r| r.family == f.family) {
                    shares.push(row.nearest_share);
                    // A family the unconditional G barely drew counts as unscored.
                    if let Some(kid) = &row.kid {
                        kids.push(kid.mean * 1000.0);
                    }
                }
            }
            (kids, shares)
        };
        let (plain_kid, plain_share) = of(&plain);
        let (cond_kid, cond_share) = of(&conditional);
        let show = |kids: &[f64]| -> String {
            if kids.is_empty() {
                return "—".into();
            }
            let (m, sd) = logogan::sweep::mean_and_sd(kids);
            let each: Vec<String> = kids.iter().map(|k| format!("{k:.0}")).collect();
            format!("{m:.0} ± {sd:.0} ({})", each.join(", "))
        };
        let apart = if plain_kid.len() < 2 || cond_kid.len() < 2 {
            "—"
        } else if plain_kid.iter().all(|a| cond_kid.iter().all(|b| b < a)) {
            "yes: conditional better on every seed"
        } else if plain_kid.iter().all(|a| cond_kid.iter().all(|b| b > a)) {
            "yes: unconditional better on every seed"
        } else {
            "no: within the seed spread"
        };
        rows.push_str(&format!(
            "| {} | {} ({:.0}%) | {:.0} | {} | {:.0}% | {} | {:.0}% | {apart} |\n",
            f.family,
            f.train_logos,
            f.train_share * 100.0,
            f.floor.mean * 1000.0,
            show(&plain_kid),
            logogan::sweep::mean_and_sd(&plain_share).0 * 100.0,
            show(&cond_kid),
            logogan::sweep::mean_and_sd(&cond_share).0 * 100.0,
        ));
    }
    let epochs = record.config.epochs;
    book.snippet(
        "ch07-sweep.md",
        &format!(
            "{table}\n*Table 7.1 — The sweep `families`: the laptop recipe at {epochs} epochs \
             with and without six families, {} seeds each, ranked by mean KID over the whole \
             test; the `-trained-g` rows sample the generator each run trained rather than its \
             average.* <small>Made by `chapter-06 sweep` and `book-assets --families-sweep`: \
             {}.</small>\n\n{rows}\n*Table 7.2 — Family by family, through the generator \
             each run trained: the KID of the samples of a family against that family's train logos, \
             mean ± standard deviation over the seeds (each seed in brackets), beside the \
             family's held-out floor. An unconditional run is asked for nothing, so its free \
             samples are sorted into the family whose centre is nearest; the share column says \
             how many landed in each (the training share is in the second column). \
             \"Apart\" needs every seed of one trial below every seed of the other.* \
             <small>Made by `chapter-06 score --per-family --no-average` and \
             `book-assets --families-sweep`: {}.</small>\n",
            conditional.len(),
            p.caption(),
            p.caption()
        ),
    )
}

/// Chapter 7 at the budget it trains: the conditional recipe's own sweep. Its unconditional side
/// at that budget, with the same seeds and judge, is chapter 6's budget table.
fn ch07_sweep_full(book: &Book, sweep: &Path) -> Result<()> {
    let (table, results, record) = finished_sweep(sweep)?;
    let seeds = results
        .iter()
        .filter(|r| !r.trial.ends_with(TRAINED_G))
        .count();
    book.snippet(
        "ch07-sweep-full.md",
        &format!(
            "{table}\n*Table 7.3 — The sweep `families-full`: the conditional laptop recipe (six \
             families) at the preset's {} epochs, {seeds} seeds; the `-trained-g` rows sample the \
             generator each run trained rather than its average. The same recipe without \
             families, at the same budget, seeds and judge, is the {}-epoch rows of chapter 6's \
             budget table.* <small>Made by `chapter-06 sweep` and `book-assets \
             --families-full-sweep`: {}.</small>\n",
            record.config.epochs,
            record.config.epochs,
            Provenance::of_run(&record).caption()
        ),
    )
}

/// Chapter 6: a recipe trial at the main command's budget (the sweep's own table), read
/// against the budget table's rows at the same epochs, which are its baseline.
fn ch06_recipe_sweep(book: &Book, sweep: &Path) -> Result<()> {
    let (table, results, record) = finished_sweep(sweep)?;
    let name = sweep
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{}: not a sweep folder", sweep.display()))?;
    let runs = results
        .iter()
        .filter(|r| !r.trial.ends_with(TRAINED_G))
        .count();
    let trained_g = if results.iter().any(|r| r.trial.ends_with(TRAINED_G)) {
        " the `-trained-g` rows sample the generator each run trained rather than its average;"
    } else {
        ""
    };
    // The recipe trials were measured against the preset as it shipped before the wide G.
    let preset = TrainConfig::former_laptop(logogan::model::Architecture::Logogan);
    // Every trial with the settings its runs were trained with (the first run of each).
    let mut trials: Vec<(&str, TrainConfig)> = Vec::new();
    for r in results.iter().filter(|r| !r.trial.ends_with(TRAINED_G)) {
        if trials.iter().all(|(group, _)| *group != r.group) {
            let run = RunRecord::load(&RunDir::new(sweep.join(&r.trial)))?;
            trials.push((&r.group, run.config));
        }
    }
    // A sweep that trains the preset (as it shipped before the wide G, or as it ships) beside
    // its trial holds its own baseline, on its own kind of machine; otherwise the baseline is
    // the budget table's rows of the former preset. The former first: a sweep that trains both
    // (laptop-wide-g-avx2) measured the current one as its trial.
    let current = TrainConfig::preset(Preset::Laptop, logogan::model::Architecture::Logogan);
    let own_baseline = [
        (&preset, "as it shipped before the wide G"),
        (&current, "as it ships"),
    ]
    .into_iter()
    .find_map(|(settings, which)| {
        trials.iter().find_map(|(group, config)| {
            let config = TrainConfig {
                seed: preset.seed,
                ..config.clone()
            };
            (config == *settings).then_some((*group, which, settings))
        })
    });
    let caption = match own_baseline {
        Some((baseline, which, settings)) => {
            let others: Vec<String> = trials
                .iter()
                .filter(|(group, _)| *group != baseline)
                .map(|(group, config)| format!("`{group}` at {} epochs", config.epochs))
                .collect();
            let text = format!(
                "The sweep `{name}`, {runs} runs: {} beside its baseline `{baseline}`, the \
                 `laptop` preset {which} ({} filters in G, {} epochs), trained in the same sweep \
                 with the same seeds and judged by the same judge;{trained_g}",
                others.join(", "),
                settings.model.generator.base_filters,
                settings.epochs
            );
            format!("{}.", text.trim_end_matches(';'))
        }
        None => {
            let epochs = record.config.epochs;
            // A trial that costs more per epoch trains fewer epochs, for the same wall-clock
            // budget as the preset: its baseline is then still the preset's own budget.
            let budget = if epochs == preset.epochs {
                "the same budget".to_string()
            } else {
                format!(
                    "the same wall-clock budget ({} epochs of the former preset)",
                    preset.epochs
                )
            };
            format!(
                "The sweep `{name}` at {epochs} epochs, {runs} runs;{trained_g} its baseline, \
                 the same recipe without the trial's change at {budget}, seeds and judge, is the \
                 {}-epoch rows of the budget table above.",
                preset.epochs
            )
        }
    };
    book.snippet(
        &format!("ch06-trial-{name}.md"),
        &format!(
            "{table}\n*{}* <small>Made by `chapter-06 sweep` and `book-assets --recipe-sweep`: \
             {}.</small>\n",
            caption,
            Provenance::of_run(&record).caption()
        ),
    )?;
    // Each trial that adapts its augmentation: how p moved in its first seed's run.
    for (group, config) in &trials {
        let Some(target) = config.ada_target else {
            continue;
        };
        let Some(first) = results
            .iter()
            .filter(|r| r.group == *group && !r.trial.ends_with(TRAINED_G))
            .min_by_key(|r| r.seed)
        else {
            continue;
        };
        let figure = format!("ch06-trial-{name}-{group}-augment");
        ch06_augment_strength(book, &figure, &sweep.join(&first.trial), target)?;
    }
    Ok(())
}

/// The figure of how adaptive augmentation's p moved in one run, with numbers read from its
/// `augment.csv` in the caption; written as `<figure>.png` and `<figure>.md`.
fn ch06_augment_strength(book: &Book, figure: &str, run: &Path, target: f64) -> Result<()> {
    use logogan::train::ada::AdaAdjustment;
    use logogan::train::charts::augment_chart;
    let run = RunDir::new(run);
    let record = RunRecord::load(&run)?;
    let moves: Vec<AdaAdjustment> = read_csv(&run.augment())?;
    let last = moves.last().context("augment.csv has no rows")?;
    let images_per_step = record.config.batch_size as f64;
    let kimg = |step: u64| step as f64 * images_per_step / 1000.0;
    let file = format!("{figure}.png");
    book.figure(&file, &render_png(&augment_chart(&moves, target))?)?;
    let reached = |level: f64| {
        moves
            .iter()
            .find(|m| m.p >= level)
            .map_or("never".to_string(), |m| {
                format!("after {:.0} kimg", kimg(m.step))
            })
    };
    // The last quarter of the run: where p sat, and how far D's measure stayed from the target.
    let tail = &moves[moves.len() * 3 / 4..];
    let mean = |f: fn(&AdaAdjustment) -> f64| tail.iter().map(f).sum::<f64>() / tail.len() as f64;
    let trial = run.root.file_name().and_then(|n| n.to_str()).unwrap_or("?");
    book.figure_with_caption(
        &format!("{figure}.md"),
        &file,
        "adaptive augmentation's p over a run",
        &format!(
            "Adaptive augmentation in the run `{trial}`: p (blue) starts at 0 and moves every 4 \
             steps, up while the mean sign of D's scores on augmented real images (green, \
             smoothed) is above the target {target} (red), down while it is below. p passed 0.5 \
             {}, 0.9 {} and ended at {:.3} after {:.0} kimg; over the last quarter of the run p \
             averaged {:.3} and the measure {:.2}.",
            reached(0.5),
            reached(0.9),
            last.p,
            kimg(last.step),
            mean(|m| m.p),
            mean(|m| m.overfitting),
        ),
        &Provenance::of_run(&record),
    )
}

/// Chapter 6: the preset itself over seeds on the CPU kind of the recipe trials (a seed grows
/// another network where the matrix products round differently), read beside chapter 5's main
/// run, which is its seed 0 on that kind of machine.
fn ch06_baseline_sweep(book: &Book, sweep: &Path) -> Result<()> {
    let (table, results, record) = finished_sweep(sweep)?;
    let mut seeds: Vec<u64> = results
        .iter()
        .filter(|r| !r.trial.ends_with(TRAINED_G))
        .map(|r| r.seed)
        .collect();
    seeds.sort_unstable();
    let main_run = if seeds.contains(&0) {
        ""
    } else {
        " (its seed 0 is chapter 5's main command, on the same kind of machine)"
    };
    let seeds: Vec<String> = seeds.iter().map(u64::to_string).collect();
    book.snippet(
        "ch06-baseline.md",
        &format!(
            "{table}\n*The sweep `{}`: the `laptop` preset as it shipped before the wide G ({} \
             epochs), seeds {}, \
             trained on the CPU kind of the trials above{main_run}; the `-trained-g` rows sample the \
             generator each run trained rather than its average.* <small>Made by `chapter-06 \
             sweep` and `book-assets --baseline-sweep`: {}.</small>\n",
            sweep.file_name().and_then(|n| n.to_str()).unwrap_or("?"),
            record.config.epochs,
            seeds.join(", "),
            Provenance::of_run(&record).caption()
        ),
    )
}

fn ch06_sweep(book: &Book, sweep: &Path, index: usize) -> Result<()> {
    let table = std::fs::read_to_string(sweep.join("results.md"))
        .with_context(|| format!("{}: not a finished sweep", sweep.display()))?;
    let results: Vec<TrialResult> = read_csv(&sweep.join("results.csv"))?;
    let summary: Vec<TrialSummary> = read_csv(&sweep.join("summary.csv")).with_context(|| {
        format!(
            "{}: made before sweeps had summaries; run it again",
            sweep.display()
        )
    })?;
    let best = summary.first().context("the sweep has no results")?;
    let first_run = |trial: &str| -> Result<&TrialResult> {
        results
            .iter()
            .filter(|r| r.group == trial)
            .min_by_key(|r| r.seed)
            .with_context(|| format!("no run of trial `{trial}`"))
    };
    // A trained-G row is a second scoring of a run folder, named without the suffix.
    let folder = |run: &TrialResult| sweep.join(run.trial.trim_end_matches(TRAINED_G));
    let record = RunRecord::load(&RunDir::new(folder(first_run(&best.trial)?)))?;
    let p = Provenance::of_run(&record);
    let name = sweep
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let size = record.config.image_size();
    let prefix = if index == 0 {
        "ch06-sweep".to_string()
    } else {
        format!("ch06-sweep-{name}")
    };
    let (table_no, chart_no, grids_no) = (3 + index, 3 + 2 * index, 4 + 2 * index);
    book.figure(
        &format!("{prefix}-scores.png"),
        &image::open(sweep.join("scores.png"))?.to_rgb8(),
    )?;
    let scale = (256 / size as u32).clamp(1, 2);
    let (mut header, mut images, mut columns) = (String::from("|"), String::from("|"), 0);
    for t in &summary {
        let run = first_run(&t.trial)?;
        let file = format!("{prefix}-{}.png", t.trial);
        let path = sweep.join(format!("{}.png", run.trial));
        if !path.is_file() {
            continue; // a trained-G row: its run's grid shows the average
        }
        let grid = image::open(&path)?.to_rgb8();
        book.figure(&file, &upscale(&grid, scale))?;
        header.push_str(&format!(" `{}` (seed {}) |", t.trial, run.seed));
        images.push_str(&format!(" ![samples of {}](figures/{file}) |", t.trial));
        columns += 1;
    }
    let seeds = summary.iter().map(|t| t.seeds).max().unwrap_or(1);
    book.snippet(
        &format!("{prefix}.md"),
        &format!(
            "{table}\n*Table 6.{table_no} — The sweep `{name}` at {size}×{size}: {} trials × {seeds} seeds, ranked by mean KID; \"apart from the best\" says whether every seed of a trial scored on one side of every seed of the best.* <small>Made by `chapter-06 sweep` and `book-assets --sweep`: {}.</small>\n\n\
             ![mean KID of every trial beside the floor](figures/{prefix}-scores.png)\n\n\
             *Figure 6.{chart_no} — The same ranking as a chart.*\n\n\
             {header}\n|{}\n{images}\n\n\
             *Figure 6.{grids_no} — Final samples of each trial (its first seed), from the same fixed noise, drawn through the average when the run kept one.* <small>{}.</small>\n",
            summary.len(),
            p.caption(),
            ":---:|".repeat(columns),
            p.caption()
        ),
    )
}

/// Chapter 6: time to quality, candle beside PyTorch (reference/pytorch-dcgan/time_to_kid.py),
/// with the last snapshot's samples of each.
fn ch06_time_to_kid(book: &Book, dir: &Path, table_no: usize, figure_no: usize) -> Result<()> {
    let table = std::fs::read_to_string(dir.join("time-to-kid.md")).with_context(|| {
        format!(
            "{}: run reference/pytorch-dcgan/time_to_kid.py first",
            dir.display()
        )
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("time-to-kid.json"))?)?;
    let last_step = |side: &str| -> Result<u64> {
        json[side]
            .as_array()
            .and_then(|rows| rows.last())
            .and_then(|r| r["step"].as_u64())
            .with_context(|| format!("time-to-kid.json without {side} snapshots"))
    };
    let (candle_step, torch_step) = (last_step("candle")?, last_step("torch")?);
    let grid = |path: PathBuf| -> Result<image::RgbImage> {
        Ok(image::open(&path)
            .with_context(|| format!("{}: missing; run time_to_kid.py again", path.display()))?
            .to_rgb8())
    };
    book.figure(
        "ch06-time-candle.png",
        &upscale(
            &grid(dir.join(format!("candle-snapshots/step-{candle_step:07}.grid.png")))?,
            2,
        ),
    )?;
    book.figure(
        "ch06-time-torch.png",
        &upscale(
            &grid(dir.join(format!("torch/snapshots/step-{torch_step:07}.grid.png")))?,
            2,
        ),
    )?;
    let record = RunRecord::load(&RunDir::new(dir.join("candle")))?;
    let heading_end = table.find("\n\n").map_or(0, |i| i + 2); // drop the file's own title
    book.snippet(
        "ch06-time-to-kid.md",
        &format!(
            "{}\n*Table 6.{table_no} — Time to quality: the same recipe in candle and in PyTorch, one after the other on the same cores, judged at the same steps.* <small>Made by `reference/pytorch-dcgan/time_to_kid.py` and `book-assets --time-to-kid`: candle on {} at commit `{}`, {}.</small>\n\n\
             | candle, step {candle_step} | PyTorch, step {torch_step} |\n|:---:|:---:|\n\
             | ![candle samples](figures/ch06-time-candle.png) | ![PyTorch samples](figures/ch06-time-torch.png) |\n\n\
             *Figure 6.{figure_no} — The first 64 judged samples of each framework's last snapshot.*\n",
            &table[heading_end..],
            record.device,
            record.commit,
            &record.started[..10]
        ),
    )
}

/// Chapter 6: the candle baseline beside the PyTorch reference (reference/pytorch-dcgan).
fn ch06_reference(book: &Book, reference: &Path, table_no: usize) -> Result<()> {
    let table = std::fs::read_to_string(reference.join("comparison.md")).with_context(|| {
        format!(
            "{}: run reference/pytorch-dcgan/compare.py first",
            reference.display()
        )
    })?;
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(reference.join("comparison.json"))?)?;
    let sweep = json["sweep"]
        .as_str()
        .context("comparison.json without a sweep name")?;
    let first = json["seeds"][0]["trial"]
        .as_str()
        .context("comparison.json without seeds")?;
    let candle_root = reference.parent().unwrap_or(Path::new(".")).join(sweep);
    let record = RunRecord::load(&RunDir::new(candle_root.join(first)))?;
    book.snippet(
        "ch06-reference.md",
        &format!(
            "{table}\n*Table 6.{table_no} — The candle baseline and its PyTorch twin, trained on the same images with the same settings, scored by the same code.* <small>Made by `reference/pytorch-dcgan/compare.py` and `book-assets --reference`: candle on {} at commit `{}`, {}.</small>\n",
            record.device,
            record.commit,
            &record.started[..10]
        ),
    )
}

fn ch03(book: &Book, layout: &DataLayout, report: &DatasetReport, seconds: f64) -> Result<()> {
    let p = Provenance::here(0);
    let clean: &CleanSummary = &report.clean;
    book.snippet("ch03-summary.md", &clean.table())?;
    book.snippet(
        "ch03-counts.md",
        &format!(
            "{} raw logos → **{} clean** 64×64 images → **{} train logos**, **{} training images** after augmentation, and **{} held-out logos** ({} images) that no model trains on; in {:.0} s on this machine's {}.\n",
            clean.rows.len(),
            clean.kept,
            report.train_logos,
            report.train_images,
            report.held_out_logos,
            report.held_out_images,
            seconds,
            describe(&candle_core::Device::Cpu)
        ),
    )?;
    let processed = layout.processed(64);
    let clean_grid = image::open(processed.join("preview-clean.png"))?.to_rgb8();
    book.figure("ch03-preview-clean.png", &clean_grid)?;
    book.figure_with_caption(
        "ch03-preview-clean.md",
        "ch03-preview-clean.png",
        "64 cleaned logos",
        "Figure 3.4 — 64 logos after cleaning: square, white background, 64×64 pixels.",
        &p,
    )?;
    let augment = image::open(processed.join("preview-augment.png"))?.to_rgb8();
    book.figure("ch03-preview-augment.png", &augment)?;
    book.figure_with_caption(
        "ch03-preview-augment.md",
        "ch03-preview-augment.png",
        "originals, mirrored and recoloured versions",
        "Figure 3.5 — Augmentation. Top row: clean logos. Middle: mirrored. Bottom: recoloured (hue rotated, or tinted when the logo is black).",
        &p,
    )?;
    // Numbered in the order chapter 3 shows them: the three kinds of dropped logos, then the
    // clean set and its augmentation.
    for (reason, number, what) in [
        ("text-heavy", "3.2", "dropped as text-heavy: wordmarks and rows of letters"),
        ("non-white-background", "3.1", "dropped for a non-white background: logos on a coloured tile"),
        ("near-duplicate", "3.3", "dropped as near-duplicates of a logo already kept (here Font Awesome's black copies of Simple Icons' coloured logos)"),
    ] {
        let examples = examples_for_reason(&layout.raw(), &clean.rows, reason, 16, 64)?;
        if examples.is_empty() {
            continue;
        }
        let file = format!("ch03-dropped-{reason}.png");
        book.figure(&file, &image_grid(&examples, 16, 2))?;
        book.figure_with_caption(
            &format!("ch03-dropped-{reason}.md"),
            &file,
            &format!("examples of logos {what}"),
            &format!("Figure {number} — The first 16 logos (by file name) {what}."),
            &p,
        )?;
    }
    Ok(())
}

fn quick_run(layout: &DataLayout, device: DeviceChoice) -> Result<PathBuf> {
    let run = default_runs_dir().join("book-quick");
    let done = RunRecord::load(&RunDir::new(&run))
        .ok()
        .zip(logogan::train::checkpoint::load_info(&RunDir::new(&run).checkpoints()).ok());
    if let Some((record, info)) = done {
        if info.step > 0
            && record.config
                == TrainConfig::preset(Preset::Quick, logogan::model::Architecture::Logogan)
        {
            println!("using the finished run {}", run.display());
            return Ok(run);
        }
    }
    if run.exists() {
        std::fs::remove_dir_all(&run)?;
    }
    let config = TrainConfig::preset(Preset::Quick, logogan::model::Architecture::Logogan);
    let device = device.open()?;
    let train_dir = logogan::data::pipeline::ensure_dataset(layout, 32, false)?;
    let data = logogan::data::dataset::ImageDataset::load(&train_dir, 32, &device)?;
    println!(
        "training --preset quick on {} for chapter 5 (a few minutes)",
        describe(&device)
    );
    let mut trainer = Trainer::create(config, &data, train_dir, run.clone())?;
    trainer.train(None, &mut |_| {})?;
    draw_charts(&trainer.run)?;
    Ok(run)
}

fn ch05(book: &Book, run: &RunDir) -> Result<()> {
    let record = RunRecord::load(run).with_context(|| format!("reading {}", run.root.display()))?;
    let p = Provenance::of_run(&record);
    draw_charts(run)?;
    let rows = read_metrics(&run.metrics())?;
    let last = rows.last().context("the run has no metrics")?;
    let epochs = last.epoch;
    let scale = (256 / record.config.image_size() as u32).clamp(1, 4).min(2);
    let first = image::open(run.sample(1))?.to_rgb8();
    let final_grid = image::open(run.sample(epochs))?.to_rgb8();
    book.figure("ch05-samples-first.png", &upscale(&first, scale))?;
    book.figure("ch05-samples-last.png", &upscale(&final_grid, scale))?;
    book.figure(
        "ch05-loss.png",
        &image::open(run.root.join("loss.png"))?.to_rgb8(),
    )?;
    book.figure(
        "ch05-d-outputs.png",
        &image::open(run.root.join("d_outputs.png"))?.to_rgb8(),
    )?;
    std::fs::copy(
        run.root.join("progress.gif"),
        book.figures.join("ch05-progress.gif"),
    )?;
    let size = record.config.image_size();
    book.figure_with_caption(
        "ch05-samples-first.md",
        "ch05-samples-first.png",
        "samples after the first epoch",
        &format!(
            "Figure 5.2 — The fixed noise after epoch 1 ({size}×{size}, step {}).",
            rows.iter().filter(|r| r.epoch == 1).count()
        ),
        &p,
    )?;
    book.figure_with_caption(
        "ch05-samples-last.md",
        "ch05-samples-last.png",
        "samples at the end of training",
        &format!(
            "Figure 5.3 — The same noise after epoch {epochs} (step {}).",
            last.step
        ),
        &p,
    )?;
    book.figure_with_caption(
        "ch05-loss.md",
        "ch05-loss.png",
        "discriminator and generator losses",
        "Figure 5.4 — Losses per step (exponential moving average).",
        &p,
    )?;
    book.figure_with_caption(
        "ch05-d-outputs.md",
        "ch05-d-outputs.png",
        "D(x) and D(G(z)) per step",
        "Figure 5.5 — The discriminator's average verdict on real images, D(x), and on fakes, D(G(z)).",
        &p,
    )?;
    book.figure_with_caption(
        "ch05-progress.md",
        "ch05-progress.gif",
        "the fixed-noise grid, epoch by epoch",
        "Figure 5.6 — Every epoch's grid, animated.",
        &p,
    )?;
    // `chapter-05 generate`: fresh noise, not the fixed grid, and a walk between two points.
    let g = TrainedGenerator::load(&run.root, &candle_core::Device::Cpu)?;
    let fresh = g.images(&g.noise(64, 1)?)?;
    book.figure(
        "ch05-generated.png",
        &upscale(&image_grid(&fresh, 8, 2), scale),
    )?;
    let strip = g.interpolate(3, 7, 10)?;
    book.figure(
        "ch05-interpolation.png",
        &upscale(&image_grid(&strip, strip.len(), 2), scale),
    )?;
    book.snippet(
        "ch05-generate.md",
        &format!(
            "![64 samples from fresh noise](figures/ch05-generated.png)\n\n\
             *Figure 5.7 — `chapter-05 generate --checkpoint {0} --seed 1`: 64 samples from noise the run never showed (step {1}{2}).* <small>Made by `book-assets`: {3}.</small>\n\n\
             ![ten samples along the way from one noise vector to another](figures/ch05-interpolation.png)\n\n\
             *Figure 5.8 — `--interpolate 3,7`: ten points on the great circle from the noise of seed 3 to that of seed 7.*\n",
            run.root.file_name().map_or_else(String::new, |n| format!("runs/{}", n.to_string_lossy())),
            g.step,
            if g.record.config.ema_decay.is_some() { ", averaged generator" } else { "" },
            p.caption()
        ),
    )?;

    let c = &record.config;
    // One step's losses are noise (a batch of 64); the last epoch's mean says where the game is.
    let last_epoch: Vec<_> = rows.iter().filter(|r| r.epoch == epochs).cloned().collect();
    let settled = logogan::train::loss_log::mean(&last_epoch).context("no last epoch")?;
    let info = logogan::train::checkpoint::load_info(&run.checkpoints())?;
    let minutes = if info.training_seconds > 0.0 {
        format!("{:.1} min of training", info.training_seconds / 60.0)
    } else {
        // A run older than the training clock: the wall clock from its start to its last grid.
        let started = humantime::parse_rfc3339(&record.started)?;
        let ended = std::fs::metadata(run.sample(epochs))?.modified()?;
        let seconds = ended.duration_since(started)?.as_secs_f64();
        format!("{:.1} min wall clock (start to last grid)", seconds / 60.0)
    };
    book.snippet(
        "ch05-run.md",
        &format!(
            "| setting | value |\n|---|---|\n| model | {} ({}×{}), G width {}, D width {} |\n| images | {} |\n| epochs × steps | {} × {} |\n| batch · images shown | {} · {:.0} kimg |\n| Adam | lr {}, β₁ {}, β₂ {} |\n| averaged generator · DiffAugment | {} · {} |\n| device · training time | {} · {} |\n| last epoch's mean D loss / G loss | {:.3} / {:.3} |\n| last epoch's mean D(x) / D(G(z)) | {:.3} / {:.3} |\n",
            if c.model.discriminator.batch_norm_first { "LogoGan" } else { "DCGAN" },
            size,
            size,
            c.model.generator.base_filters,
            c.model.discriminator.filters.filters(0),
            record.images,
            epochs,
            last.step / epochs.max(1),
            c.batch_size,
            last.step as f64 * c.batch_size as f64 / 1000.0,
            c.generator_optimizer.lr,
            c.generator_optimizer.beta1,
            c.generator_optimizer.beta2,
            c.ema_decay.map_or("no".into(), |d| format!("decay {d}")),
            if c.diff_augment { "yes" } else { "no" },
            record.device,
            minutes,
            settled.d_loss,
            settled.g_loss,
            settled.d_real,
            settled.d_fake
        ),
    )?;
    Ok(())
}

/// Chapter 5: the main run beside the 64×64 CPU run and a collapsed run — one table of sizes,
/// budgets, training times and the judge's scores, and a grid of fresh samples from each of the
/// other two.
fn ch05_beside(
    book: &Book,
    shown: &[(&str, RunDir, ScoreReport)],
    run_64: Option<&Path>,
    collapsed: Option<&Path>,
) -> Result<()> {
    let mut table = String::from(
        "| run | size | epochs (kimg) | training time | KID ×1000 ↓ | two-sample accuracy ↓ | precision ↑ | recall ↑ | coverage ↑ |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for (label, run, report) in shown {
        let record = RunRecord::load(run)?;
        let info = logogan::train::checkpoint::load_info(&run.checkpoints())?;
        let c = &record.config;
        let g = &report.generated;
        table.push_str(&format!(
            "| {label} | {0}×{0} | {1} ({2:.0}) | {3:.0} min | {4:.1} ± {5:.1} | {6:.3} | {7:.3} | {8:.3} | {9:.3} |\n",
            c.image_size(),
            c.epochs,
            info.step as f64 * c.batch_size as f64 / 1000.0,
            info.training_seconds / 60.0,
            g.kid.mean * 1e3,
            g.kid.standard_error * 1e3,
            g.two_sample.accuracy,
            g.precision_recall.precision,
            g.precision_recall.recall,
            g.density_coverage.coverage,
        ));
    }
    let floor = &shown[0].2.real_floor;
    table.push_str(&format!(
        "| held-out real logos (the floor) | | | | {:.1} | {:.3} | {:.3} | {:.3} | {:.3} |\n",
        floor.kid.mean * 1e3,
        floor.two_sample.accuracy,
        floor.precision_recall.precision,
        floor.precision_recall.recall,
        floor.density_coverage.coverage,
    ));
    let first = RunRecord::load(&shown[0].1)?;
    book.snippet(
        "ch05-runs.md",
        &format!(
            "{table}\n*Table 5.1 — Three runs scored by chapter 6's judge (`chapter-06 score`: 1000 samples at 32×32 against the train logos) — for each, the generator its preset samples: the average of G's weights for `laptop`, the trained G for the others.* <small>Made by `book-assets`: trained on {}, scored {}.</small>\n",
            first.device,
            &now_rfc3339()[..10]
        ),
    )?;
    for (dir, name, alt, what) in [
        (
            run_64,
            "ch05-laptop-64",
            "64 logo-like marks at 64×64",
            "Figure 5.10 — `--preset laptop-64`: the laptop recipe at 64×64",
        ),
        (
            collapsed,
            "ch05-collapsed",
            "64 samples from a collapsed generator, many nearly alike",
            "Figure 5.11 — `--preset collapse`: G learning ten times faster than D, no augmentation",
        ),
    ] {
        let Some(dir) = dir else { continue };
        let g = TrainedGenerator::load_trained(dir, &candle_core::Device::Cpu)?;
        let fresh = g.images(&g.noise(64, 1)?)?;
        let scale = if g.record.config.image_size() >= 64 { 1 } else { 2 };
        let file = format!("{name}.png");
        book.figure(&file, &upscale(&image_grid(&fresh, 8, 2), scale))?;
        book.figure_with_caption(
            &format!("{name}.md"),
            &file,
            alt,
            &format!(
                "{what}: 64 samples from fresh noise (`chapter-05 generate --seed 1`, step {}, the trained generator).",
                g.step,
            ),
            &Provenance::of_run(&g.record),
        )?;
    }
    Ok(())
}

/// Chapter 5: what the quick preset's two minutes give (its last grid), for comparison.
fn ch05_quick(book: &Book, run: &RunDir) -> Result<()> {
    let record = RunRecord::load(run)?;
    let rows = read_metrics(&run.metrics())?;
    let last = rows.last().context("the quick run has no metrics")?;
    let grid = image::open(run.sample(last.epoch))?.to_rgb8();
    book.figure("ch05-quick.png", &upscale(&grid, 2))?;
    let p = Provenance::of_run(&record);
    book.figure_with_caption(
        "ch05-quick.md",
        "ch05-quick.png",
        "colour blobs: the quick preset's samples",
        &format!(
            "Figure 5.9 — What two minutes give: `--preset quick` ({} of the images, {} steps ≈ {:.0} kimg), the same fixed noise.",
            record.images,
            last.step,
            last.step as f64 * record.config.batch_size as f64 / 1000.0
        ),
        &p,
    )
}

/// Chapter 1's 2-D figure: the default setting learning the ring (top) and a learning rate ten
/// times too large collapsing onto a blob (bottom), five snapshots each.
fn ch01_gan2d(book: &Book, p: &Provenance) -> Result<()> {
    use logogan::gan2d::{modes_covered, train_and_watch, Gan2dConfig};
    let good = Gan2dConfig::default();
    let bad = Gan2dConfig {
        lr: 0.05,
        seed: 1,
        ..good.clone()
    };
    let started = std::time::Instant::now();
    let (gan, mut frames, _) = train_and_watch(&good, good.steps / 4)?;
    let seconds = started.elapsed().as_secs_f64();
    let (good_modes, _) = modes_covered(&good, &gan.sample(1000, 2)?, 0.04)?;
    let (collapsed, bad_frames, _) = train_and_watch(&bad, bad.steps / 4)?;
    let (bad_modes, _) = modes_covered(&bad, &collapsed.sample(1000, 2)?, 0.04)?;
    frames.extend(bad_frames);
    book.figure("ch01-gan2d.png", &image_grid(&frames, 5, 6))?;
    book.figure_with_caption(
        "ch01-gan2d.md",
        "ch01-gan2d.png",
        "two rows of five scatter plots: the generator's points spreading onto all eight blobs of a ring, and collapsing onto one",
        &format!(
            "Figure 1.1 — The game on points in the plane (`logogan::gan2d`): real points in grey on a ring of {} blobs, the generator's in orange, every {} steps. Top: Adam at lr {} covers {good_modes} of the {} blobs after {} steps ({seconds:.0} s on this machine). Bottom: the same at lr {}: the generator collapses ({bad_modes} blob{} covered).",
            good.modes, good.steps / 4, good.lr, good.modes, good.steps, bad.lr,
            if bad_modes == 1 { "" } else { "s" }
        ),
        p,
    )
}

/// Chapter 5's chart: |∂loss/∂ℓ| for one fake against D's logit ℓ, saturating vs non-saturating.
fn generator_gradients_chart() -> LineChart {
    let sigmoid = |l: f64| 1.0 / (1.0 + (-l).exp());
    let logits: Vec<f64> = (0..=240).map(|i| -6.0 + i as f64 * 0.05).collect();
    let line = |label: &str, colour, f: &dyn Fn(f64) -> f64| Series {
        label: label.into(),
        points: logits.iter().map(|&l| (l, f(sigmoid(l)))).collect(),
        colour,
    };
    LineChart {
        title: "The generator's gradient for one fake".into(),
        x_label: "D's logit ℓ on the fake (left: \"fake\", right: \"real\")".into(),
        y_label: "|gradient| w.r.t. ℓ".into(),
        y_range: Some((0.0, 1.05)),
        series: vec![
            line("saturating: log(1 − D)", RED, &|d| d),
            line("non-saturating: −log D", BLUE, &|d| 1.0 - d),
        ],
    }
}

/// Chapter 7: how well the training logos split into 2 to 8 families, the course's six as rows
/// of their most typical logos, and (given a conditional run) its samples one family per row.
fn ch07(book: &Book, layout: &DataLayout, run: Option<&Path>) -> Result<()> {
    use logogan::metrics::families::{
        choose_k, cluster_and_save, families_path, family_features, KMeansConfig,
        CANDIDATE_FAMILIES, DEFAULT_FAMILIES,
    };
    let p = Provenance::here(0);
    let cpu = candle_core::Device::Cpu;
    let (train, features) = family_features(layout, &cpu)?;
    let (best, candidates) = choose_k(&features, CANDIDATE_FAMILIES, &KMeansConfig::default())?;
    let mut table =
        String::from("| families | silhouette | images per family |\n|---:|---:|---|\n");
    for (i, c) in candidates.iter().enumerate() {
        let note = match (i == best, c.k == DEFAULT_FAMILIES) {
            (true, _) => " ← the highest",
            (_, true) => " ← the course's",
            _ => "",
        };
        let sizes: Vec<String> = c.sizes.iter().map(|n| n.to_string()).collect();
        table.push_str(&format!(
            "| {} | {:.3}{note} | {} |\n",
            c.k,
            c.silhouette,
            sizes.join(", ")
        ));
    }
    table.push_str(&format!(
        "\n<small>{} training images of 32×32 through the judge's encoder; k-means with 4 \
         k-means++ starts; silhouette over 2000 of them. Made by `book-assets`: {}.</small>\n",
        train.len(),
        p.caption()
    ));
    book.snippet("ch07-families-table.md", &table)?;
    let report = cluster_and_save(
        &train,
        &features,
        DEFAULT_FAMILIES,
        8,
        &families_path(layout, DEFAULT_FAMILIES),
    )?;
    book.figure(
        "ch07-families.png",
        &upscale(&image::open(&report.grid)?.to_rgb8(), 2),
    )?;
    let sizes: Vec<String> = report.sizes.iter().map(|n| n.to_string()).collect();
    book.figure_with_caption(
        "ch07-families.md",
        "ch07-families.png",
        "six rows of eight logos, each row one family found by k-means",
        &format!(
            "Figure 7.1 — The {DEFAULT_FAMILIES} families k-means finds among the training logos, \
             one per row, largest first ({} images): each row shows the eight logos nearest its \
             family's centre.",
            sizes.join(", ")
        ),
        &p,
    )?;

    let Some(run) = run else { return Ok(()) };
    let mut g = TrainedGenerator::load(run, &cpu)?;
    let z = g.noise(8, 1)?; // the same eight noise vectors in every row
    let mut rows = Vec::new();
    for family in 0..g.classes() as u32 {
        g.set_family(Some(family))?;
        rows.extend(g.images(&z)?);
    }
    book.figure("ch07-run.png", &upscale(&image_grid(&rows, 8, 2), 2))?;
    let config = &g.record.config;
    let steps_per_epoch = (g.record.images / config.batch_size).max(1) as u64;
    let seconds =
        logogan::train::checkpoint::load_info(&RunDir::new(run).checkpoints())?.training_seconds;
    book.figure_with_caption(
        "ch07-run.md",
        "ch07-run.png",
        "one row of eight generated logos per family",
        &format!(
            "Figure 7.2 — The conditional laptop run after {} of its {} epochs ({} min of \
             training): one family per row, and the same eight noise vectors in every row, so \
             that down a column only the family changes.",
            g.step / steps_per_epoch,
            config.epochs,
            (seconds / 60.0).round()
        ),
        &Provenance::of_run(&g.record),
    )?;
    Ok(())
}

//! How much the judge's two-sample verdict moves with the classifier's seed: the test run on
//! rungs of the calibration ladder with several seeds, each with the settings given, and a table
//! of every accuracy with the mean, spread and range per rung. Run it with `LOGOGAN_SIMD=avx2`
//! or `portable` to see another SIMD path (vendor/README.md). This is the measurement behind the
//! two-sample settings chapter 6 uses:
//!
//! ```sh
//! cargo run --release --example judge-spread -- --rungs noise,held-out --seeds 0,1,2,3,4
//! cargo run --release --example judge-spread -- --repeats 1 --lagging-batch-norm   # as before 2026-12
//! ```

use std::time::Instant;

use anyhow::{bail, Result};
use clap::Parser;
use logogan::device::{describe, DeviceChoice};
use logogan::metrics::calibrate::rung_images;
use logogan::metrics::{two_sample_test, CalibrationConfig, RealReference, Rung, TwoSample};
use logogan::paths::DataLayout;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The two-sample test's spread over classifier seeds, per rung of the calibration ladder.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Rungs, by their names in calibration.csv (held-out, slight-blur, heavy-blur, noise, …).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "held-out,slight-blur,noise"
    )]
    rungs: Vec<String>,
    /// Classifier seeds.
    #[arg(long, value_delimiter = ',', default_value = "0,1,2")]
    seeds: Vec<u64>,
    /// Classifiers per fold in one test (see TwoSampleConfig).
    #[arg(long)]
    repeats: Option<usize>,
    /// Test with batch-norm's running averages as training left them (see
    /// `TwoSampleConfig::precise_batch_norm`).
    #[arg(long)]
    lagging_batch_norm: bool,
    #[arg(long)]
    epochs: Option<usize>,
    /// Images per set.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..=100_000))]
    samples: u64,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

fn main() -> Result<()> {
    logogan::cli::init();
    let args = Args::parse();
    let device = args.device.open()?;
    let mut config = CalibrationConfig::default();
    config.score.samples = args.samples as usize;
    let two = &mut config.score.two_sample;
    if let Some(r) = args.repeats {
        two.repeats = r;
    }
    if let Some(e) = args.epochs {
        two.epochs = e;
    }
    two.precise_batch_norm = !args.lagging_batch_norm;
    let reference = RealReference::load(
        &DataLayout::default(),
        &config.score,
        &device,
        &mut |_, _| {},
    )?;
    let n = reference.set_size(usize::MAX, &config.score);
    println!(
        "two-sample spread on {}: repeats {}, epochs ≤ {}, {}",
        describe(&device),
        config.score.two_sample.repeats,
        config.score.two_sample.epochs,
        if config.score.two_sample.precise_batch_norm {
            "batch-norm statistics measured at the final weights"
        } else {
            "batch-norm's running averages as training left them"
        }
    );
    println!("| rung | accuracy per seed | mean | sd | range | s per test |\n|---|---|---:|---:|---:|---:|");
    let held = RealReference::originals(&reference.held_out)?;
    for name in &args.rungs {
        let Some(rung) = Rung::ALL.into_iter().find(|r| {
            serde_json::to_value(r)
                .ok()
                .and_then(|v| v.as_str().map(str::to_owned))
                .as_deref()
                == Some(name.as_str())
        }) else {
            bail!("--rungs: no rung named `{name}` (names as in calibration.csv, e.g. held-out, noise)");
        };
        let other = match rung {
            Rung::HeldOut => RealReference::originals(&reference.train)?,
            _ => rung_images(rung, &reference, n, &config)?,
        };
        let start = Instant::now();
        let mut accuracies = Vec::new();
        for &seed in &args.seeds {
            let c = logogan::metrics::TwoSampleConfig {
                seed,
                ..config.score.two_sample.clone()
            };
            accuracies.push(two_sample_test(&held, &other, &c)?.accuracy);
        }
        let k = accuracies.len() as f64;
        let summary = TwoSample::from_repeats(&accuracies, 2 * n);
        let (mean, sd) = (summary.accuracy, summary.seed_spread);
        let (lo, hi) = accuracies
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &a| (lo.min(a), hi.max(a)));
        let each: Vec<String> = accuracies.iter().map(|a| format!("{a:.3}")).collect();
        println!(
            "| {} | {} | {mean:.3} | {sd:.3} | {lo:.3}–{hi:.3} | {:.0} |",
            rung.label(),
            each.join(", "),
            start.elapsed().as_secs_f64() / k
        );
    }
    Ok(())
}

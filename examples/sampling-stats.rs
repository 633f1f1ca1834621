//! What batch-norm's statistics do to a trained generator's samples: each run scored four ways —
//! the generator it trained and its moving average (when the run kept one), each with the running
//! statistics of its checkpoint and with statistics measured again at its weights
//! (`TrainedGenerator::measure_batch_norm`). The judge's floor is measured once and printed
//! first. This is the measurement behind `TrainConfig`'s sampling settings in chapter 6:
//!
//! ```sh
//! cargo run --release --example sampling-stats -- runs/ema-s0 runs/ema-s1 --out stats.csv
//! ```

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Parser;
use logogan::device::{describe, DeviceChoice};
use logogan::metrics::{sample_generator, RealReference, ScoreConfig, Scores};
use logogan::paths::DataLayout;
use logogan::train::generate::TrainedGenerator;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Run folders (runs/<name>).
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Images per set.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(20..=100_000))]
    samples: u64,
    /// Seed of the judge and of the sampled noise.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Which batch-norm statistics to sample with: running (the checkpoint's), measured, or both.
    #[arg(long, value_delimiter = ',', default_value = "running,measured")]
    statistics: Vec<String>,
    /// Also write the table as CSV here.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    device: DeviceChoice,
}

const HEADER: &str =
    "run,step,generator,statistics,kid_x1000,kid_se_x1000,frechet,precision,recall,density,coverage,two_sample,two_sample_se,two_sample_features,copies_ratio";

fn row(run: &str, step: &str, generator: &str, statistics: &str, s: &Scores) -> String {
    format!(
        "{run},{step},{generator},{statistics},{:.2},{:.2},{:.2},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3},{:.3}",
        s.kid.mean * 1000.0,
        s.kid.standard_error * 1000.0,
        s.frechet,
        s.precision_recall.precision,
        s.precision_recall.recall,
        s.density_coverage.density,
        s.density_coverage.coverage,
        s.two_sample.accuracy,
        s.two_sample.standard_error,
        s.two_sample_features.accuracy,
        s.memorisation.ratio,
    )
}

fn main() -> Result<()> {
    logogan::cli::init();
    let args = Args::parse();
    let device = args.device.open()?;
    let config = ScoreConfig {
        samples: args.samples as usize,
        seed: args.seed,
        ..ScoreConfig::default()
    };
    let reference = RealReference::load(&DataLayout::default(), &config, &device, &mut |_, _| {})?;
    let n = reference.set_size(config.samples, &config);
    println!("{n} images per set on {}", describe(&device));
    let mut lines = vec![HEADER.to_string()];
    let mut emit = |line: String| {
        println!("{line}");
        lines.push(line);
    };
    emit(row(
        "held-out floor",
        "",
        "",
        "",
        &reference.floor(n, &config)?,
    ));
    for run in &args.runs {
        let name = run.display().to_string();
        let averaged = TrainedGenerator::load(run, &device)
            .with_context(|| format!("loading the run in {name}"))?;
        let mut generators = vec![("trained", false)];
        if averaged.record.config.ema_decay.is_some() {
            generators.push(("averaged", true));
        }
        for (label, use_average) in generators {
            for measured in [false, true] {
                let wanted = if measured { "measured" } else { "running" };
                if !args.statistics.iter().any(|s| s == wanted) {
                    continue;
                }
                // Loaded afresh each time: measuring overwrites the running statistics.
                let generator = if use_average {
                    TrainedGenerator::load(run, &device)?
                } else {
                    TrainedGenerator::load_trained(run, &device)?
                };
                if measured {
                    generator.measure_batch_norm(args.seed)?;
                }
                let images = sample_generator(&generator, n, args.seed)?;
                let scores = reference.score(&images, n, &config)?;
                let statistics = if measured { "measured" } else { "running" };
                emit(row(
                    &name,
                    &generator.step.to_string(),
                    label,
                    statistics,
                    &scores,
                ));
            }
        }
    }
    if let Some(out) = &args.out {
        let mut file =
            std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
        writeln!(file, "{}", lines.join("\n"))?;
    }
    Ok(())
}

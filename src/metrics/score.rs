//! Scoring a trained run: generate samples, look at them and at the real logos through the
//! feature encoder, and compute every measure twice: generated vs real, and real vs real (two
//! disjoint halves of the real logos, same sample count), the floor that sampling noise alone
//! gives. A score means something only next to its floor.

use std::path::Path;

use candle_core::{Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::distances::{
    frechet_distance, kernel_inception_distance, memorisation, precision_recall, Features, Kid,
    Memorisation, PrecisionRecall,
};
use super::encoder::{EncoderConfig, FeatureEncoder};
use crate::data::dataset::ImageDataset;
use crate::data::pipeline::ensure_dataset;
use crate::error::{Error, Result};
use crate::fsutil::write_atomic;
use crate::paths::DataLayout;
use crate::train::generate::TrainedGenerator;
use crate::train::RunDir;

/// How a run is scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreConfig {
    /// Generated images (and real images per half, at most).
    pub samples: usize,
    /// KID: random subsets and their size.
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
    /// Neighbours that set the manifold radii of precision and recall.
    pub k: usize,
    /// Seeds the noise of the samples and the real halves.
    pub seed: u64,
    pub encoder: EncoderConfig,
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            samples: 1000,
            kid_subsets: 50,
            kid_subset_size: 500,
            k: 3,
            seed: 0,
            encoder: EncoderConfig::default(),
        }
    }
}

/// The measures of one comparison.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub frechet: f64,
    pub kid: Kid,
    pub precision_recall: PrecisionRecall,
    pub memorisation: Memorisation,
}

/// A run's scores beside the real-vs-real floor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreReport {
    pub run: String,
    pub step: u64,
    pub samples: usize,
    pub encoder_version: String,
    pub generated: Scores,
    pub real_floor: Scores,
    pub config: ScoreConfig,
}

/// Compare `other` with the reference half `reference`, memorisation against all `real`.
fn compare(
    reference: &Features,
    other: &Features,
    real: &Features,
    c: &ScoreConfig,
) -> Result<Scores> {
    Ok(Scores {
        frechet: frechet_distance(reference, other)?,
        kid: kernel_inception_distance(reference, other, c.kid_subsets, c.kid_subset_size, c.seed)?,
        precision_recall: precision_recall(reference, other, c.k)?,
        memorisation: memorisation(real, other)?,
    })
}

// ANCHOR: score_features
/// Score generated features against real ones. Features are first standardised with the real
/// set's per-dimension mean and spread (so KID's polynomial kernel sees numbers of order 1 and no
/// dimension dominates the distances). The real set is split into two disjoint halves A and B
/// (seeded); generated images are compared with A, and B with A gives the floor. For
/// memorisation the floor's "generated" images are B, compared with A only (they are part of the
/// real set, so against all of it they would be their own nearest neighbours).
pub fn score_features(
    real: &Features,
    generated: &Features,
    config: &ScoreConfig,
) -> Result<(Scores, Scores)> {
    let (real, generated) = (&standardise(real, real), &standardise(real, generated));
    let half = real.rows / 2;
    let n = config.samples.min(half).min(generated.rows);
    if n <= config.k + 1 {
        return Err(Error::Metric(format!(
            "{n} images per set are too few to score: use more samples (and at least {} real images)",
            2 * (config.k + 2)
        )));
    }
    let mut order: Vec<usize> = (0..real.rows).collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(config.seed));
    let a = real.select(&order[..n]);
    let b = real.select(&order[half..half + n]);
    let generated = generated.select(&(0..n).collect::<Vec<_>>());
    let model = compare(&a, &generated, real, config)?;
    let floor = compare(&a, &b, &a, config)?;
    Ok((model, floor))
}
// ANCHOR_END: score_features

/// `f` with every dimension shifted and scaled by the mean and standard deviation of `reference`.
fn standardise(reference: &Features, f: &Features) -> Features {
    let (n, d) = (reference.rows as f64, reference.dim);
    let mut mean = vec![0.0; d];
    let mut var = vec![0.0; d];
    for i in 0..reference.rows {
        for (j, v) in reference.row(i).iter().enumerate() {
            mean[j] += v / n;
        }
    }
    for i in 0..reference.rows {
        for (j, v) in reference.row(i).iter().enumerate() {
            var[j] += (v - mean[j]).powi(2) / n;
        }
    }
    let scale: Vec<f64> = var
        .iter()
        .map(|v| if *v > 0.0 { 1.0 / v.sqrt() } else { 1.0 })
        .collect();
    let data = f
        .data
        .iter()
        .enumerate()
        .map(|(k, v)| (v - mean[k % d]) * scale[k % d])
        .collect();
    Features {
        rows: f.rows,
        dim: d,
        data,
    }
}

/// Score the run in `run_dir`: `config.samples` images from its generator against the clean real
/// logos of `layout`, through the feature encoder (trained on them first if needed).
pub fn score_run(
    run_dir: &Path,
    layout: &DataLayout,
    config: &ScoreConfig,
    device: &Device,
    on_encoder_epoch: &mut dyn FnMut(usize, f32),
) -> Result<ScoreReport> {
    let generator = TrainedGenerator::load(run_dir, device)?;
    let size = config.encoder.image_size;
    ensure_dataset(layout, size as u32, false)?;
    let real_images = ImageDataset::load(&layout.clean(size as u32), size, device)?;
    let encoder = FeatureEncoder::load_or_train(
        &layout.processed(size as u32),
        &config.encoder,
        &real_images,
        on_encoder_epoch,
    )?;
    let real = encoder.dataset_features(&real_images)?;
    let mut batches = Vec::new();
    for start in (0..config.samples).step_by(256) {
        let z = generator.noise(
            256.min(config.samples - start),
            config.seed.wrapping_add(start as u64),
        )?;
        batches.push(generator.generator.forward_t(&z, false)?);
    }
    let generated = encoder.features(&Tensor::cat(&batches, 0)?)?;
    let (model, floor) = score_features(&real, &generated, config)?;
    let report = ScoreReport {
        run: run_dir.display().to_string(),
        step: generator.step,
        samples: config.samples.min(real.rows / 2),
        encoder_version: encoder.version.clone(),
        generated: model,
        real_floor: floor,
        config: config.clone(),
    };
    let run = RunDir::new(run_dir);
    write_atomic(
        &run.root.join("score.json"),
        serde_json::to_string_pretty(&report)?.as_bytes(),
    )?;
    write_atomic(&run.root.join("score.md"), report.table().as_bytes())?;
    Ok(report)
}

impl ScoreReport {
    /// The scores as a Markdown table, each beside its real-vs-real floor.
    pub fn table(&self) -> String {
        let (g, f) = (&self.generated, &self.real_floor);
        let rows = [
            (
                "Fréchet distance ↓",
                format!("{:.3}", g.frechet),
                format!("{:.3}", f.frechet),
            ),
            (
                "KID ×1000 ↓",
                format!(
                    "{:.2} ± {:.2}",
                    g.kid.mean * 1e3,
                    g.kid.standard_error * 1e3
                ),
                format!(
                    "{:.2} ± {:.2}",
                    f.kid.mean * 1e3,
                    f.kid.standard_error * 1e3
                ),
            ),
            (
                "precision ↑",
                format!("{:.3}", g.precision_recall.precision),
                format!("{:.3}", f.precision_recall.precision),
            ),
            (
                "recall ↑",
                format!("{:.3}", g.precision_recall.recall),
                format!("{:.3}", f.precision_recall.recall),
            ),
            (
                "memorisation ratio (≈1 healthy, ≪1 copies)",
                format!("{:.3}", g.memorisation.ratio),
                format!("{:.3}", f.memorisation.ratio),
            ),
            (
                "near-copies",
                format!("{:.1}%", 100.0 * g.memorisation.near_copies),
                format!("{:.1}%", 100.0 * f.memorisation.near_copies),
            ),
        ];
        let mut out = format!(
            "| measure ({} images per set, encoder {}) | generated (step {}) | real vs real |\n|---|---:|---:|\n",
            self.samples, self.encoder_version, self.step
        );
        for (name, a, b) in rows {
            out.push_str(&format!("| {name} | {a} | {b} |\n"));
        }
        out
    }
}

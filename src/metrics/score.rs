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
use crate::fsutil::{save_png, write_atomic};
use crate::paths::DataLayout;
use crate::train::generate::TrainedGenerator;
use crate::train::RunDir;
use crate::viz::{image_grid, tensor_to_images};

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
    /// The run folder, or the file of images that was scored.
    pub run: String,
    /// The training step of the run's checkpoint (none for images made elsewhere).
    pub step: Option<u64>,
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

/// The real side of every comparison: the feature encoder (trained on the real logos first if it
/// is not cached yet) and the real logos' features.
pub struct RealReference {
    pub encoder: FeatureEncoder,
    pub features: Features,
}

impl RealReference {
    /// The clean real logos of `layout` at the encoder's size, seen through the encoder.
    pub fn load(
        layout: &DataLayout,
        config: &ScoreConfig,
        device: &Device,
        on_encoder_epoch: &mut dyn FnMut(usize, f32),
    ) -> Result<Self> {
        let size = config.encoder.image_size;
        ensure_dataset(layout, size as u32, false)?;
        let real_images = ImageDataset::load(&layout.clean(size as u32), size, device)?;
        let encoder = FeatureEncoder::load_or_train(
            &layout.processed(size as u32),
            &config.encoder,
            &real_images,
            on_encoder_epoch,
        )?;
        let features = encoder.dataset_features(&real_images)?;
        Ok(Self { encoder, features })
    }

    /// Score `generated` images `(N, 3, S, S)` in [-1, 1] (any S), as [`score_features`] does.
    pub fn score(&self, generated: &Tensor, config: &ScoreConfig) -> Result<(Scores, Scores)> {
        let generated = self.encoder.features(generated)?;
        score_features(&self.features, &generated, config)
    }

    fn report(
        &self,
        source: &Path,
        step: Option<u64>,
        generated: &Tensor,
        config: &ScoreConfig,
    ) -> Result<ScoreReport> {
        let (model, floor) = self.score(generated, config)?;
        Ok(ScoreReport {
            run: source.display().to_string(),
            step,
            samples: config
                .samples
                .min(self.features.rows / 2)
                .min(generated.dim(0)?),
            encoder_version: self.encoder.version.clone(),
            generated: model,
            real_floor: floor,
            config: config.clone(),
        })
    }
}

/// Score the run in `run_dir`: `config.samples` images from its generator against the clean real
/// logos of `layout`, through the feature encoder (trained on them first if needed). Writes
/// `score.md` and `score.json` into the run.
pub fn score_run(
    run_dir: &Path,
    layout: &DataLayout,
    config: &ScoreConfig,
    device: &Device,
    on_encoder_epoch: &mut dyn FnMut(usize, f32),
) -> Result<ScoreReport> {
    let generator = TrainedGenerator::load(run_dir, device)?;
    let reference = RealReference::load(layout, config, device, on_encoder_epoch)?;
    let mut batches = Vec::new();
    for start in (0..config.samples).step_by(256) {
        let z = generator.noise(
            256.min(config.samples - start),
            config.seed.wrapping_add(start as u64),
        )?;
        batches.push(generator.generator.forward_t(&z, false)?);
    }
    let generated = Tensor::cat(&batches, 0)?;
    let report = reference.report(run_dir, Some(generator.step), &generated, config)?;
    let run = RunDir::new(run_dir);
    report.save(&run.root.join("score"))?;
    Ok(report)
}

/// Score images made by any program, stored as a `.npy` of `u8` `(N, 3, S, S)` (see
/// [`ImageDataset::load_npy`]): the first `config.samples` of them, against the real logos. Writes
/// `<file>.score.md`, `<file>.score.json` and a grid of the first 64 images, `<file>.grid.png`,
/// beside the file. This is how the PyTorch reference under `reference/` is judged by the same
/// code as the course's own runs.
pub fn score_images(
    images: &Path,
    layout: &DataLayout,
    config: &ScoreConfig,
    device: &Device,
    on_encoder_epoch: &mut dyn FnMut(usize, f32),
) -> Result<ScoreReport> {
    let data = ImageDataset::load_npy(images, device)?;
    let n = data.len().min(config.samples);
    let generated = data.get(&(0..n as u32).collect::<Vec<_>>())?;
    let reference = RealReference::load(layout, config, device, on_encoder_epoch)?;
    let report = reference.report(images, None, &generated, config)?;
    report.save(&images.with_extension("score"))?; // samples.npy → samples.score.{md,json}
    let tiles = tensor_to_images(&generated.narrow(0, 0, n.min(64))?)?;
    save_png(
        &images.with_extension("grid.png"),
        &image_grid(&tiles, 8, 2),
    )?;
    Ok(report)
}

impl ScoreReport {
    /// Write `<base>.json` and `<base>.md` (atomically).
    fn save(&self, base: &Path) -> Result<()> {
        let with = |extension: &str| {
            let mut path = base.as_os_str().to_owned();
            path.push(extension);
            std::path::PathBuf::from(path)
        };
        write_atomic(
            &with(".json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )?;
        write_atomic(&with(".md"), self.table().as_bytes())
    }

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
        let generated = match self.step {
            Some(step) => format!("generated (step {step})"),
            None => "generated".to_string(),
        };
        let mut out = format!(
            "| measure ({} images per set, encoder {}) | {generated} | real vs real |\n|---|---:|---:|\n",
            self.samples, self.encoder_version
        );
        for (name, a, b) in rows {
            out.push_str(&format!("| {name} | {a} | {b} |\n"));
        }
        out
    }
}

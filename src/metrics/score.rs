//! Scoring generated images: look at them and at real logos through the feature encoder, and
//! compute every measure twice — generated vs the train logos, and *held-out* logos (which no
//! model trained on) vs the train logos: the floor, what a perfect generator would score with
//! this many images. A score means something only next to its floor.

use std::path::Path;

use candle_core::{DType, Device, Tensor};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::distances::{
    density_coverage, frechet_distance, kernel_inception_distance, memorisation, precision_recall,
    DensityCoverage, Features, Kid, Memorisation, PrecisionRecall,
};
use super::encoder::{resize, EncoderConfig, FeatureEncoder};
use super::two_sample::{feature_two_sample_test, two_sample_test, TwoSample, TwoSampleConfig};
use crate::data::augment::is_variant_name;
use crate::data::dataset::ImageDataset;
use crate::data::pipeline::ensure_dataset;
use crate::error::{Error, Result};
use crate::fsutil::{save_png, write_atomic};
use crate::metrics::families::{cluster_training_logos, families_path, FamilyRow, MAX_FAMILIES};
use crate::paths::DataLayout;
use crate::train::generate::TrainedGenerator;
use crate::train::RunDir;
use crate::viz::{image_grid, tensor_to_images};

/// How images are scored.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoreConfig {
    /// Images per set (generated, held-out, train reference), at most: fewer when the held-out
    /// side or the generated set is smaller.
    pub samples: usize,
    /// KID: random subsets and their size.
    pub kid_subsets: usize,
    pub kid_subset_size: usize,
    /// Neighbours that set the manifold radii of precision and recall (the paper's 3)…
    pub k: usize,
    /// …and of density and coverage (the paper's 5).
    pub density_k: usize,
    /// Seeds the noise of the samples and the choice of reference images.
    pub seed: u64,
    pub encoder: EncoderConfig,
    pub two_sample: TwoSampleConfig,
}

/// Most images per scored set (the `--samples` flag's bound too).
pub const MAX_SCORE_SAMPLES: usize = 100_000;

impl ScoreConfig {
    /// Refuse settings no score can be computed with, or that would ask for more memory or time
    /// than any machine has, naming the key (as written in a sweep file's `[score]`).
    pub fn validate(&self) -> Result<()> {
        let within = |field: &str, value: usize, range: std::ops::RangeInclusive<usize>| {
            if range.contains(&value) {
                Ok(())
            } else {
                Err(Error::config(
                    field,
                    format!("{value} is not in {}..={}", range.start(), range.end()),
                ))
            }
        };
        within("samples", self.samples, 20..=MAX_SCORE_SAMPLES)?;
        within("kid_subsets", self.kid_subsets, 1..=10_000)?;
        within(
            "kid_subset_size",
            self.kid_subset_size,
            2..=MAX_SCORE_SAMPLES,
        )?;
        // Neighbours among the samples: fewer than a set has, and a handful in the literature.
        within("k", self.k, 1..=100)?;
        within("density_k", self.density_k, 1..=100)?;
        self.encoder.validate()?;
        self.two_sample.validate_settings()
    }
}

impl Default for ScoreConfig {
    fn default() -> Self {
        Self {
            samples: 1000,
            kid_subsets: 50,
            kid_subset_size: 500,
            k: 3,
            density_k: 5,
            seed: 0,
            encoder: EncoderConfig::default(),
            two_sample: TwoSampleConfig::default(),
        }
    }
}

/// The measures of one set of images against the train logos.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Scores {
    pub kid: Kid,
    pub frechet: f64,
    pub precision_recall: PrecisionRecall,
    pub density_coverage: DensityCoverage,
    /// Accuracy of classifiers telling these images from held-out logos (0.5 ideal).
    pub two_sample: TwoSample,
    /// The same question asked of the encoder's features by logistic regression (0.5 ideal).
    #[serde(default)]
    pub two_sample_features: TwoSample,
    pub memorisation: Memorisation,
}

/// A set's scores beside the held-out floor.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ScoreReport {
    /// The run folder, or the file of images that was scored.
    pub run: String,
    /// The training step of the run's checkpoint (none for images made elsewhere).
    pub step: Option<u64>,
    pub samples: usize,
    pub encoder_version: String,
    pub generated: Scores,
    /// Held-out logos scored the same way: the best a generator can hope for.
    pub real_floor: Scores,
    pub config: ScoreConfig,
}

/// Per-dimension mean and 1/spread of the train features: every set is standardised with them,
/// so KID's polynomial kernel sees numbers of order 1 and no dimension dominates the distances.
pub(crate) struct Standardiser {
    mean: Vec<f64>,
    scale: Vec<f64>,
}

impl Standardiser {
    pub(crate) fn fit(reference: &Features) -> Self {
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
        let scale = var
            .iter()
            .map(|v| if *v > 0.0 { 1.0 / v.sqrt() } else { 1.0 })
            .collect();
        Self { mean, scale }
    }

    pub(crate) fn apply(&self, f: &Features) -> Features {
        let d = f.dim;
        let data = f
            .data
            .iter()
            .enumerate()
            .map(|(k, v)| (v - self.mean[k % d]) * self.scale[k % d])
            .collect();
        Features {
            rows: f.rows,
            dim: d,
            data,
        }
    }
}

/// Generated images as a PNG would store them: rounded to the 256 levels real images have, so
/// the two-sample classifier cannot tell them apart by quantisation alone.
pub fn quantise(images: &Tensor) -> Result<Tensor> {
    Ok(((images.clamp(-1f32, 1f32)? + 1.0)? * 127.5)?
        .round()?
        .affine(2.0 / 255.0, -1.0)?)
}

/// One side of the two-sample tests: images at the judge's size, and their features.
struct TwoSampleSide {
    images: Tensor,
    features: Features,
}

/// The real side of every comparison: the feature encoder (trained on the train logos first if
/// it is not cached yet), the train logos and the held-out logos, with their features.
pub struct RealReference {
    pub encoder: FeatureEncoder,
    /// The GAN's training images (train side, with augmented variants), at the encoder's size.
    pub train: ImageDataset,
    /// Their features, standardised (see [`Standardiser`]), like every set's features.
    pub train_features: Features,
    /// The held-out side (augmented the same way): never trained on.
    pub held_out: ImageDataset,
    pub held_out_features: Features,
    standardiser: Standardiser,
}

impl RealReference {
    /// The real logos of `layout` at the encoder's size, split into train and held-out, seen
    /// through the encoder. `on_encoder_step(step, loss)` reports the encoder's training.
    pub fn load(
        layout: &DataLayout,
        config: &ScoreConfig,
        device: &Device,
        on_encoder_step: &mut dyn FnMut(usize, f32),
    ) -> Result<Self> {
        config.validate()?;
        let size = config.encoder.image_size;
        ensure_dataset(layout, size as u32, false)?;
        let train = ImageDataset::load(&layout.train(size as u32), size, device)?;
        let held_out = ImageDataset::load(&layout.held_out(size as u32), size, device)?;
        let encoder = FeatureEncoder::load_or_train(
            &layout.processed(size as u32),
            &config.encoder,
            &train,
            on_encoder_step,
        )?;
        let train_features = encoder.dataset_features(&train)?;
        let standardiser = Standardiser::fit(&train_features);
        let train_features = standardiser.apply(&train_features);
        let held_out_features = standardiser.apply(&encoder.dataset_features(&held_out)?);
        Ok(Self {
            encoder,
            train,
            train_features,
            held_out,
            held_out_features,
            standardiser,
        })
    }

    /// Images per set when scoring `available` images with `config`.
    pub fn set_size(&self, available: usize, config: &ScoreConfig) -> usize {
        config.samples.min(self.held_out.len()).min(available)
    }

    /// `n` rows of `total`, chosen with `seed` (the same rows for every set scored).
    fn rows(total: usize, n: usize, seed: u64) -> Vec<u32> {
        let mut order: Vec<u32> = (0..total as u32).collect();
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
        order.truncate(n);
        order
    }

    /// The `n` train logos every set is compared with (chosen with `seed`).
    pub fn train_rows(&self, n: usize, seed: u64) -> Vec<u32> {
        Self::rows(self.train.len(), n, seed)
    }

    /// The `n` held-out logos of the floor (chosen with `seed`).
    pub fn held_out_rows(&self, n: usize, seed: u64) -> Vec<u32> {
        Self::rows(self.held_out.len(), n, seed ^ 1)
    }

    /// The clean logos of `data` without their augmented variants, as a batch of images: the
    /// real side of a two-sample test. One image per logo, because a classifier that trained on
    /// a logo would recognise its mirrored or recoloured copy in the test fold, and tell real
    /// sets apart by memory.
    pub fn originals(data: &ImageDataset) -> Result<Tensor> {
        data.get(&Self::original_rows(data))
    }

    /// The rows of `data` that are clean logos, not augmented variants.
    fn original_rows(data: &ImageDataset) -> Vec<u32> {
        (0..data.len() as u32)
            .filter(|&i| !is_variant_name(&data.names[i as usize]))
            .collect()
    }

    /// `data`'s clean logos as one side of the two-sample tests: their images, and their rows
    /// of `features` (which are all of `data`'s, in its order).
    fn originals_side(data: &ImageDataset, features: &Features) -> Result<TwoSampleSide> {
        let rows: Vec<usize> = Self::original_rows(data)
            .iter()
            .map(|&i| i as usize)
            .collect();
        Ok(TwoSampleSide {
            images: Self::originals(data)?,
            features: features.select(&rows),
        })
    }

    // ANCHOR: score_set
    /// Score `images` `(N, 3, S, S)` in [-1, 1] (any S; the first `n` are used) against `n` train
    /// logos chosen with the seed. The two-sample tests tell them from held-out logos (one image
    /// per logo; as many of each set as there are held-out logos, at most `n`).
    pub fn score(&self, images: &Tensor, n: usize, config: &ScoreConfig) -> Result<Scores> {
        let (images, features) = self.look_at(images, n, config)?;
        let held_out = Self::originals_side(&self.held_out, &self.held_out_features)?;
        let this_set = TwoSampleSide { images, features };
        self.measure(&this_set.features, n, config, (&held_out, &this_set))
    }

    /// Every measure of a set with standardised `features` against `n` train logos; the
    /// two-sample tests pit `pair.0` (real, label 1) against `pair.1`.
    fn measure(
        &self,
        features: &Features,
        n: usize,
        c: &ScoreConfig,
        pair: (&TwoSampleSide, &TwoSampleSide),
    ) -> Result<Scores> {
        let rows: Vec<usize> = self
            .train_rows(n, c.seed)
            .iter()
            .map(|&i| i as usize)
            .collect();
        let reference = self.train_features.select(&rows);
        Ok(Scores {
            kid: kernel_inception_distance(
                &reference,
                features,
                c.kid_subsets,
                c.kid_subset_size,
                c.seed,
            )?,
            frechet: frechet_distance(&reference, features)?,
            precision_recall: precision_recall(&reference, features, c.k)?,
            density_coverage: density_coverage(&reference, features, c.density_k)?,
            two_sample: two_sample_test(&pair.0.images, &pair.1.images, &c.two_sample)?,
            two_sample_features: feature_two_sample_test(
                &pair.0.features,
                &pair.1.features,
                c.two_sample.folds,
                c.two_sample.feature_ridge,
                c.seed,
            )?,
            memorisation: memorisation(&self.train_features, features, &self.held_out_features)?,
        })
    }
    // ANCHOR_END: score_set

    /// `images` as the judge sees them: the first `n`, quantised to 256 levels, at the encoder's
    /// size; and their standardised features.
    fn look_at(
        &self,
        images: &Tensor,
        n: usize,
        config: &ScoreConfig,
    ) -> Result<(Tensor, Features)> {
        if n <= config.k.max(config.density_k) + 1 || n < 20 {
            return Err(Error::Metric(format!(
                "{n} images per set are too few to score: use at least 20 (more samples, or a \
                 data set with more held-out logos)"
            )));
        }
        let s = self.encoder.config.image_size;
        let mut images = quantise(&images.narrow(0, 0, n)?.to_dtype(DType::F32)?)?;
        if images.dim(2)? != s {
            images = resize(&images, s)?;
        }
        let features = self.standardiser.apply(&self.encoder.features(&images)?);
        Ok((images, features))
    }

    /// The floor: `n` held-out logos scored as if generated (their two-sample tests pit
    /// held-out logos against train logos, the only other real images there are).
    pub fn floor(&self, n: usize, config: &ScoreConfig) -> Result<Scores> {
        let held = self.held_out.get(&self.held_out_rows(n, config.seed))?;
        let (_, features) = self.look_at(&held, n, config)?;
        let held_out = Self::originals_side(&self.held_out, &self.held_out_features)?;
        let train = Self::originals_side(&self.train, &self.train_features)?;
        self.measure(&features, n, config, (&held_out, &train))
    }

    /// Score `generated` beside the floor and describe where the images came from.
    pub fn report(
        &self,
        source: &Path,
        step: Option<u64>,
        generated: &Tensor,
        config: &ScoreConfig,
    ) -> Result<ScoreReport> {
        let n = self.set_size(generated.dim(0)?, config);
        Ok(ScoreReport {
            run: source.display().to_string(),
            step,
            samples: n,
            encoder_version: self.encoder.version.clone(),
            generated: self.score(generated, n, config)?,
            real_floor: self.floor(n, config)?,
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
    on_encoder_step: &mut dyn FnMut(usize, f32),
) -> Result<ScoreReport> {
    let generator = TrainedGenerator::load(run_dir, device)?;
    score_generator(
        &generator,
        run_dir,
        "score",
        layout,
        config,
        device,
        on_encoder_step,
    )
}

/// [`score_run`] for the generator the run trained rather than its moving average (what the
/// average adds): writes `score-trained-g.md` and `.json` into the run.
pub fn score_run_trained_generator(
    run_dir: &Path,
    layout: &DataLayout,
    config: &ScoreConfig,
    device: &Device,
    on_encoder_step: &mut dyn FnMut(usize, f32),
) -> Result<ScoreReport> {
    let generator = TrainedGenerator::load_trained(run_dir, device)?;
    score_generator(
        &generator,
        run_dir,
        "score-trained-g",
        layout,
        config,
        device,
        on_encoder_step,
    )
}

fn score_generator(
    generator: &TrainedGenerator,
    run_dir: &Path,
    file_stem: &str,
    layout: &DataLayout,
    config: &ScoreConfig,
    device: &Device,
    on_encoder_step: &mut dyn FnMut(usize, f32),
) -> Result<ScoreReport> {
    let reference = RealReference::load(layout, config, device, on_encoder_step)?;
    let generated = sample_generator(generator, config.samples, config.seed)?;
    let report = reference.report(run_dir, Some(generator.step), &generated, config)?;
    report.save(&RunDir::new(run_dir).root.join(file_stem))?;
    Ok(report)
}

/// One family's scores (chapter 7): the run's samples of that family against the train logos of
/// that family, beside held-out logos of that family (the floor), and how much of what G draws
/// lands in the family.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FamilyScore {
    pub family: u32,
    /// Train logos of the family (the reference), and held-out ones (the floor's sample).
    pub train_logos: usize,
    pub held_out_logos: usize,
    /// Share of the train logos in this family.
    pub train_share: f64,
    /// Images per set: the family's held-out logos, at most `config.samples` (fewer when an
    /// unconditional G drew fewer of the family).
    pub samples: usize,
    /// Of the images G drew, the share nearest this family's centre. An unconditional run:
    /// among free samples, to set beside `train_share` (a family G neglects draws less than its
    /// share). A conditional run: among the samples asked for this family (1 = G always draws
    /// the family it is asked for).
    pub nearest_share: f64,
    /// `None` when an unconditional G drew fewer than 20 images of the family.
    pub kid: Option<Kid>,
    pub floor: Kid,
}

/// The most free samples drawn to find an unconditional run's images of each family.
pub const MAX_FAMILY_POOL: usize = 20_000;

/// The KID of every logo family of the run in `run_dir` against the train logos of its family,
/// beside that family's floor. A conditional run uses its own families (`families.csv`) and is
/// asked for each in turn. An unconditional run is judged in chapter 7's `unconditional_k`
/// families of the training logos (clustered first if missing): it draws `samples × k` free
/// images (at most [`MAX_FAMILY_POOL`]) and each joins the family whose centre is nearest.
/// A centre is the mean standardised features of the family's train logos, and a held-out logo
/// joins its nearest family the same way. A family with fewer than 20 held-out logos is left
/// out: its KID would be noise. `average`: sample the run's average of weights when it keeps
/// one (as `generate` does), else the generator it trained. Writes [`family_score_file`]'s
/// `.md` and `.json` into the run.
pub fn score_families(
    run_dir: &Path,
    layout: &DataLayout,
    config: &ScoreConfig,
    unconditional_k: usize,
    average: bool,
    device: &Device,
) -> Result<FamilyScores> {
    let mut generator = if average {
        TrainedGenerator::load(run_dir, device)?
    } else {
        TrainedGenerator::load_trained(run_dir, device)?
    };
    let conditional = generator.classes() > 0;
    let (k, family_file) = if conditional {
        (generator.classes(), RunDir::new(run_dir).families())
    } else {
        if !(2..=MAX_FAMILIES).contains(&unconditional_k) {
            return Err(Error::Metric(format!(
                "{unconditional_k} families: give 2 to {MAX_FAMILIES}"
            )));
        }
        let path = families_path(layout, unconditional_k);
        if !path.is_file() {
            cluster_training_logos(layout, unconditional_k, 8, device)?;
        }
        (unconditional_k, path)
    };
    let reference = RealReference::load(layout, config, device, &mut |_, _| ())?;
    let rows: Vec<FamilyRow> = crate::fsutil::read_csv(&family_file)?;
    let of_name: std::collections::HashMap<&str, u32> =
        rows.iter().map(|r| (r.name.as_str(), r.family)).collect();
    let (train, dim) = (&reference.train_features, reference.train_features.dim);
    let mut train_rows = vec![Vec::new(); k];
    for (i, name) in reference.train.names.iter().enumerate() {
        if let Some(&f) = of_name.get(name.as_str()).filter(|&&f| (f as usize) < k) {
            train_rows[f as usize].push(i);
        }
    }
    let centres: Vec<Vec<f64>> = train_rows
        .iter()
        .map(|rows| {
            let mut centre = vec![0.0; dim];
            for &i in rows {
                centre
                    .iter_mut()
                    .zip(train.row(i))
                    .for_each(|(c, x)| *c += x);
            }
            centre
                .iter()
                .map(|c| c / rows.len().max(1) as f64)
                .collect()
        })
        .collect();
    // The family whose centre is nearest to a row of standardised features.
    let nearest = |row: &[f64]| -> Option<usize> {
        let distance =
            |c: &Vec<f64>| -> f64 { c.iter().zip(row).map(|(a, b)| (a - b) * (a - b)).sum() };
        (0..k)
            .filter(|&f| !train_rows[f].is_empty())
            .min_by(|&a, &b| distance(&centres[a]).total_cmp(&distance(&centres[b])))
    };
    let members = |features: &Features| -> Vec<Vec<usize>> {
        let mut rows = vec![Vec::new(); k];
        for i in 0..features.rows {
            if let Some(f) = nearest(features.row(i)) {
                rows[f].push(i);
            }
        }
        rows
    };
    let held = &reference.held_out_features;
    let held_rows = members(held);
    // An unconditional G is asked for nothing: one pool of free samples, sorted into families.
    let pool = if conditional {
        None
    } else {
        let n = (config.samples * k).min(MAX_FAMILY_POOL);
        let images = sample_generator(&generator, n, config.seed)?;
        let (_, features) = reference.look_at(&images, n, config)?;
        let rows = members(&features);
        Some((features, rows))
    };
    let total_train: usize = train_rows.iter().map(Vec::len).sum();
    let mut scores = Vec::new();
    for family in 0..k {
        let wanted = config.samples.min(held_rows[family].len());
        if wanted < 20 || train_rows[family].len() < 20 {
            continue;
        }
        let (generated, nearest_share) = match &pool {
            None => {
                generator.set_family(Some(family as u32))?;
                let images = sample_generator(&generator, wanted, config.seed)?;
                let (_, generated) = reference.look_at(&images, wanted, config)?;
                let own = members(&generated)[family].len();
                (generated, own as f64 / wanted as f64)
            }
            Some((features, rows)) => {
                let share = rows[family].len() as f64 / features.rows as f64;
                let own = &rows[family][..wanted.min(rows[family].len())];
                (features.select(own), share)
            }
        };
        let n = generated.rows;
        let kid = |a: &Features, b: &Features| {
            kernel_inception_distance(
                a,
                b,
                config.kid_subsets,
                config.kid_subset_size,
                config.seed,
            )
        };
        let reference_rows = train.select(&train_rows[family]);
        let floor = held.select(&held_rows[family][..wanted]);
        scores.push(FamilyScore {
            family: family as u32,
            train_logos: train_rows[family].len(),
            held_out_logos: held_rows[family].len(),
            train_share: train_rows[family].len() as f64 / total_train.max(1) as f64,
            samples: n,
            nearest_share,
            kid: if n >= 20 {
                Some(kid(&reference_rows, &generated)?)
            } else {
                None
            },
            floor: kid(&reference_rows, &floor)?,
        });
    }
    let scores = FamilyScores {
        conditional,
        families: scores,
    };
    write_atomic(
        &run_dir.join(family_score_file(average, "json")),
        serde_json::to_string_pretty(&scores)?.as_bytes(),
    )?;
    write_atomic(
        &run_dir.join(family_score_file(average, "md")),
        scores.table().as_bytes(),
    )?;
    Ok(scores)
}

/// Where [`score_families`] writes: `families.score.<extension>` for the run's generator as it
/// samples (its average when it keeps one), `families-trained-g.score.<extension>` for the
/// generator it trained.
pub fn family_score_file(average: bool, extension: &str) -> String {
    let stem = if average {
        "families"
    } else {
        "families-trained-g"
    };
    format!("{stem}.score.{extension}")
}

/// [`score_families`]' result: every family's scores, and whether the run was conditional
/// (which says what `nearest_share` counts).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FamilyScores {
    pub conditional: bool,
    pub families: Vec<FamilyScore>,
}

impl FamilyScores {
    /// A Markdown table, KID ×1000.
    pub fn table(&self) -> String {
        let share = if self.conditional {
            "samples asked for the family that lie nearest it"
        } else {
            "free samples nearest the family"
        };
        let mut table = format!(
            "| family | train logos (share) | held-out logos | images per set | KID ×1000 ↓ | floor | {share} |\n|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for s in &self.families {
            let kid = match &s.kid {
                Some(kid) => format!(
                    "{:.1} ± {:.1}",
                    kid.mean * 1000.0,
                    kid.standard_error * 1000.0
                ),
                None => "— (too few drawn)".to_string(),
            };
            table.push_str(&format!(
                "| {} | {} ({:.0}%) | {} | {} | {kid} | {:.1} ± {:.1} | {:.0}% |\n",
                s.family,
                s.train_logos,
                s.train_share * 100.0,
                s.held_out_logos,
                s.samples,
                s.floor.mean * 1000.0,
                s.floor.standard_error * 1000.0,
                s.nearest_share * 100.0,
            ));
        }
        table
    }
}

/// `n` images `(n, 3, S, S)` in [-1, 1] from a trained generator in inference mode, the noise of
/// each batch of 256 drawn from `seed + first row`: the samples `score` judges.
pub fn sample_generator(generator: &TrainedGenerator, n: usize, seed: u64) -> Result<Tensor> {
    let mut batches = Vec::new();
    for start in (0..n).step_by(256) {
        let z = generator.noise(256.min(n - start), seed.wrapping_add(start as u64))?;
        batches.push(generator.sample(&z)?);
    }
    Ok(Tensor::cat(&batches, 0)?)
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
    on_encoder_step: &mut dyn FnMut(usize, f32),
) -> Result<ScoreReport> {
    let mut reports = score_image_files(
        std::slice::from_ref(&images.to_path_buf()),
        layout,
        config,
        device,
        on_encoder_step,
    )?;
    Ok(reports.remove(0))
}

/// [`score_images`] for several files (e.g. the snapshots of a run over time), with the real
/// side — encoder, real features and the held-out floor — computed once for all of them.
pub fn score_image_files(
    files: &[std::path::PathBuf],
    layout: &DataLayout,
    config: &ScoreConfig,
    device: &Device,
    on_encoder_step: &mut dyn FnMut(usize, f32),
) -> Result<Vec<ScoreReport>> {
    // Read every file first: a bad one is reported before minutes of scoring.
    let sets = files
        .iter()
        .map(|f| ImageDataset::load_npy(f, device))
        .collect::<Result<Vec<_>>>()?;
    let reference = RealReference::load(layout, config, device, on_encoder_step)?;
    let mut floors: Vec<(usize, Scores)> = Vec::new();
    let mut reports = Vec::with_capacity(files.len());
    for (file, data) in files.iter().zip(&sets) {
        let available = data.len().min(config.samples);
        let generated = data.get(&(0..available as u32).collect::<Vec<_>>())?;
        let n = reference.set_size(available, config);
        let real_floor = match floors.iter().find(|(size, _)| *size == n) {
            Some((_, floor)) => *floor,
            None => {
                let floor = reference.floor(n, config)?;
                floors.push((n, floor));
                floor
            }
        };
        let report = ScoreReport {
            run: file.display().to_string(),
            step: None,
            samples: n,
            encoder_version: reference.encoder.version.clone(),
            generated: reference.score(&generated, n, config)?,
            real_floor,
            config: config.clone(),
        };
        report.save(&file.with_extension("score"))?; // samples.npy → samples.score.{md,json}
        let tiles = tensor_to_images(&generated.narrow(0, 0, available.min(64))?)?;
        save_png(&file.with_extension("grid.png"), &image_grid(&tiles, 8, 2))?;
        reports.push(report);
    }
    Ok(reports)
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

    /// The scores as a Markdown table, each beside its held-out floor.
    pub fn table(&self) -> String {
        let generated = match self.step {
            Some(step) => format!("generated (step {step})"),
            None => "generated".to_string(),
        };
        let mut out = format!(
            "| measure ({} images per set, encoder {}) | {generated} | held-out real (floor) |\n|---|---:|---:|\n",
            self.samples, self.encoder_version
        );
        for (name, a, b) in score_rows(&self.generated, &self.real_floor) {
            out.push_str(&format!("| {name} | {a} | {b} |\n"));
        }
        out
    }
}

/// The rows of a score table: each measure's name (with which way is better) and its value in
/// `a` and `b`.
pub fn score_rows(a: &Scores, b: &Scores) -> Vec<(&'static str, String, String)> {
    type Show = fn(&Scores) -> String;
    let measures: [(&str, Show); 10] = [
        ("KID ×1000 ↓", |s| {
            format!(
                "{:.2} ± {:.2}",
                s.kid.mean * 1e3,
                s.kid.standard_error * 1e3
            )
        }),
        ("Fréchet distance ↓", |s| format!("{:.2}", s.frechet)),
        ("precision ↑", |s| {
            format!("{:.3}", s.precision_recall.precision)
        }),
        ("recall ↑", |s| {
            format!("{:.3}", s.precision_recall.recall)
        }),
        ("density (≈1 for real) ↑", |s| {
            format!("{:.3}", s.density_coverage.density)
        }),
        ("coverage ↑", |s| {
            format!("{:.3}", s.density_coverage.coverage)
        }),
        ("two-sample accuracy (0.5 ideal, 1 all fake) ↓", |s| {
            format!(
                "{:.3} ± {:.3}",
                s.two_sample.accuracy, s.two_sample.standard_error
            )
        }),
        ("two-sample accuracy on features ↓", |s| {
            format!(
                "{:.3} ± {:.3}",
                s.two_sample_features.accuracy, s.two_sample_features.standard_error
            )
        }),
        ("memorisation ratio (≈1 healthy, ≪1 copies)", |s| {
            format!("{:.3}", s.memorisation.ratio)
        }),
        ("near-copies (5% for held-out logos)", |s| {
            format!("{:.1}%", 100.0 * s.memorisation.near_copies)
        }),
    ];
    measures
        .iter()
        .map(|(name, show)| (*name, show(a), show(b)))
        .collect()
}

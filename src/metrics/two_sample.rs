//! The classifier two-sample test (Lopez-Paz & Oquab 2017): can a small network, trained for a
//! minute, tell generated images from real ones it has never seen?
//!
//! The two sets are cut into folds; for each fold a fresh CNN is trained on the others and
//! tested on it, so every image is classified by a network that did not train on it. Accuracy
//! 0.5 means the classifier found nothing to go by — the ideal; 1.0 means every image is
//! recognisably fake. Unlike the feature-space measures, this one has no fixed eyes: it learns
//! whatever gives the fakes away (blur, noise, a wrong colour palette, a missing white margin).

use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::encoder::strided_blocks;
use crate::error::{Error, Result};
use crate::model::layers::{init_dcgan, ConvBlock, Pass};
use crate::ops::ChannelMajor;
use crate::train::adam::{Adam, AdamConfig};

/// Settings of the two-sample test.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoSampleConfig {
    /// Cross-validation folds: each image is tested once, by a classifier trained without it.
    pub folds: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Filters of the classifier's first convolution (they double twice).
    pub filters: usize,
    /// Images are compared at this size (a power of two ≥ 8; others are resized first).
    pub image_size: usize,
    pub seed: u64,
}

impl Default for TwoSampleConfig {
    fn default() -> Self {
        Self {
            folds: 2,
            epochs: 30,
            batch_size: 32,
            lr: 1e-3,
            filters: 16,
            image_size: 32,
            seed: 0,
        }
    }
}

/// The held-out accuracy of the classifiers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TwoSample {
    /// Share of images classified right, over all folds: 0.5 ideal, 1.0 all recognisably fake.
    pub accuracy: f64,
    /// Binomial standard error of the accuracy.
    pub standard_error: f64,
}

// ANCHOR: two_sample_classifier
/// The classifier: three strided convolution blocks (batch-norm, LeakyReLU), then one linear
/// layer from the whole last feature map to a logit (not from its mean over the image: where a
/// defect sits, and how strong it is locally, stay visible).
struct Classifier {
    blocks: Vec<ConvBlock>,
    linear: Tensor,
}

impl Classifier {
    fn new(c: &TwoSampleConfig, vb: &VarBuilder) -> Result<Self> {
        let blocks = strided_blocks(c.filters, "block", vb)?;
        let channels = 4 * c.filters;
        let cells = (c.image_size / 8).pow(2); // three halvings
        let linear = vb.get((channels * cells, 1), "linear.weight")?;
        Ok(Self { blocks, linear })
    }

    /// `x` (B, 3, S, S) → logits `(B,)`: positive says "real".
    fn forward(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let mut x = ChannelMajor::from_batch(x)?; // the engine's layout, as in the GAN
        for block in &self.blocks {
            x = block.forward(&x, Pass::from_train(train))?; // conv → BN → LeakyReLU
        }
        let features = x.to_batch()?.flatten_from(1)?; // (B, C·H·W)
        Ok(features.matmul(&self.linear)?.squeeze(1)?)
    }
}
// ANCHOR_END: two_sample_classifier

/// Classify `real` against `other` (both `(N, 3, S, S)` in [-1, 1], same S), with as many images
/// of each as the smaller set has, chosen with the seed.
pub fn two_sample_test(real: &Tensor, other: &Tensor, c: &TwoSampleConfig) -> Result<TwoSample> {
    let n = real.dim(0)?.min(other.dim(0)?);
    if c.folds < 2 || n < 2 * c.folds || c.batch_size < 2 || c.epochs == 0 {
        return Err(Error::Metric(format!(
            "the two-sample test needs at least 2 folds, 2 images of each set per fold, batches \
             of 2 and an epoch (got {n} images, {} folds, batches of {}, {} epochs): use more \
             samples",
            c.folds, c.batch_size, c.epochs
        )));
    }
    let s = c.image_size;
    let shape = [3, s, s];
    if real.dims()[1..] != shape || other.dims()[1..] != shape || s < 8 || !s.is_power_of_two() {
        return Err(Error::Metric(format!(
            "the two-sample test compares images of shape (N, 3, {s}, {s}) (a power of two ≥ 8), \
             got {:?} and {:?}",
            real.dims(),
            other.dims()
        )));
    }
    let device = real.device().clone();
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed);
    let mut pick = |total: usize| {
        let mut order: Vec<u32> = (0..total as u32).collect();
        order.shuffle(&mut rng);
        order.truncate(n);
        order
    };
    let take = |set: &Tensor, rows: Vec<u32>| -> Result<Tensor> {
        Ok(set.index_select(&Tensor::new(rows, set.device())?, 0)?)
    };
    // Row i < n is real (label 1), row n + i the other set's (label 0).
    let images = Tensor::cat(
        &[
            take(real, pick(real.dim(0)?))?,
            take(other, pick(other.dim(0)?))?,
        ],
        0,
    )?;
    // Fold of each pair index: real image i and other image i are tested together.
    let mut fold_of: Vec<usize> = (0..n).map(|i| i % c.folds).collect();
    fold_of.shuffle(&mut rng);
    let mut correct = 0usize;
    for fold in 0..c.folds {
        let rows = |test: bool| -> Vec<u32> {
            (0..2 * n)
                .filter(|&r| (fold_of[r % n] == fold) == test)
                .map(|r| r as u32)
                .collect()
        };
        let (train_rows, test_rows) = (rows(false), rows(true));
        let classifier = train_classifier(&images, &train_rows, n, c, fold as u64, &device)?;
        for batch in test_rows.chunks(256) {
            let x = take(&images, batch.to_vec())?;
            let logits = classifier.forward(&x, false)?.to_vec1::<f32>()?;
            correct += batch
                .iter()
                .zip(logits)
                .filter(|(&r, l)| (*l > 0.0) == ((r as usize) < n))
                .count();
        }
    }
    let total = 2 * n;
    let accuracy = correct as f64 / total as f64;
    Ok(TwoSample {
        accuracy,
        standard_error: (accuracy * (1.0 - accuracy) / total as f64).sqrt(),
    })
}

/// Train one classifier on the rows `train_rows` of `images` (rows below `n` are real).
fn train_classifier(
    images: &Tensor,
    train_rows: &[u32],
    n: usize,
    c: &TwoSampleConfig,
    fold: u64,
    device: &Device,
) -> Result<Classifier> {
    let vars = VarMap::new();
    let classifier = Classifier::new(c, &VarBuilder::from_varmap(&vars, DType::F32, device))?;
    init_dcgan(&vars, c.seed ^ (fold + 1).wrapping_mul(0x9e37_79b9))?;
    let mut optimiser = Adam::new(
        &vars,
        AdamConfig {
            lr: c.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        },
    )?;
    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0xc257 ^ fold);
    let mut order = train_rows.to_vec();
    for _ in 0..c.epochs {
        order.shuffle(&mut rng);
        for batch in order.chunks_exact(c.batch_size.min(order.len())) {
            let x = images.index_select(&Tensor::new(batch, device)?, 0)?;
            let labels: Vec<f32> = batch
                .iter()
                .map(|&r| if (r as usize) < n { 1.0 } else { 0.0 })
                .collect();
            let labels = Tensor::from_vec(labels, batch.len(), device)?;
            let logits = classifier.forward(&x, true)?;
            // Binary cross-entropy with per-image targets, in the stable form of
            // `train::loss::bce_with_logits`: max(x, 0) − x·t + log(1 + e^−|x|).
            let loss = ((logits.relu()? - (&logits * &labels)?)?
                + (logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?
            .mean_all()?;
            optimiser.step(&loss.backward()?)?;
        }
    }
    Ok(classifier)
}

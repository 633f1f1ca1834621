//! The judge's eyes: a small convolutional network trained *contrastively* (SimCLR, Chen et al.
//! 2020) on the train side of the real logos, whose pooled activations turn an image into a
//! feature vector.
//!
//! Why not Inception-v3, the network behind published FID numbers: its weights cannot be
//! downloaded here, and it was trained on photographs, so on flat logos on white it mostly
//! measures things logos do not have. Why not an autoencoder (this course's first judge): trained
//! to reconstruct pixels with a squared error, it learnt that a low-contrast average-looking
//! image is "close to everything", so blobs landed in the middle of the real logos' feature cloud
//! and scored precision 1.000. A contrastive encoder is trained to tell *every logo from every
//! other one* while calling two views of one logo the same (see [`super::views`]): its features
//! must carry what makes a logo this logo — shapes, edges, layout — and a blob, which is no logo,
//! has nothing to match.
//!
//! The weights are *versioned*: the file name carries a hash of the encoder's settings and of
//! the exact pixels it was trained on, so scores computed with different eyes are never mixed,
//! and a changed dataset trains a new encoder instead of silently reusing a stale one.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor, D};
use candle_nn::{VarBuilder, VarMap};
use image::RgbImage;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::distances::Features;
use super::views::{view, ViewConfig};
use crate::data::dataset::ImageDataset;
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::sha256_hex;
use crate::model::config::upsamplings;
use crate::model::layers::{batch_norm, conv4, init_dcgan, Activation, ConvBlock, Pass};
use crate::model::ConvAlgorithm;
use crate::ops::ChannelMajor;
use crate::train::adam::{Adam, AdamConfig};

/// Settings of the feature encoder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EncoderConfig {
    /// Images are scored at this size (generated images of other sizes are resized).
    pub image_size: usize,
    /// Filters of the first convolution; they double at every halving.
    pub filters: usize,
    /// Output of the projection head the contrastive loss sees (not the features).
    pub projection_dim: usize,
    /// Training steps, and logos per step (each seen in two views).
    pub steps: usize,
    pub batch_size: usize,
    pub lr: f64,
    /// Softmax temperature of the contrastive loss.
    pub temperature: f64,
    pub views: ViewConfig,
    pub seed: u64,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            image_size: 32,
            filters: 32,
            projection_dim: 64,
            steps: 1000,
            batch_size: 128,
            lr: 1e-3,
            temperature: 0.2,
            views: ViewConfig::default(),
            seed: 0,
        }
    }
}

impl EncoderConfig {
    pub fn validate(&self) -> Result<()> {
        if upsamplings(self.image_size).is_none() {
            return Err(Error::config(
                "encoder.image_size",
                "must be a power of two from 8 to 512",
            ));
        }
        // Bounded so a typo cannot ask for terabytes or years (the defaults: 32, 64, 1000).
        for (field, v, most) in [
            ("encoder.filters", self.filters, 1024),
            ("encoder.projection_dim", self.projection_dim, 4096),
            ("encoder.steps", self.steps, 1_000_000),
        ] {
            if !(1..=most).contains(&v) {
                return Err(Error::config(field, format!("{v} is not in 1..={most}")));
            }
        }
        if !(2..=4096).contains(&self.batch_size) {
            return Err(Error::config(
                "encoder.batch_size",
                "must be from 2 (the loss needs other logos to tell apart) to 4096",
            ));
        }
        for (field, v) in [
            ("encoder.lr", self.lr),
            ("encoder.temperature", self.temperature),
        ] {
            if !(v > 0.0 && v.is_finite()) {
                return Err(Error::config(field, "must be a positive number"));
            }
        }
        Ok(())
    }

    /// Length of a feature vector: the pooled outputs of the last two blocks.
    pub fn feature_dim(&self) -> usize {
        6 * self.filters
    }
}

/// The encoder: three strided convolution blocks, their last two outputs averaged over the
/// image and joined into one vector.
pub struct FeatureEncoder {
    blocks: Vec<ConvBlock>,
    /// The projection head's two weight matrices (training only).
    head: (Tensor, Tensor),
    pub config: EncoderConfig,
    /// Hash of the settings and the training pixels: names the weights file.
    pub version: String,
    vars: VarMap,
}

// ANCHOR: encoder_network
fn encoder_blocks(config: &EncoderConfig, vb: &VarBuilder) -> Result<Vec<ConvBlock>> {
    // 32×32 → 16×16 → 8×8 → 4×4, filters f, 2f, 4f.
    strided_blocks(config.filters, "enc", vb)
}

/// Where the course ships the encoder it trained once on its own logos with the default
/// settings (`data/judge/` in the repository): loaded when the version — a hash of the settings
/// and of the exact training pixels — matches, so the judge looks through the same weights on
/// every machine instead of weights trained by each machine's own arithmetic.
pub fn shipped_encoder_dir() -> PathBuf {
    crate::paths::project_root().join("data").join("judge")
}

/// Three 4×4 stride-2 convolution blocks with batch-norm and LeakyReLU(0.2), filters `f`, `2f`,
/// `4f`, named `<prefix>0` … `<prefix>2`: the judge's encoder and its two-sample classifier.
pub(crate) fn strided_blocks(f: usize, prefix: &str, vb: &VarBuilder) -> Result<Vec<ConvBlock>> {
    let mut blocks = Vec::new();
    let mut channels = 3;
    for i in 0..3 {
        let out = f << i;
        let vb = vb.pp(format!("{prefix}{i}"));
        blocks.push(ConvBlock {
            conv: conv4(channels, out, 2, 1, ConvAlgorithm::Gemm, vb.pp("conv"))?,
            norm: Some(batch_norm(out, vb.pp("norm"))?),
            activation: Activation::LeakyRelu(0.2),
            spectral: None,
        });
        channels = out;
    }
    Ok(blocks)
}

/// `x` (B, 3, S, S) → `(B, 6f)`: the mean over the image of the last two blocks' activations.
fn encode(blocks: &[ConvBlock], x: &Tensor, train: bool) -> Result<Tensor> {
    let mut x = ChannelMajor::from_batch(x)?; // the engine's layout, as in the GAN
    let mut pooled = Vec::new();
    for (i, block) in blocks.iter().enumerate() {
        x = block.forward(&x, Pass::from_train(train))?; // conv → BN → LeakyReLU
        if i + 2 >= blocks.len() {
            let map = x.tensor(); // (C, B, H, W)
            pooled.push(map.mean(D::Minus1)?.mean(D::Minus1)?.t()?); // (B, C)
        }
    }
    Ok(Tensor::cat(&pooled, 1)?)
}
// ANCHOR_END: encoder_network

/// Rows scaled to length 1.
fn l2_normalise(x: &Tensor) -> Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(1)? + 1e-12)?.sqrt()?;
    Ok(x.broadcast_div(&norm)?)
}

// ANCHOR: contrastive_loss
/// The NT-Xent loss of SimCLR. `z` is `(2B, P)`: rows `i` and `i + B` are two views of one logo.
/// Each row must pick its partner out of the other `2B − 1` rows by cosine similarity / τ: a
/// cross-entropy over a softmax that excludes the row itself.
pub fn contrastive_loss(z: &Tensor, temperature: f64) -> Result<Tensor> {
    let n = z.dim(0)?; // 2B
    let z = l2_normalise(z)?;
    let similarity = (z.matmul(&z.t()?)? / temperature)?; // (2B, 2B)
    let itself = (Tensor::eye(n, DType::F32, z.device())? * 1e4)?;
    let log_p = candle_nn::ops::log_softmax(&(similarity - itself)?, D::Minus1)?;
    let partner: Vec<u32> = (0..n).map(|i| ((i + n / 2) % n) as u32).collect();
    let partner = Tensor::from_vec(partner, (n, 1), z.device())?;
    Ok(log_p.gather(&partner, 1)?.mean_all()?.neg()?)
}
// ANCHOR_END: contrastive_loss

/// A stable fingerprint of a dataset's file names and pixels.
pub fn dataset_fingerprint(data: &ImageDataset) -> Result<String> {
    let mut bytes = data.names.join("\n").into_bytes();
    bytes.extend(data.pixels_u8()?);
    Ok(sha256_hex(&bytes))
}

impl FeatureEncoder {
    /// The weights file of the encoder with `config` trained on `data` inside `dir`.
    pub fn weights_path(
        dir: &Path,
        config: &EncoderConfig,
        data: &ImageDataset,
    ) -> Result<(PathBuf, String)> {
        let settings = serde_json::to_string(config)?;
        let version = sha256_hex(format!("{settings}\n{}", dataset_fingerprint(data)?).as_bytes())
            [..16]
            .to_string();
        Ok((dir.join(format!("encoder-{version}.safetensors")), version))
    }

    /// Load the encoder for `config` and `data` from `dir` or from the weights the course ships
    /// ([`shipped_encoder_dir`]), or train it (and save it in `dir`, atomically). `on_progress(step, mean loss since the last call)` reports training.
    pub fn load_or_train(
        dir: &Path,
        config: &EncoderConfig,
        data: &ImageDataset,
        on_progress: &mut dyn FnMut(usize, f32),
    ) -> Result<Self> {
        config.validate()?;
        let (path, version) = Self::weights_path(dir, config, data)?;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, data.device());
        let blocks = encoder_blocks(config, &vb)?;
        let (f, p) = (config.feature_dim(), config.projection_dim);
        let head = (
            vb.get((f, f), "head.0.weight")?,
            vb.get((f, p), "head.1.weight")?,
        );
        let mut encoder = Self {
            blocks,
            head,
            config: config.clone(),
            version,
            vars,
        };
        // The data folder's own copy first (trained here, or by an earlier version), then the
        // one the course ships for its own data and settings: the same eyes on every machine.
        let shipped = shipped_encoder_dir().join(path.file_name().expect("a file name"));
        for (candidate, remedy) in [
            (&path, "delete the file to retrain"),
            (
                &shipped,
                "restore it from the repository (git checkout -- data/judge)",
            ),
        ] {
            if candidate.exists() {
                encoder.vars.load(candidate).map_err(|e| {
                    Error::bad_input(
                        candidate,
                        format!("cannot load the encoder weights ({e}): {remedy}"),
                    )
                })?;
                return Ok(encoder);
            }
        }
        encoder.train(data, on_progress)?;
        std::fs::create_dir_all(dir).at(dir)?;
        let temp = path.with_extension("safetensors.tmp");
        if let Err(e) = encoder.vars.save(&temp) {
            let _ = std::fs::remove_file(&temp);
            return Err(Error::bad_input(
                &temp,
                format!("could not save the encoder's weights ({e}); is the disk full?"),
            ));
        }
        std::fs::rename(&temp, &path).at(&path)?;
        Ok(encoder)
    }

    // ANCHOR: encoder_training
    /// Train with the contrastive loss: every step, `batch_size` logos, two random views each.
    fn train(
        &mut self,
        data: &ImageDataset,
        on_progress: &mut dyn FnMut(usize, f32),
    ) -> Result<()> {
        let c = self.config.clone();
        if data.image_size != c.image_size {
            return Err(Error::config(
                "encoder.image_size",
                format!(
                    "the data is {0}×{0}, the encoder expects {1}×{1}",
                    data.image_size, c.image_size
                ),
            ));
        }
        if data.len() < c.batch_size {
            return Err(Error::config(
                "encoder.batch_size",
                format!("more than the {} images", data.len()),
            ));
        }
        init_dcgan(&self.vars, c.seed)?;
        let mut optimiser = Adam::new(
            &self.vars,
            AdamConfig {
                lr: c.lr,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
            },
        )?;
        let images = data.to_images()?;
        let device = data.device().clone();
        let per_epoch = data.len() / c.batch_size;
        let (mut total, mut count) = (0f32, 0usize);
        for step in 0..c.steps {
            let order = data.epoch_order(c.seed, (step / per_epoch) as u64);
            let start = (step % per_epoch) * c.batch_size;
            let logos = &order[start..start + c.batch_size];
            // Views 0..B are the first view of each logo, B..2B the second.
            let views: Vec<RgbImage> = (0..2 * c.batch_size)
                .into_par_iter()
                .map(|k| {
                    let mut rng = ChaCha8Rng::seed_from_u64(c.seed ^ 0x05ee_d7e3);
                    rng.set_stream((step * 2 * c.batch_size + k) as u64);
                    view(
                        &images[logos[k % c.batch_size] as usize],
                        &c.views,
                        &mut rng,
                    )
                })
                .collect();
            let x = images_to_tensor(&views, &device)?; // (2B, 3, S, S)
            let h = encode(&self.blocks, &x, true)?; // (2B, 6f)
            let z = h.matmul(&self.head.0)?.relu()?.matmul(&self.head.1)?; // (2B, P)
            let loss = contrastive_loss(&z, c.temperature)?;
            optimiser.step(&loss.backward()?)?;
            total += loss.to_scalar::<f32>()?;
            count += 1;
            if (step + 1) % 50 == 0 || step + 1 == c.steps {
                on_progress(step + 1, total / count as f32);
                (total, count) = (0.0, 0);
            }
        }
        Ok(())
    }
    // ANCHOR_END: encoder_training

    /// Feature vectors of `images` `(N, 3, S, S)` in [-1, 1] (any S: resized to the encoder's
    /// size), computed in batches in inference mode, each scaled to length 1.
    pub fn features(&self, images: &Tensor) -> Result<Features> {
        let (n, _, h, w) = images.dims4()?;
        let s = self.config.image_size;
        let mut data = Vec::with_capacity(n * self.config.feature_dim());
        for start in (0..n).step_by(256) {
            let mut x = images.narrow(0, start, 256.min(n - start))?;
            if (h, w) != (s, s) {
                x = resize(&x, s)?;
            }
            let f = l2_normalise(&encode(&self.blocks, &x, false)?)?.to_dtype(DType::F64)?;
            data.extend(f.flatten_all()?.to_vec1::<f64>()?);
        }
        Features::new(n, self.config.feature_dim(), data)
    }

    /// Feature vectors of every image of `data`.
    pub fn dataset_features(&self, data: &ImageDataset) -> Result<Features> {
        let all: Vec<u32> = (0..data.len() as u32).collect();
        self.features(&data.get(&all)?)
    }
}

/// RGB images of one size → `(N, 3, S, S)` `f32` in [-1, 1] on `device`.
pub fn images_to_tensor(images: &[RgbImage], device: &Device) -> Result<Tensor> {
    let names = vec![String::new(); images.len()];
    let data = ImageDataset::from_images(images, names, device)?;
    data.get(&(0..images.len() as u32).collect::<Vec<_>>())
}

/// Resize a batch to `size`×`size`: average pooling when shrinking by a whole factor, nearest
/// neighbour when growing.
pub fn resize(x: &Tensor, size: usize) -> Result<Tensor> {
    let (_, _, h, _) = x.dims4()?;
    Ok(if h > size && h % size == 0 {
        x.avg_pool2d(h / size)?
    } else {
        x.upsample_nearest2d(size, size)?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_contrastive_loss_rewards_finding_the_partner() {
        let dev = Device::Cpu;
        // Four logos in two views: partners equal → low loss; partners orthogonal → high.
        let a = Tensor::new(
            &[
                [1f32, 0., 0., 0.],
                [0., 1., 0., 0.],
                [0., 0., 1., 0.],
                [0., 0., 0., 1.],
            ],
            &dev,
        )
        .unwrap();
        let matched = Tensor::cat(&[&a, &a], 0).unwrap();
        let shuffled = Tensor::cat(&[&a, &a.roll(1, 0).unwrap()], 0).unwrap();
        let good = contrastive_loss(&matched, 0.2).unwrap();
        let bad = contrastive_loss(&shuffled, 0.2).unwrap();
        let (good, bad) = (
            good.to_scalar::<f32>().unwrap(),
            bad.to_scalar::<f32>().unwrap(),
        );
        // Matched: the partner has similarity 1/τ = 5, the 6 others 0: −log(e⁵ / (e⁵ + 6)).
        let expected = -(5f32.exp() / (5f32.exp() + 6.0)).ln();
        assert!((good - expected).abs() < 1e-4, "{good} vs {expected}");
        assert!(bad > good + 3.0, "{bad} vs {good}");
    }
}

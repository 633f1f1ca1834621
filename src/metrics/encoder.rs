//! The metrics' eyes: a small convolutional autoencoder trained on the real cleaned logos, whose
//! bottleneck turns an image into a feature vector.
//!
//! Why not Inception-v3, the network behind the published FID numbers: its weights cannot be
//! downloaded here, and it was trained on photographs of 1 000 object classes, so on flat logos
//! on white it mostly measures things logos do not have. Why an autoencoder rather than a
//! contrastive model: it needs no augmentation policy or large batches, trains in minutes on a
//! CPU, is deterministic from its seed, and its features must keep what a reconstruction needs:
//! the layout of shapes and colours, which is what we want generated logos to get right.
//!
//! The weights are *versioned*: the file name carries a hash of the encoder's settings and of
//! the exact pixels it was trained on, so scores computed with different eyes are never mixed,
//! and a changed dataset trains a new encoder instead of silently reusing a stale one.

use std::path::{Path, PathBuf};

use candle_core::{DType, Tensor};
use candle_nn::{VarBuilder, VarMap};

use super::distances::Features;
use crate::data::dataset::ImageDataset;
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::sha256_hex;
use crate::model::config::upsamplings;
use crate::model::layers::{batch_norm, conv4, init_dcgan, Activation, ConvBlock};
use crate::model::{ConvAlgorithm, Generator, GeneratorConfig};
use crate::train::adam::{Adam, AdamConfig};

/// Settings of the feature encoder.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EncoderConfig {
    /// Images are scored at this size (generated images of other sizes are resized).
    pub image_size: usize,
    /// Length of a feature vector.
    pub feature_dim: usize,
    /// Filters of the first convolution; they double at every halving.
    pub filters: usize,
    pub epochs: usize,
    pub batch_size: usize,
    pub lr: f64,
    pub seed: u64,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        Self {
            image_size: 32,
            feature_dim: 64,
            filters: 32,
            epochs: 8,
            batch_size: 64,
            lr: 1e-3,
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
        for (field, v) in [
            ("encoder.feature_dim", self.feature_dim),
            ("encoder.filters", self.filters),
            ("encoder.epochs", self.epochs),
        ] {
            if v == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        if self.batch_size < 2 {
            return Err(Error::config(
                "encoder.batch_size",
                "batch-norm needs at least 2",
            ));
        }
        if !(self.lr > 0.0 && self.lr.is_finite()) {
            return Err(Error::config("encoder.lr", "must be a positive number"));
        }
        Ok(())
    }
}

/// The encoder half: strided convolutions from an image to a `(B, feature_dim)` vector.
pub struct FeatureEncoder {
    blocks: Vec<ConvBlock>,
    pub config: EncoderConfig,
    /// Hash of the settings and the training pixels: names the weights file.
    pub version: String,
    vars: VarMap,
}

fn encoder_blocks(config: &EncoderConfig, vb: &VarBuilder) -> Result<Vec<ConvBlock>> {
    let steps = upsamplings(config.image_size).expect("validated");
    let mut blocks = Vec::with_capacity(steps + 1);
    let mut channels = 3;
    for i in 0..steps {
        let out = config.filters << i;
        let vb = vb.pp(format!("enc{i}"));
        blocks.push(ConvBlock {
            conv: conv4(channels, out, 2, 1, ConvAlgorithm::Gemm, vb.pp("conv"))?,
            norm: Some(batch_norm(out, vb.pp("norm"))?),
            activation: Activation::LeakyRelu(0.2),
            spectral: None,
        });
        channels = out;
    }
    // 4×4 → 1×1 with feature_dim channels: the code.
    let vb = vb.pp(format!("enc{steps}"));
    blocks.push(ConvBlock {
        conv: conv4(
            channels,
            config.feature_dim,
            1,
            0,
            ConvAlgorithm::Gemm,
            vb.pp("conv"),
        )?,
        norm: None,
        activation: Activation::Identity,
        spectral: None,
    });
    Ok(blocks)
}

fn encode(blocks: &[ConvBlock], x: &Tensor, train: bool) -> Result<Tensor> {
    let mut x = x.transpose(0, 1)?; // channel-major between layers, as in the GAN
    for block in blocks {
        x = block.forward_channel_major(&x, train, false)?;
    }
    Ok(x.transpose(0, 1)?.flatten_from(1)?) // (B, feature_dim, 1, 1) → (B, feature_dim)
}

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

    /// Load the encoder for `config` and `data` from `dir`, or train it (and save it there).
    /// `on_epoch(epoch, mean reconstruction loss)` reports training.
    pub fn load_or_train(
        dir: &Path,
        config: &EncoderConfig,
        data: &ImageDataset,
        on_epoch: &mut dyn FnMut(usize, f32),
    ) -> Result<Self> {
        config.validate()?;
        let (path, version) = Self::weights_path(dir, config, data)?;
        let vars = VarMap::new();
        let vb = VarBuilder::from_varmap(&vars, DType::F32, data.device());
        let blocks = encoder_blocks(config, &vb)?;
        let mut encoder = Self {
            blocks,
            config: config.clone(),
            version,
            vars,
        };
        if path.exists() {
            encoder.vars.load(&path).map_err(|e| {
                Error::bad_input(
                    &path,
                    format!("cannot load the encoder weights ({e}): delete the file to retrain"),
                )
            })?;
            return Ok(encoder);
        }
        encoder.train(data, on_epoch)?;
        std::fs::create_dir_all(dir).at(dir)?;
        let temp = path.with_extension("safetensors.tmp");
        encoder.vars.save(&temp)?;
        std::fs::rename(&temp, &path).at(&path)?;
        Ok(encoder)
    }

    /// Train encoder + decoder to reconstruct `data` (mean squared error, Adam).
    fn train(&mut self, data: &ImageDataset, on_epoch: &mut dyn FnMut(usize, f32)) -> Result<()> {
        let c = &self.config;
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
        let device = data.device().clone();
        let decoder_vars = VarMap::new();
        let decoder = Generator::new(
            &GeneratorConfig {
                latent_dim: c.feature_dim,
                image_size: c.image_size,
                channels: 3,
                base_filters: c.filters,
                conv: ConvAlgorithm::Gemm,
            },
            VarBuilder::from_varmap(&decoder_vars, DType::F32, &device),
        )?;
        init_dcgan(&self.vars, c.seed)?;
        init_dcgan(&decoder_vars, c.seed ^ 0x5eed)?;
        let adam = AdamConfig {
            lr: c.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        };
        let mut opt_e = Adam::new(&self.vars, adam)?;
        let mut opt_d = Adam::new(&decoder_vars, adam)?;
        for epoch in 0..c.epochs {
            let order = data.epoch_order(c.seed, epoch as u64);
            let mut total = 0f32;
            let batches = order.len() / c.batch_size;
            for batch in order.chunks_exact(c.batch_size) {
                let x = data.get(batch)?; // (B, 3, S, S) in [-1, 1]
                let code = encode(&self.blocks, &x, true)?; // (B, feature_dim)
                let reconstruction = decoder.forward_t(&code, true)?; // (B, 3, S, S)
                let loss = (reconstruction - &x)?.sqr()?.mean_all()?;
                let grads = loss.backward()?;
                opt_e.step(&grads)?;
                opt_d.step(&grads)?;
                total += loss.to_scalar::<f32>()?;
            }
            on_epoch(epoch + 1, total / batches as f32);
        }
        Ok(())
    }

    /// Feature vectors of `images` `(N, 3, S, S)` in [-1, 1] (any S: resized to the encoder's
    /// size), computed in batches in inference mode.
    pub fn features(&self, images: &Tensor) -> Result<Features> {
        let (n, _, h, w) = images.dims4()?;
        let s = self.config.image_size;
        let mut data = Vec::with_capacity(n * self.config.feature_dim);
        for start in (0..n).step_by(256) {
            let mut x = images.narrow(0, start, 256.min(n - start))?;
            if (h, w) != (s, s) {
                x = resize(&x, s)?;
            }
            let f = encode(&self.blocks, &x, false)?.to_dtype(DType::F64)?;
            data.extend(f.flatten_all()?.to_vec1::<f64>()?);
        }
        Features::new(n, self.config.feature_dim, data)
    }

    /// Feature vectors of every image of `data`.
    pub fn dataset_features(&self, data: &ImageDataset) -> Result<Features> {
        let all: Vec<u32> = (0..data.len() as u32).collect();
        self.features(&data.get(&all)?)
    }
}

/// Resize a batch to `size`×`size`: average pooling when shrinking by a whole factor, nearest
/// neighbour when growing.
fn resize(x: &Tensor, size: usize) -> Result<Tensor> {
    let (_, _, h, _) = x.dims4()?;
    Ok(if h > size && h % size == 0 {
        x.avg_pool2d(h / size)?
    } else {
        x.upsample_nearest2d(size, size)?
    })
}

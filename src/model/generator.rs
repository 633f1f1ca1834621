//! The generator: noise in, logo out, through transposed convolutions that double the picture's
//! side at every layer.
//!
//! For 64×64 images and `base_filters` = 64 (ngf), with B images in a batch:
//!
//! ```text
//! z                         (B, 100, 1, 1)
//! convT 4×4 s1 p0 + BN + ReLU   (B, 512, 4, 4)     the noise becomes a 4×4 map of 512 features
//! convT 4×4 s2 p1 + BN + ReLU   (B, 256, 8, 8)
//! convT 4×4 s2 p1 + BN + ReLU   (B, 128, 16, 16)
//! convT 4×4 s2 p1 + BN + ReLU   (B, 64, 32, 32)
//! convT 4×4 s2 p1 + tanh        (B, 3, 64, 64)     pixels in [-1, 1], like the training images
//! ```
//!
//! 32×32 drops one ×2 layer and 128×128 adds one; the filters halve at every step from
//! `base_filters × 2^(steps-1)` down to `base_filters`.

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::config::{upsamplings, GeneratorConfig};
use super::layers::{batch_norm, conv_transpose4, Activation, ConvBlock, Pass};
use crate::ops::ChannelMajor;

/// The generator network.
#[derive(Debug, Clone)]
pub struct Generator {
    blocks: Vec<ConvBlock>,
    config: GeneratorConfig,
}

impl Generator {
    /// Create the layers under `vb` (names `block{i}.conv.weight`, `block{i}.norm.*`).
    // ANCHOR: generator_new
    pub fn new(config: &GeneratorConfig, vb: VarBuilder) -> Result<Self> {
        let steps = upsamplings(config.image_size).ok_or_else(|| {
            candle_core::Error::Msg(format!("unsupported image size {}", config.image_size))
        })?;
        let mut blocks = Vec::with_capacity(steps + 1);
        let mut in_channels = config.input_channels(); // z, then the one-hot family if any
        for i in 0..=steps {
            let last = i == steps;
            let out_channels = if last {
                config.channels
            } else {
                config.base_filters << (steps - 1 - i)
            };
            // The first layer turns 1×1 into 4×4 (stride 1, no padding); the others double.
            let (stride, padding) = if i == 0 { (1, 0) } else { (2, 1) };
            let vb = vb.pp(format!("block{i}"));
            let conv = conv_transpose4(
                in_channels,
                out_channels,
                stride,
                padding,
                config.conv,
                vb.pp("conv"),
            )?;
            let norm = if last {
                None
            } else {
                Some(batch_norm(out_channels, vb.pp("norm"))?)
            };
            // Hidden layers end in ReLU; the last in tanh, for pixels in [-1, 1].
            let activation = if last {
                Activation::Tanh
            } else {
                Activation::Relu
            };
            blocks.push(ConvBlock {
                conv,
                norm,
                activation,
                spectral: None,
            });
            in_channels = out_channels;
        }
        Ok(Self {
            blocks,
            config: config.clone(),
        })
    }
    // ANCHOR_END: generator_new

    pub fn config(&self) -> &GeneratorConfig {
        &self.config
    }

    /// What [`Self::forward_t`] reads: the noise `z` `(B, latent_dim[, 1, 1])` and, for a
    /// conditional generator (chapter 7), the family of each image `labels` `(B,)` as one-hot
    /// columns after it: `(B, latent_dim + classes, 1, 1)`. The family is just more input: the
    /// first layer learns what each family's column adds to the 4×4 map.
    // ANCHOR: generator_input
    pub fn input(&self, z: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        let z = z.flatten_from(1)?; // (B, latent_dim)
        let input = match (labels, self.config.classes) {
            (None, 0) => z,
            (Some(labels), classes) if classes > 0 => {
                Tensor::cat(&[z, super::latent::one_hot(labels, classes)?], 1)?
            }
            (labels, classes) => {
                return Err(candle_core::Error::Msg(format!(
                    "a generator of {classes} families was given {}",
                    if labels.is_some() {
                        "labels"
                    } else {
                        "no labels"
                    }
                )))
            }
        };
        input.unsqueeze(2)?.unsqueeze(3) // (B, latent_dim + classes, 1, 1)
    }
    // ANCHOR_END: generator_input

    /// `z` of shape `(B, latent_dim, 1, 1)` or `(B, latent_dim)` → images `(B, C, S, S)` in [-1, 1].
    /// `train` selects batch statistics (and updates the running ones) or the running statistics.
    pub fn forward_t(&self, z: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_trace(z, train, &mut |_, _| ())
    }

    /// Like [`Self::forward_t`], calling `observe(layer index, output)` after every layer.
    // ANCHOR: generator_forward
    pub fn forward_trace(
        &self,
        z: &Tensor,
        train: bool,
        observe: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let z = match z.rank() {
            2 => z.unsqueeze(2)?.unsqueeze(3)?, // (B, latent_dim) → (B, latent_dim, 1, 1)
            _ => z.clone(),
        };
        let pass = Pass::from_train(train);
        let mut x = ChannelMajor::from_batch(&z)?; // the engine's layout, see ConvBlock
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward(&x, pass)?; // convT → BN → ReLU (tanh at the end)
            observe(i, &x.to_batch()?); // (B, C, H, W)
        }
        x.to_batch() // (B, C, S, S)
    }
    // ANCHOR_END: generator_forward

    pub fn blocks(&self) -> &[ConvBlock] {
        &self.blocks
    }
}

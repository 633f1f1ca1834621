//! The discriminator: logo in, one number out, through strided convolutions that halve the
//! picture's side at every layer.
//!
//! LogoGan's version for 64×64 images (a constant 128 filters, batch-norm after every
//! convolution but the output), with B images in a batch:
//!
//! ```text
//! x                              (B, 3, 64, 64)
//! conv 4×4 s2 p1 + BN + LReLU    (B, 128, 32, 32)
//! conv 4×4 s2 p1 + BN + LReLU    (B, 128, 16, 16)
//! conv 4×4 s2 p1 + BN + LReLU    (B, 128, 8, 8)
//! conv 4×4 s2 p1 + BN + LReLU    (B, 128, 4, 4)
//! conv 4×4 s1 p0                 (B, 1, 1, 1) → (B,)   one logit per image
//! ```
//!
//! The classic DCGAN doubles the filters instead (64, 128, 256, 512) and has no batch-norm on
//! the first layer. The output is a logit, not a probability: the loss applies the sigmoid in a
//! numerically stable way ([`crate::train::loss`]).

use candle_core::{Result, Tensor};
use candle_nn::VarBuilder;

use super::config::{upsamplings, DiscriminatorConfig};
use super::layers::{batch_norm, conv4, Activation, ConvBlock, SpectralNorm};

/// The discriminator network.
#[derive(Debug, Clone)]
pub struct Discriminator {
    blocks: Vec<ConvBlock>,
    config: DiscriminatorConfig,
}

impl Discriminator {
    /// Create the layers under `vb` (names `block{i}.conv.weight`, `block{i}.norm.*`).
    // ANCHOR: discriminator_new
    pub fn new(config: &DiscriminatorConfig, vb: VarBuilder) -> Result<Self> {
        let steps = upsamplings(config.image_size).ok_or_else(|| {
            candle_core::Error::Msg(format!("unsupported image size {}", config.image_size))
        })?;
        let mut blocks = Vec::with_capacity(steps + 1);
        let mut in_channels = config.channels;
        let spectral = |out: usize, vb: &VarBuilder| -> Result<Option<SpectralNorm>> {
            config
                .spectral_norm
                .then(|| SpectralNorm::new(out, &vb.pp("conv")))
                .transpose()
        };
        for i in 0..steps {
            let out_channels = config.filters.filters(i);
            let vb = vb.pp(format!("block{i}"));
            let conv = conv4(in_channels, out_channels, 2, 1, config.conv, vb.pp("conv"))?;
            let norm = if i > 0 || config.batch_norm_first {
                Some(batch_norm(out_channels, vb.pp("norm"))?)
            } else {
                None
            };
            blocks.push(ConvBlock {
                conv,
                norm,
                activation: Activation::LeakyRelu(config.leaky_slope),
                spectral: spectral(out_channels, &vb)?,
            });
            in_channels = out_channels;
        }
        // 4×4 → 1×1: one logit.
        let conv = conv4(
            in_channels,
            1,
            1,
            0,
            config.conv,
            vb.pp(format!("block{steps}")).pp("conv"),
        )?;
        blocks.push(ConvBlock {
            conv,
            norm: None,
            activation: Activation::Identity, // a raw logit: the loss applies the sigmoid
            spectral: spectral(1, &vb.pp(format!("block{steps}")))?,
        });
        Ok(Self {
            blocks,
            config: config.clone(),
        })
    }
    // ANCHOR_END: discriminator_new

    pub fn config(&self) -> &DiscriminatorConfig {
        &self.config
    }

    /// Images `(B, C, S, S)` → logits `(B,)`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_trace(x, train, &mut |_, _| ())
    }

    /// Like [`Self::forward_t`], calling `observe(layer index, output)` after every layer.
    // ANCHOR: discriminator_forward
    pub fn forward_trace(
        &self,
        x: &Tensor,
        train: bool,
        observe: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let mut x = x.clone();
        let last = self.blocks.len() - 1;
        for (i, block) in self.blocks.iter().enumerate() {
            x = block.forward_t(&x, train)?; // conv → BN → LeakyReLU (nothing after the last)
            if i == last {
                x = x.flatten_all()?; // (B, 1, 1, 1) → (B,)
            }
            observe(i, &x);
        }
        Ok(x)
    }
    // ANCHOR_END: discriminator_forward

    pub fn blocks(&self) -> &[ConvBlock] {
        &self.blocks
    }
}

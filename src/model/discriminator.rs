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
use super::latent::one_hot;
use super::layers::{batch_norm, conv4, Activation, ConvBlock, Pass, SpectralNorm};
use crate::ops::ChannelMajor;

/// The discriminator network.
#[derive(Debug, Clone)]
pub struct Discriminator {
    blocks: Vec<ConvBlock>,
    /// A conditional D's family embedding `(classes, C)`, C the last hidden layer's filters
    /// (chapter 7); `None` for the unconditional GAN.
    embedding: Option<Tensor>,
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
        // A conditional D: one learnt vector per family, of the last hidden layer's width.
        let embedding = (config.classes > 0)
            .then(|| vb.get((config.classes, in_channels), "embed.weight"))
            .transpose()?;
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
            embedding,
            config: config.clone(),
        })
    }
    // ANCHOR_END: discriminator_new

    pub fn config(&self) -> &DiscriminatorConfig {
        &self.config
    }

    /// Images `(B, C, S, S)` → logits `(B,)`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward_given_t(x, None, train)
    }

    /// Like [`Self::forward_t`] with D's parameters held constant: the logits' gradients reach
    /// `x` (and through it the generator), but none are computed for D's weights. What the
    /// generator's update uses: it would throw D's weight gradients away.
    pub fn forward_frozen(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_given_frozen(x, None)
    }

    /// [`Self::forward_t`] given each image's family `labels` `(B,)` (u32) for a conditional D,
    /// `None` for the unconditional one.
    pub fn forward_given_t(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        train: bool,
    ) -> Result<Tensor> {
        self.forward_pass(x, labels, Pass::from_train(train), &mut |_, _| ())
    }

    /// [`Self::forward_frozen`] given each image's family, as [`Self::forward_given_t`].
    pub fn forward_given_frozen(&self, x: &Tensor, labels: Option<&Tensor>) -> Result<Tensor> {
        self.forward_pass(x, labels, Pass::Frozen, &mut |_, _| ())
    }

    /// Like [`Self::forward_t`], calling `observe(layer index, output)` after every layer.
    pub fn forward_trace(
        &self,
        x: &Tensor,
        train: bool,
        observe: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        self.forward_pass(x, None, Pass::from_train(train), observe)
    }

    // ANCHOR: discriminator_forward
    fn forward_pass(
        &self,
        x: &Tensor,
        labels: Option<&Tensor>,
        pass: Pass,
        observe: &mut dyn FnMut(usize, &Tensor),
    ) -> Result<Tensor> {
        let mut x = ChannelMajor::from_batch(x)?; // the engine's layout, see ConvBlock
        let last = self.blocks.len() - 1;
        for (i, block) in self.blocks[..last].iter().enumerate() {
            x = block.forward(&x, pass)?; // conv → BN → LeakyReLU
            observe(i, &x.to_batch()?); // (B, C, H, W)
        }
        let logits = self.blocks[last].forward(&x, pass)?; // conv 4×4 → 1×1, nothing after
        let logits = logits.tensor().flatten_all()?; // (1, B, 1, 1) → (B,): one logit per image
        let logits = match self.projection(&x, labels, pass)? {
            Some(projection) => (logits + projection)?, // chapter 7: "and of this family?"
            None => logits,
        };
        observe(last, &logits);
        Ok(logits)
    }
    // ANCHOR_END: discriminator_forward

    // ANCHOR: projection
    /// A conditional D's second opinion (the projection discriminator of Miyato & Koyama,
    /// 2018): the last hidden features `h` summed over the 4×4 map, `(B, C)`, dotted with the
    /// learnt vector of each image's family, `(B, C)` → `(B,)`. A family's vector points where
    /// that family's features lie, so an image scores "real" only if it looks real *and* like
    /// its family. `None` for the unconditional D.
    fn projection(
        &self,
        h: &ChannelMajor,
        labels: Option<&Tensor>,
        pass: Pass,
    ) -> Result<Option<Tensor>> {
        let (embedding, labels) = match (&self.embedding, labels) {
            (None, None) => return Ok(None),
            (Some(embedding), Some(labels)) => (embedding, labels),
            (embedding, _) => {
                return Err(candle_core::Error::Msg(format!(
                    "a discriminator of {} families was given {}",
                    self.config.classes,
                    if embedding.is_some() {
                        "no labels"
                    } else {
                        "labels"
                    }
                )))
            }
        };
        // Held constant in G's update, like the convolutions' weights.
        let embedding = match pass {
            Pass::Frozen => embedding.detach(),
            _ => embedding.clone(),
        };
        let pooled = h.tensor().sum((2, 3))?.t()?; // (C, B, 4, 4) → (B, C)
        let family = one_hot(labels, self.config.classes)?.matmul(&embedding)?; // (B, C)
        Ok(Some((pooled * family)?.sum(1)?)) // (B,)
    }
    // ANCHOR_END: projection

    pub fn blocks(&self) -> &[ConvBlock] {
        &self.blocks
    }
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use crate::model::{Gan, ModelConfig};

    /// The three convolution algorithms give the same networks: G's images, D's logits and the
    /// gradients of both networks' weights agree (f32, relative 1e-4) in training mode, where
    /// the GEMM path uses its own kernels (fused batch-norm, channel-major activations) and the
    /// others candle's batch-norm.
    #[test]
    fn the_three_convolution_algorithms_train_the_same_networks() {
        use crate::model::ConvAlgorithm;
        let dev = Device::Cpu;
        let run = |cfg: &ModelConfig, algorithm: ConvAlgorithm, z: &Tensor| {
            let mut cfg = cfg.clone();
            cfg.generator.conv = algorithm;
            cfg.discriminator.conv = algorithm;
            let gan = Gan::new(&cfg, &dev, 5).unwrap();
            let fake = gan.generator.forward_t(z, true).unwrap();
            let logits = gan.discriminator.forward_t(&fake, true).unwrap();
            let grads = logits.sum_all().unwrap().backward().unwrap();
            let mut weights = Vec::new();
            for vars in [&gan.generator_vars, &gan.discriminator_vars] {
                let data = vars.data().lock().unwrap();
                let mut names: Vec<_> = data.keys().filter(|k| k.ends_with("weight")).collect();
                names.sort();
                for name in names {
                    let g = grads.get(data[name].as_tensor()).unwrap().clone();
                    weights.push((name.clone(), g));
                }
            }
            (fake, logits, weights)
        };
        let rel = |a: &Tensor, b: &Tensor| {
            let d = (a - b).unwrap().abs().unwrap().max_all().unwrap();
            let scale = b.abs().unwrap().max_all().unwrap();
            d.to_scalar::<f32>().unwrap() / scale.to_scalar::<f32>().unwrap().max(1e-30)
        };
        for cfg in [ModelConfig::dcgan(32), ModelConfig::logogan(32)] {
            // Seeded noise: candle's own random numbers are not, and with a batch of 4 through
            // batch-norm an unlucky draw amplified f32 rounding past the tolerance now and then.
            let z = crate::model::latent_noise(3, 0, 4, cfg.generator.latent_dim, &dev).unwrap();
            let (fake, logits, weights) = run(&cfg, ConvAlgorithm::Gemm, &z);
            for other in [ConvAlgorithm::Composed, ConvAlgorithm::Candle] {
                let (f, l, w) = run(&cfg, other, &z);
                assert!(rel(&f, &fake) < 1e-4, "{other:?}: images");
                assert!(rel(&l, &logits) < 1e-4, "{other:?}: logits");
                assert_eq!(w.len(), weights.len());
                for ((name, a), (_, b)) in w.iter().zip(&weights) {
                    let e = rel(a, b);
                    assert!(
                        e < 1e-4,
                        "{other:?}: gradient of {name}: relative error {e:e}"
                    );
                }
            }
        }
    }

    /// Holding D constant (G's update) changes neither its logits nor G's gradients, bit for
    /// bit, and leaves every D parameter (convolution weights, batch-norm γ and β, spectral-norm
    /// state) without a gradient: with the fused CPU kernels, with spectral norm, and with
    /// candle-nn's batch-norm (the path of GPUs and of the other convolution algorithms).
    #[test]
    fn frozen_discriminator_gives_the_generator_the_same_gradients() {
        use crate::model::ConvAlgorithm;
        let dev = Device::Cpu;
        let mut spectral = ModelConfig::logogan(32);
        spectral.discriminator.spectral_norm = true;
        let mut composed = ModelConfig::dcgan(32);
        composed.generator.conv = ConvAlgorithm::Composed;
        composed.discriminator.conv = ConvAlgorithm::Composed;
        for cfg in [
            ModelConfig::dcgan(32),
            ModelConfig::logogan(32),
            spectral,
            composed,
        ] {
            let z = Tensor::randn(0f32, 1.0, (4, cfg.generator.latent_dim, 1, 1), &dev).unwrap();
            // A fresh GAN per run: training-mode passes update state (running statistics, the
            // spectral-norm estimate), so both runs must start from the same.
            let run = |frozen: bool| {
                let gan = Gan::new(&cfg, &dev, 3).unwrap();
                let fake = gan.generator.forward_t(&z, true).unwrap();
                let d = &gan.discriminator;
                let logits = if frozen {
                    d.forward_frozen(&fake)
                } else {
                    d.forward_t(&fake, true)
                }
                .unwrap();
                let grads = logits.sum_all().unwrap().backward().unwrap();
                (gan, logits, grads)
            };
            let bits = |t: &Tensor| {
                let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
            };
            let (gan, learnt_logits, learnt) = run(false);
            let (frozen_gan, frozen_logits, frozen) = run(true);
            assert_eq!(bits(&learnt_logits), bits(&frozen_logits));
            // Every variable by name: (name, tensor), sorted.
            let vars = |vars: &candle_nn::VarMap| {
                let data = vars.data().lock().unwrap();
                let mut named: Vec<_> = data
                    .iter()
                    .map(|(name, var)| (name.clone(), var.as_tensor().clone()))
                    .collect();
                named.sort_by(|a, b| a.0.cmp(&b.0));
                named
            };
            let learnable = |name: &str| name.ends_with("weight") || name.ends_with("bias");
            let pairs = vars(&gan.generator_vars)
                .into_iter()
                .zip(vars(&frozen_gan.generator_vars));
            for ((name, a), (_, b)) in pairs.filter(|((name, _), _)| learnable(name)) {
                let (a, b) = (learnt.get(&a).unwrap(), frozen.get(&b).unwrap());
                assert_eq!(bits(a), bits(b), "G's {name}");
            }
            for (name, w) in vars(&gan.discriminator_vars) {
                if learnable(&name) {
                    assert!(learnt.get(&w).is_some(), "D's {name} is learnt normally");
                }
                // No state gets a gradient either (the spectral-norm estimate u is a buffer).
                assert!(
                    !name.ends_with("sn_u") || learnt.get(&w).is_none(),
                    "{name}"
                );
            }
            for (name, w) in vars(&frozen_gan.discriminator_vars) {
                assert!(
                    frozen.get(&w).is_none(),
                    "D's {name} got a gradient while frozen"
                );
            }
        }
    }

    /// A conditional GAN reads the family in both networks: another family changes G's image
    /// and D's verdict of that image only (eval mode, where rows do not meet in batch-norm); D's
    /// family vectors learn from the families in the batch and are constants when frozen; and a
    /// network refuses to run without its families, or with families it does not have.
    #[test]
    fn a_conditional_gan_reads_the_family_in_both_networks() {
        let dev = Device::Cpu;
        let cfg = ModelConfig::logogan(32).conditional(3);
        let gan = Gan::new(&cfg, &dev, 11).unwrap();
        let (g, d) = (&gan.generator, &gan.discriminator);
        let z = crate::model::latent_noise(2, 0, 4, cfg.generator.latent_dim, &dev).unwrap();
        let a = Tensor::new(&[0u32, 1, 2, 0], &dev).unwrap();
        let b = Tensor::new(&[1u32, 1, 1, 1], &dev).unwrap();
        let rows = |t: &Tensor| -> Vec<Vec<u32>> {
            let t = t.flatten_from(1).unwrap().to_vec2::<f32>().unwrap();
            t.iter()
                .map(|r| r.iter().map(|x| x.to_bits()).collect())
                .collect()
        };
        let images_a = g.forward_t(&g.input(&z, Some(&a)).unwrap(), false).unwrap();
        let images_b = g.forward_t(&g.input(&z, Some(&b)).unwrap(), false).unwrap();
        let (ra, rb) = (rows(&images_a), rows(&images_b));
        assert_eq!(ra[1], rb[1], "same z, same family: same image");
        for i in [0, 2, 3] {
            assert_ne!(ra[i], rb[i], "image {i}: another family, another image");
        }
        let logits = |labels: &Tensor| d.forward_given_t(&images_a, Some(labels), false).unwrap();
        let (la, lb) = (
            rows(&logits(&a).unsqueeze(1).unwrap()),
            rows(&logits(&b).unsqueeze(1).unwrap()),
        );
        assert_eq!(la[1], lb[1]);
        assert_ne!(la[0], lb[0]);

        // The family vectors: a gradient in the rows of the families present, none when frozen.
        let embedding = {
            let data = gan.discriminator_vars.data().lock().unwrap();
            data["embed.weight"].as_tensor().clone()
        };
        let grads = d
            .forward_given_t(&images_a.detach(), Some(&b), true)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let per_family = grads
            .get(&embedding)
            .unwrap()
            .abs()
            .unwrap()
            .sum(1)
            .unwrap();
        let per_family = per_family.to_vec1::<f32>().unwrap();
        assert!(
            per_family[0] == 0.0 && per_family[1] > 0.0 && per_family[2] == 0.0,
            "{per_family:?}"
        );
        let grads = d
            .forward_given_frozen(&images_a, Some(&a))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        assert!(grads.get(&embedding).is_none());

        let refused = |r: candle_core::Result<Tensor>| r.unwrap_err().to_string();
        assert!(refused(g.input(&z, None)).contains("3 families"));
        assert!(refused(d.forward_t(&images_a, false)).contains("3 families"));
        let plain = Gan::new(&ModelConfig::logogan(32), &dev, 11).unwrap();
        assert!(refused(plain.generator.input(&z, Some(&a))).contains("0 families"));
        assert!(refused(
            plain
                .discriminator
                .forward_given_t(&images_a, Some(&a), false)
        )
        .contains("0 families"));
    }
}

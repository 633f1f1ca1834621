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
        // 4×4 → 1×1: one logit, from one more channel with the minibatch spread.
        let conv = conv4(
            in_channels + usize::from(config.minibatch_std),
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
        let features = if self.config.minibatch_std {
            minibatch_spread(&x)? // chapter 6: (C, B, 4, 4) → (C + 1, B, 4, 4), the batch's spread
        } else {
            x.clone()
        };
        let logits = self.blocks[last].forward(&features, pass)?; // conv 4×4 → 1×1, nothing after
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

// ANCHOR: minibatch_std
/// ProGAN's minibatch standard deviation (Karras et al., 2018): how much the batch varies,
/// as one more channel of D's last features. For every feature at every position, the
/// standard deviation over the batch's images; their mean is one number, copied to a new
/// channel of every image. Real logos differ from each other, so a batch of them has a
/// large spread; a collapsing G's batch of near-copies has a small one, and D, which
/// otherwise judges each image alone, can see it. G can only raise the spread by making its
/// images differ.
fn minibatch_spread(h: &ChannelMajor) -> Result<ChannelMajor> {
    let t = h.tensor(); // (C, B, H, W): the batch is dimension 1
    let (_, batch, height, width) = t.dims4()?;
    let centred = t.broadcast_sub(&t.mean_keepdim(1)?)?; // (C, B, H, W)
    let variance = centred.sqr()?.mean_keepdim(1)?; // (C, 1, H, W)
    let spread = (variance + 1e-8)?.sqrt()?.mean_all()?; // a scalar; 1e-8 keeps √ differentiable
    let channel = spread
        .reshape((1, 1, 1, 1))?
        .broadcast_as((1, batch, height, width))?
        .contiguous()?; // (1, B, H, W)
    h.append_channels(&channel)
}
// ANCHOR_END: minibatch_std

#[cfg(test)]
mod tests {
    use candle_core::{DType, Device, Tensor};

    use super::minibatch_spread;
    use crate::model::{Gan, ModelConfig};
    use crate::ops::ChannelMajor;

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

    /// The minibatch spread: the standard deviation over the batch, averaged, as a new
    /// channel of every image; near zero for a batch of copies. And it is what lets D judge a
    /// batch rather than images one by one: in eval mode (batch-norm's running statistics) an
    /// image's logit changes with the *other* images only when the option is on.
    #[test]
    fn the_minibatch_spread_lets_d_see_a_batch_of_copies() {
        let dev = Device::Cpu;
        // (C, B, H, W) = (2, 2, 1, 1): channel 0 holds 0 and 2 (sd 1), channel 1 holds 5 and 5
        // (sd 0): mean spread 0.5 (plus √1e-8 in the second).
        let h = ChannelMajor::from_batch(
            &Tensor::new(&[[[[0f32]], [[5.0]]], [[[2.0]], [[5.0]]]], &dev).unwrap(),
        )
        .unwrap();
        let out = minibatch_spread(&h).unwrap().to_batch().unwrap(); // (B, C + 1, 1, 1)
        assert_eq!(out.dims4().unwrap(), (2, 3, 1, 1));
        let out = out.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&out[..2], &[0.0, 5.0]);
        assert_eq!(&out[3..5], &[2.0, 5.0]);
        assert!(
            (out[2] - 0.50005).abs() < 1e-5 && out[2] == out[5],
            "{out:?}"
        );
        let copies =
            ChannelMajor::from_batch(&Tensor::ones((4, 3, 2, 2), DType::F32, &dev).unwrap())
                .unwrap();
        let spread = minibatch_spread(&copies).unwrap().to_batch().unwrap();
        let spread = spread
            .narrow(1, 3, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert!(
            spread.iter().all(|&s| (s - 1e-4).abs() < 1e-6),
            "{spread:?}"
        );

        for on in [false, true] {
            let mut cfg = ModelConfig::logogan(32);
            cfg.discriminator.minibatch_std = on;
            let gan = Gan::new(&cfg, &dev, 3).unwrap();
            let last = gan.discriminator.blocks().last().unwrap();
            assert_eq!(last.conv.weight.dims4().unwrap().1, 128 + usize::from(on));
            let images = Tensor::randn(0f32, 1.0, (3, 3, 32, 32), &dev).unwrap();
            let other = images.narrow(0, 0, 2).unwrap();
            let changed = Tensor::cat(
                &[
                    &other,
                    &images.narrow(0, 2, 1).unwrap().affine(3.0, 0.0).unwrap(),
                ],
                0,
            )
            .unwrap();
            let first = |x: &Tensor| {
                let logits = gan.discriminator.forward_t(x, false).unwrap();
                logits.to_vec1::<f32>().unwrap()[0]
            };
            assert_eq!(
                first(&images) != first(&changed),
                on,
                "minibatch_std {on}: image 0's logit after image 2 changed"
            );
            // And G learns from it: image 0's logit has a gradient with respect to image 2
            // only through the spread.
            let x = candle_core::Var::from_tensor(&images).unwrap();
            let logits = gan.discriminator.forward_t(x.as_tensor(), false).unwrap();
            let grads = logits
                .narrow(0, 0, 1)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let to_image_2 = grads.get(&x).unwrap().narrow(0, 2, 1).unwrap();
            let size = to_image_2
                .abs()
                .unwrap()
                .sum_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert_eq!(
                size > 0.0,
                on,
                "minibatch_std {on}: gradient to image 2 {size}"
            );
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

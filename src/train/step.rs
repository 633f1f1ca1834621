//! One GAN training step, apart from any bookkeeping: what the trainer runs every step and what
//! the benchmark times.

use candle_core::{Device, Tensor};

use super::adam::Adam;
use super::config::TrainConfig;
use super::ema::EmaGenerator;
use super::loss::{bce_with_logits, hinge_discriminator, hinge_generator, GanLoss};
use crate::error::Result;
use crate::model::Gan;

/// Which of D's three looks of a step an image is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiscriminatorInput {
    /// The real batch, in D's update.
    Real,
    /// The generated batch (detached), in D's update.
    Fake,
    /// The same generated batch, in G's update (gradients flow back to G).
    FakeForG,
}

impl DiscriminatorInput {
    pub fn index(self) -> u64 {
        self as u64
    }
}

/// Both networks, both optimisers and the one setting the step needs.
pub struct GanStep {
    pub gan: Gan,
    pub opt_g: Adam,
    pub opt_d: Adam,
    /// Target for real images in D's loss (1, or less with one-sided label smoothing).
    pub real_label: f64,
    pub loss: GanLoss,
    /// The averaged generator, when the run keeps one.
    pub ema: Option<EmaGenerator>,
}

impl GanStep {
    /// Networks initialised from `config.seed`, fresh optimisers, on `device`.
    pub fn new(config: &TrainConfig, device: &Device) -> Result<Self> {
        let gan = Gan::new(&config.model, device, config.seed)?;
        let opt_g = Adam::new(&gan.generator_vars, config.generator_optimizer)?;
        let opt_d = Adam::new(&gan.discriminator_vars, config.discriminator_optimizer)?;
        let ema = config
            .ema_decay
            .map(|decay| {
                EmaGenerator::new(&config.model.generator, &gan.generator_vars, decay, device)
            })
            .transpose()?;
        Ok(Self {
            gan,
            opt_g,
            opt_d,
            real_label: config.real_label,
            loss: config.loss,
            ema,
        })
    }

    /// One discriminator update and one generator update (see [`Self::step_with`]).
    pub fn step(&mut self, real: &Tensor, z: &Tensor) -> Result<Tensor> {
        self.step_with(real, z, &|x, _| Ok(x.clone()))
    }

    // ANCHOR: train_step
    /// One discriminator update and one generator update on real images `real` (B, 3, S, S) in
    /// [-1, 1] and noise `z` (B, nz, 1, 1). Every image D sees passes through `view` first
    /// (instance noise, differentiable augmentation; the identity by default), told which of
    /// D's three looks it is. Returns the step's numbers as a device tensor `(5,)`: d_loss,
    /// g_loss, D(x), D(G(z)) before and after D's update.
    pub fn step_with(
        &mut self,
        real: &Tensor,
        z: &Tensor,
        view: &dyn Fn(&Tensor, DiscriminatorInput) -> Result<Tensor>,
    ) -> Result<Tensor> {
        let (g, d) = (&self.gan.generator, &self.gan.discriminator);

        // 1. Discriminator: real → real_label, fake → 0.
        let fake = g.forward_t(z, true)?; // (B, 3, S, S)
        let real_logits = d.forward_t(&view(real, DiscriminatorInput::Real)?, true)?; // (B,)
        let fake_logits = d.forward_t(&view(&fake.detach(), DiscriminatorInput::Fake)?, true)?;
        let d_loss = match self.loss {
            GanLoss::Bce => {
                (bce_with_logits(&real_logits, self.real_label)?
                    + bce_with_logits(&fake_logits, 0.0)?)?
            }
            GanLoss::Hinge => hinge_discriminator(&real_logits, &fake_logits)?,
        };
        self.opt_d.step(&d_loss.backward()?)?;

        // 2. Generator: make the updated D call the same fakes real. D's weights are constants
        //    here: their gradients would only be thrown away.
        let fake_logits_after = d.forward_frozen(&view(&fake, DiscriminatorInput::FakeForG)?)?;
        let g_loss = match self.loss {
            GanLoss::Bce => bce_with_logits(&fake_logits_after, 1.0)?,
            GanLoss::Hinge => hinge_generator(&fake_logits_after)?,
        };
        self.opt_g.step(&g_loss.backward()?)?;
        if let Some(ema) = &self.ema {
            ema.update(&self.gan.generator_vars)?;
        }

        let prob =
            |logits: &Tensor| candle_nn::ops::sigmoid(&logits.detach()).and_then(|p| p.mean_all());
        Ok(Tensor::stack(
            &[
                d_loss.detach(),
                g_loss.detach(),
                prob(&real_logits)?,
                prob(&fake_logits)?,
                prob(&fake_logits_after)?,
            ],
            0,
        )?)
    }
    // ANCHOR_END: train_step
}

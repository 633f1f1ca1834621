//! One GAN training step, apart from any bookkeeping: what the trainer runs every step and what
//! the benchmark times.

use candle_core::{DType, Device, Tensor};

use super::adam::Adam;
use super::config::TrainConfig;
use super::ema::EmaGenerator;
use super::loss::GanLoss;
use super::loss_log::StepMetrics;
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
    pub fn step(&mut self, real: &Tensor, z: &Tensor) -> Result<StepStats> {
        self.step_with(real, z, &|x, _| Ok(x.clone()))
    }

    /// [`Self::step_given`] for the unconditional GAN: no families.
    pub fn step_with(
        &mut self,
        real: &Tensor,
        z: &Tensor,
        view: &dyn Fn(&Tensor, DiscriminatorInput) -> Result<Tensor>,
    ) -> Result<StepStats> {
        self.step_given(real, None, z, view)
    }

    // ANCHOR: train_step
    /// One discriminator update and one generator update on real images `real` (B, 3, S, S) in
    /// [-1, 1] and noise `z` (B, nz, 1, 1). For chapter 7's conditional GAN, `labels` (B,) gives
    /// each real image's family, and G draws its fakes from the same families (`None` for the
    /// unconditional GAN). Every image D sees passes through `view` first (instance noise,
    /// differentiable augmentation; the identity by default), told which of D's three looks it
    /// is. Returns what the step measured, still on the device.
    pub fn step_given(
        &mut self,
        real: &Tensor,
        labels: Option<&Tensor>,
        z: &Tensor,
        view: &dyn Fn(&Tensor, DiscriminatorInput) -> Result<Tensor>,
    ) -> Result<StepStats> {
        let (g, d) = (&self.gan.generator, &self.gan.discriminator);

        // 1. Discriminator: real images should score "real", G's images "fake".
        let fake = g.forward_t(&g.input(z, labels)?, true)?; // (B, 3, S, S)
        let real_logits =
            d.forward_given_t(&view(real, DiscriminatorInput::Real)?, labels, true)?; // (B,)
        let fake_view = view(&fake.detach(), DiscriminatorInput::Fake)?;
        let fake_logits = d.forward_given_t(&fake_view, labels, true)?;
        let d_loss = self
            .loss
            .discriminator(&real_logits, &fake_logits, self.real_label)?;
        self.opt_d.step(&d_loss.backward()?)?;

        // 2. Generator: make the updated D call the same fakes real. D's weights are constants
        //    here: their gradients would only be thrown away.
        let fake_view = view(&fake, DiscriminatorInput::FakeForG)?;
        let fake_logits_after = d.forward_given_frozen(&fake_view, labels)?;
        let g_loss = self.loss.generator(&fake_logits_after)?;
        self.opt_g.step(&g_loss.backward()?)?;
        if let Some(ema) = &self.ema {
            ema.update(&self.gan.generator_vars)?;
        }

        let mean_probability =
            |logits: &Tensor| candle_nn::ops::sigmoid(&logits.detach()).and_then(|p| p.mean_all());
        Ok(StepStats {
            d_loss: d_loss.detach(),
            g_loss: g_loss.detach(),
            d_real: mean_probability(&real_logits)?,
            d_fake: mean_probability(&fake_logits)?,
            d_fake_after: mean_probability(&fake_logits_after)?,
            d_real_sign: real_logits.detach().sign()?.mean_all()?,
        })
    }
    // ANCHOR_END: train_step
}

/// What one step measured, each a scalar tensor on the step's device. Reading a number back from
/// a GPU waits for all the work queued before it, so the trainer keeps many steps' statistics
/// and reads them back together ([`StepStats::read`]).
#[derive(Debug, Clone)]
pub struct StepStats {
    /// D's loss on the real and the generated batch.
    pub d_loss: Tensor,
    /// G's loss on D's verdict after D's update.
    pub g_loss: Tensor,
    /// Mean D(x) on the real batch.
    pub d_real: Tensor,
    /// Mean D(G(z)) before D's update.
    pub d_fake: Tensor,
    /// Mean D(G(z)) after D's update: what G's step saw.
    pub d_fake_after: Tensor,
    /// Mean sign of D's raw scores on the real batch: adaptive augmentation's measure of how
    /// much D has memorised ([`super::ada`]).
    pub d_real_sign: Tensor,
}

impl StepStats {
    /// The numbers of many steps, given with their step and epoch, read back in one transfer.
    pub fn read(steps: &[(u64, u64, StepStats)]) -> Result<Vec<StepMetrics>> {
        if steps.is_empty() {
            return Ok(Vec::new());
        }
        let rows = steps
            .iter()
            .map(|(_, _, s)| {
                Tensor::stack(
                    &[&s.d_loss, &s.g_loss, &s.d_real, &s.d_fake, &s.d_fake_after],
                    0,
                )
            })
            .collect::<candle_core::Result<Vec<_>>>()?; // each (5,)
        let values = Tensor::stack(&rows, 0)?
            .to_dtype(DType::F32)?
            .to_vec2::<f32>()?; // (n, 5)
        steps
            .iter()
            .zip(values)
            .map(|((step, epoch, _), row)| match row[..] {
                [d_loss, g_loss, d_real, d_fake, d_fake_after] => Ok(StepMetrics {
                    step: *step,
                    epoch: *epoch,
                    d_loss,
                    g_loss,
                    d_real,
                    d_fake,
                    d_fake_after,
                }),
                _ => Err(candle_core::Error::Msg(format!(
                    "step {step}: {} statistics read back, 5 expected",
                    row.len()
                ))
                .into()),
            })
            .collect()
    }
}

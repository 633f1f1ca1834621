//! Everything that defines a training run, saved as `runs/<name>/config.json` before the first
//! step, so any run can be read, repeated and resumed.

use crate::error::{Error, Result};
use crate::model::{Architecture, ConvAlgorithm, FilterSchedule, ModelConfig};

use super::adam::AdamConfig;
use super::loss::GanLoss;

/// Ready-made settings.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// 64×64, LogoGan's networks, batch 128, 25 epochs: recognisable logo-like samples in
    /// minutes on a GPU, hours on a CPU.
    Default,
    /// The CPU recipe for logos: 32×32, quick's small networks, every training image for 100
    /// epochs (≈ 800 thousand images shown) and differentiable augmentation of everything D
    /// sees: about half an hour on two CPU cores.
    Laptop,
    /// 32×32, a quarter of the filters, 3 000 images, 10 epochs: one to two minutes on two CPU
    /// cores; blobs of logo colours rather than logos, but every step of the course.
    Quick,
    /// 32×32 with 8 filters and a handful of steps: for tests and smoke runs.
    Tiny,
}

/// The settings of one run.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct TrainConfig {
    pub model: ModelConfig,
    pub epochs: usize,
    pub batch_size: usize,
    pub generator_optimizer: AdamConfig,
    pub discriminator_optimizer: AdamConfig,
    /// Target for real images in the discriminator's loss: 1.0, or e.g. 0.9 for one-sided label
    /// smoothing (fakes stay at 0), which keeps D from becoming over-confident.
    pub real_label: f64,
    /// The game: binary cross-entropy (DCGAN) or hinge.
    #[serde(default)]
    pub loss: GanLoss,
    /// Instance noise (Sønderby et al. 2016): the standard deviation of Gaussian noise added to
    /// every image D sees, annealed linearly from this value to 0 over the run (0 = off). It blurs
    /// the real and fake distributions into each other early on, when they barely overlap.
    #[serde(default)]
    pub instance_noise: f64,
    /// Keep an exponential moving average of the generator's weights with this decay (e.g.
    /// 0.999) and sample the grids and `generate` from it. `None`: off.
    #[serde(default)]
    pub ema_decay: Option<f64>,
    /// Differentiable augmentation (colour, translation, cutout) of every image D sees, real
    /// and generated, in both updates.
    #[serde(default)]
    pub diff_augment: bool,
    /// Seeds the weights, the noise of every step, the order of the images, the fixed noise.
    pub seed: u64,
    /// Use at most this many training images (the first ones of a seeded shuffle).
    pub max_images: Option<usize>,
    /// Save a checkpoint every this many steps (and always at the end).
    pub checkpoint_every: u64,
    /// Read the losses back from the device every this many steps (each read waits for the GPU).
    pub log_every: u64,
    /// Samples in the per-epoch grid (from one fixed noise tensor).
    pub grid_samples: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self::preset(Preset::Default, Architecture::Logogan)
    }
}

impl TrainConfig {
    pub fn preset(preset: Preset, architecture: Architecture) -> Self {
        let base = Self {
            model: ModelConfig::new(architecture, 64),
            epochs: 25,
            batch_size: 128,
            generator_optimizer: AdamConfig::default(),
            discriminator_optimizer: AdamConfig::default(),
            real_label: 1.0,
            loss: GanLoss::Bce,
            instance_noise: 0.0,
            ema_decay: None,
            diff_augment: false,
            seed: 0,
            max_images: None,
            checkpoint_every: 500,
            log_every: 20,
            grid_samples: 64,
        };
        match preset {
            Preset::Default => base,
            Preset::Quick => {
                let mut model = ModelConfig::new(architecture, 32);
                model.generator.base_filters = 16;
                model.discriminator.filters = match model.discriminator.filters {
                    FilterSchedule::Constant(n) => FilterSchedule::Constant(n / 4),
                    FilterSchedule::Doubling { first } => {
                        FilterSchedule::Doubling { first: first / 4 }
                    }
                };
                Self {
                    model,
                    epochs: 10,
                    batch_size: 64,
                    max_images: Some(3000),
                    checkpoint_every: 50,
                    log_every: 10,
                    ..base
                }
            }
            // ANCHOR: laptop_preset
            Preset::Laptop => Self {
                epochs: 100,
                max_images: None,
                // No averaged generator: measured over two seeds in chapter 6, the trained G
                // scored better than its 0.999 average at this budget.
                ema_decay: None,
                diff_augment: true,
                checkpoint_every: 500,
                log_every: 20,
                ..Self::preset(Preset::Quick, architecture)
            },
            // ANCHOR_END: laptop_preset
            Preset::Tiny => {
                let mut model = ModelConfig::new(architecture, 32);
                model.generator.base_filters = 8;
                model.discriminator.filters = match model.discriminator.filters {
                    FilterSchedule::Constant(_) => FilterSchedule::Constant(8),
                    FilterSchedule::Doubling { .. } => FilterSchedule::Doubling { first: 8 },
                };
                Self {
                    model,
                    epochs: 1,
                    batch_size: 8,
                    max_images: Some(64),
                    checkpoint_every: 4,
                    log_every: 2,
                    grid_samples: 16,
                    ..base
                }
            }
        }
    }

    pub fn image_size(&self) -> usize {
        self.model.generator.image_size
    }

    /// Refuse impossible settings, naming the field.
    pub fn validate(&self) -> Result<()> {
        self.model.validate()?;
        if self.batch_size == 0 {
            return Err(Error::config("batch_size", "must be at least 1"));
        }
        if self.batch_size == 1 {
            return Err(Error::config(
                "batch_size",
                "batch-norm needs at least 2 images per batch",
            ));
        }
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        for (field, adam) in [
            ("generator_optimizer", &self.generator_optimizer),
            ("discriminator_optimizer", &self.discriminator_optimizer),
        ] {
            if !(adam.lr > 0.0 && adam.lr.is_finite()) {
                return Err(Error::config(
                    format!("{field}.lr"),
                    format!("{} is not a positive number", adam.lr),
                ));
            }
            for (name, beta) in [("beta1", adam.beta1), ("beta2", adam.beta2)] {
                if !(0.0..1.0).contains(&beta) {
                    return Err(Error::config(
                        format!("{field}.{name}"),
                        format!("{beta} is not in [0, 1)"),
                    ));
                }
            }
            if adam.eps.is_nan() || adam.eps <= 0.0 {
                return Err(Error::config(format!("{field}.eps"), "must be positive"));
            }
        }
        if !(self.real_label > 0.5 && self.real_label <= 1.0) {
            return Err(Error::config(
                "real_label",
                format!(
                    "{} is not in (0.5, 1] (label smoothing {} is not in [0, 0.5): --label-smoothing s sets real_label = 1 − s)",
                    self.real_label,
                    1.0 - self.real_label
                ),
            ));
        }
        if self.loss == GanLoss::Hinge && self.real_label != 1.0 {
            return Err(Error::config(
                "real_label",
                "label smoothing changes the BCE targets; the hinge loss has none (use one or the other)",
            ));
        }
        if !(self.instance_noise >= 0.0 && self.instance_noise.is_finite()) {
            return Err(Error::config(
                "instance_noise",
                format!("{} is not a standard deviation ≥ 0", self.instance_noise),
            ));
        }
        if let Some(decay) = self.ema_decay {
            if !(decay > 0.0 && decay < 1.0) {
                return Err(Error::config(
                    "ema_decay",
                    format!("{decay} is not in (0, 1)"),
                ));
            }
        }
        if self.checkpoint_every == 0 {
            return Err(Error::config("checkpoint_every", "must be at least 1"));
        }
        if self.log_every == 0 {
            return Err(Error::config("log_every", "must be at least 1"));
        }
        if self.grid_samples == 0 {
            return Err(Error::config("grid_samples", "must be at least 1"));
        }
        if self.max_images == Some(0) {
            return Err(Error::config("max_images", "must be at least 1"));
        }
        Ok(())
    }
}

/// Overrides a trial (or the base) may change; unset ones keep the preset's value.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    /// A sweep trial's name (not a training setting).
    pub name: Option<String>,
    pub preset: Option<Preset>,
    pub model: Option<Architecture>,
    /// Image size (32, 64 or 128).
    pub size: Option<usize>,
    pub latent_dim: Option<usize>,
    /// Width of the generator: filters of its last hidden layer (they double towards the noise).
    pub g_filters: Option<usize>,
    /// Width of the discriminator: its filters per layer (LogoGan) or first layer's (classic).
    pub d_filters: Option<usize>,
    pub conv: Option<ConvAlgorithm>,
    pub checkpoint_every: Option<u64>,
    pub epochs: Option<usize>,
    pub batch_size: Option<usize>,
    pub lr: Option<f64>,
    pub lr_g: Option<f64>,
    pub lr_d: Option<f64>,
    pub label_smoothing: Option<f64>,
    pub loss: Option<GanLoss>,
    pub instance_noise: Option<f64>,
    /// Decay of the generator's moving average; 0 turns the average off.
    pub ema_decay: Option<f64>,
    pub diff_augment: Option<bool>,
    pub spectral_norm: Option<bool>,
    pub max_images: Option<usize>,
    pub seed: Option<u64>,
}

impl Overrides {
    /// `other`'s values where it has them, ours elsewhere.
    pub fn overlay(&self, other: &Overrides) -> Overrides {
        macro_rules! pick {
            ($($f:ident),*) => { Overrides { $($f: other.$f.clone().or_else(|| self.$f.clone()),)* } };
        }
        pick!(
            name,
            preset,
            model,
            size,
            latent_dim,
            g_filters,
            d_filters,
            conv,
            checkpoint_every,
            epochs,
            batch_size,
            lr,
            lr_g,
            lr_d,
            label_smoothing,
            loss,
            instance_noise,
            ema_decay,
            diff_augment,
            spectral_norm,
            max_images,
            seed
        )
    }

    /// The training configuration these settings describe (the quick preset and LogoGan's
    /// networks where unset).
    pub fn config(&self) -> TrainConfig {
        let mut c = TrainConfig::preset(
            self.preset.unwrap_or(Preset::Quick),
            self.model.unwrap_or(Architecture::Logogan),
        );
        if let Some(size) = self.size {
            c.model.generator.image_size = size;
            c.model.discriminator.image_size = size;
        }
        if let Some(n) = self.latent_dim {
            c.model.generator.latent_dim = n;
        }
        if let Some(n) = self.g_filters {
            c.model.generator.base_filters = n;
        }
        if let Some(n) = self.d_filters {
            c.model.discriminator.filters = match c.model.discriminator.filters {
                FilterSchedule::Constant(_) => FilterSchedule::Constant(n),
                FilterSchedule::Doubling { .. } => FilterSchedule::Doubling { first: n },
            };
        }
        if let Some(conv) = self.conv {
            c.model = c.model.with_conv(conv);
        }
        if let Some(v) = self.checkpoint_every {
            c.checkpoint_every = v;
        }
        if let Some(v) = self.epochs {
            c.epochs = v;
        }
        if let Some(v) = self.batch_size {
            c.batch_size = v;
        }
        if let Some(v) = self.lr {
            c.generator_optimizer.lr = v;
            c.discriminator_optimizer.lr = v;
        }
        if let Some(v) = self.lr_g {
            c.generator_optimizer.lr = v;
        }
        if let Some(v) = self.lr_d {
            c.discriminator_optimizer.lr = v;
        }
        if let Some(v) = self.label_smoothing {
            c.real_label = 1.0 - v;
        }
        if let Some(v) = self.loss {
            c.loss = v;
        }
        if let Some(v) = self.instance_noise {
            c.instance_noise = v;
        }
        if let Some(decay) = self.ema_decay {
            c.ema_decay = (decay != 0.0).then_some(decay);
        }
        if let Some(v) = self.diff_augment {
            c.diff_augment = v;
        }
        if let Some(v) = self.spectral_norm {
            c.model.discriminator.spectral_norm = v;
        }
        if self.max_images.is_some() {
            c.max_images = self.max_images;
        }
        if let Some(v) = self.seed {
            c.seed = v;
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for p in [Preset::Default, Preset::Laptop, Preset::Quick, Preset::Tiny] {
            for a in [Architecture::Logogan, Architecture::Dcgan] {
                TrainConfig::preset(p, a).validate().unwrap();
            }
        }
        assert_eq!(
            TrainConfig::preset(Preset::Quick, Architecture::Logogan)
                .model
                .discriminator
                .filters,
            FilterSchedule::Constant(32)
        );
    }

    #[test]
    fn overrides_set_widths_and_turn_the_average_off() {
        let wide = Overrides {
            preset: Some(Preset::Laptop),
            g_filters: Some(32),
            d_filters: Some(64),
            ema_decay: Some(0.0),
            ..Overrides::default()
        }
        .config();
        assert_eq!(wide.model.generator.base_filters, 32);
        assert_eq!(
            wide.model.discriminator.filters,
            FilterSchedule::Constant(64)
        );
        assert_eq!(wide.ema_decay, None);
        // A base that keeps an average (as the laptop sweep's does), and a trial that drops it.
        let averaged = Overrides {
            preset: Some(Preset::Laptop),
            ema_decay: Some(0.999),
            ..Overrides::default()
        };
        assert_eq!(averaged.config().ema_decay, Some(0.999));
        let dropped = averaged.overlay(&Overrides {
            ema_decay: Some(0.0),
            ..Overrides::default()
        });
        assert_eq!(dropped.config().ema_decay, None);
        let laptop = TrainConfig::preset(Preset::Laptop, Architecture::Logogan);
        assert!(laptop.diff_augment && laptop.ema_decay.is_none());
        let classic = Overrides {
            model: Some(Architecture::Dcgan),
            d_filters: Some(16),
            ..Overrides::default()
        }
        .config();
        assert_eq!(
            classic.model.discriminator.filters,
            FilterSchedule::Doubling { first: 16 }
        );
        let huge = Overrides {
            g_filters: Some(1 << 20),
            ..Overrides::default()
        }
        .config();
        assert!(huge
            .validate()
            .unwrap_err()
            .to_string()
            .contains("generator.base_filters"));
    }

    #[test]
    fn impossible_values_name_their_field() {
        let check = |edit: &dyn Fn(&mut TrainConfig), field: &str| {
            let mut cfg = TrainConfig::default();
            edit(&mut cfg);
            let err = cfg.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
        };
        check(&|c| c.batch_size = 0, "batch_size");
        check(&|c| c.epochs = 0, "epochs");
        check(
            &|c| c.generator_optimizer.lr = -1e-4,
            "generator_optimizer.lr",
        );
        check(
            &|c| c.discriminator_optimizer.lr = f64::NAN,
            "discriminator_optimizer.lr",
        );
        check(
            &|c| c.discriminator_optimizer.beta1 = 1.0,
            "discriminator_optimizer.beta1",
        );
        check(&|c| c.real_label = 0.2, "real_label");
        check(
            &|c| c.model.generator.image_size = 48,
            "generator.image_size",
        );
        check(&|c| c.checkpoint_every = 0, "checkpoint_every");
        check(&|c| c.instance_noise = -0.1, "instance_noise");
        check(&|c| c.ema_decay = Some(1.0), "ema_decay");
        check(
            &|c| {
                c.loss = GanLoss::Hinge;
                c.real_label = 0.9
            },
            "real_label",
        );
    }
}

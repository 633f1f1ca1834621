//! Everything that defines a training run, saved as `runs/<name>/config.json` before the first
//! step, so any run can be read, repeated and resumed.

use crate::error::{Error, IoResultExt, Result};
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
    /// The CPU recipe for logos: 32×32, quick's small D and a generator twice as wide, every
    /// training image for 195 epochs (≈ 1.6 million images shown), differentiable augmentation
    /// of everything D sees, and samples drawn from an averaged generator: 15 to 30 minutes on
    /// two CPU cores, depending on the processor.
    Laptop,
    /// The laptop recipe at 64×64 (quick's small networks, one layer more in each; 100 epochs, and
    /// no average of G at that budget): the introduction's 64×64 logos without a GPU, in about
    /// an hour on two CPU cores; run it in the background and `--resume` it after any
    /// interruption.
    #[serde(rename = "laptop-64")]
    #[value(name = "laptop-64")]
    Laptop64,
    /// 32×32, a quarter of the filters, 3 000 images, 10 epochs: one to two minutes on two CPU
    /// cores; blobs of logo colours rather than logos, but every step of the course.
    Quick,
    /// A run that collapses, on purpose (chapter 5): the laptop networks with G's learning rate
    /// ten times D's and no augmentation, 15 epochs (about two minutes on two CPU cores).
    Collapse,
    /// 32×32 with 8 filters and a handful of steps: for tests and smoke runs.
    Tiny,
}

impl Preset {
    /// The preset of a run that names none — the one default: on a GPU the 64×64 model, on a
    /// CPU the laptop recipe (15 to 30 minutes on two cores).
    pub fn for_device(device: &candle_core::Device) -> Preset {
        if device.is_cpu() {
            Preset::Laptop
        } else {
            Preset::Default
        }
    }
}

/// The width of the `quick` preset's generator: the filters of its last hidden layer (they
/// double towards the noise), a quarter of the default's.
const QUICK_G_FILTERS: usize = 16;

/// The width of the `laptop` preset's generator, twice quick's.
const LAPTOP_G_FILTERS: usize = 32;

/// The `laptop-64` preset's budget: four times the pixels of `laptop` and one layer more make a
/// step three to six times as long (0.17 s on two idle cores, 0.3 s while other work shares
/// them, against 0.05 s), so 100 epochs (800 kimg) take 40 minutes to an hour: chapter 5's run
/// took 56 minutes.
const LAPTOP_64_EPOCHS: usize = 100;

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
    /// Adaptive augmentation strength (ADA, Karras et al. 2020; needs `diff_augment`): each of
    /// the three transforms is applied to an image with a probability p that starts at 0 and
    /// moves every few steps so that the share of augmented real images D calls real stays near
    /// this target (the paper's 0.6). `None`: every transform always (fixed DiffAugment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ada_target: Option<f64>,
    /// Also mirror or turn by quarter turns what D sees (ADA's "xflip" and "rot90"; needs
    /// `diff_augment`): each image, with probability p (ADA's, else 1), becomes one of the
    /// square's eight symmetries at random. Without `ada_target` every orientation is equally
    /// likely and G learns them all (the augmentation "leaks"); with it, only while D needs it.
    /// In chapter 6's trial with ADA on the laptop preset the samples got much worse (recall
    /// 0.2 against 0.65).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub flip_and_turn: bool,
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
    /// The `laptop` preset as it shipped until chapter 6 widened its generator: quick's 16-filter
    /// G for 250 epochs, the rest as now. Chapter 5's first runs, chapter 6's budget table and
    /// the recipe trials measured against it were trained with it; their sweep files pin these
    /// two settings, so they still train what the book shows.
    pub fn former_laptop(architecture: Architecture) -> Self {
        let mut config = Self::preset(Preset::Laptop, architecture);
        config.model.generator.base_filters = QUICK_G_FILTERS;
        config.epochs = 250;
        config
    }

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
            ada_target: None,
            flip_and_turn: false,
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
                // A quarter of the default widths.
                model.generator.base_filters = QUICK_G_FILTERS;
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
            Preset::Laptop => {
                let quick = Self::preset(Preset::Quick, architecture);
                let mut model = quick.model;
                // G twice as wide as quick's (32 filters in its last hidden layer, 128 next to
                // the noise): over three seeds on each of the engine's two SIMD paths it beat
                // the 16-filter G on recall and coverage beyond the seed spread, and no measure
                // was worse (chapter 6).
                model.generator.base_filters = LAPTOP_G_FILTERS;
                Self {
                    model,
                    // A wider G costs about 29 % more per epoch: 195 epochs (≈ 1 560 kimg) take
                    // the wall-clock time 250 epochs of the 16-filter G took. The budget matters
                    // more than any one trick: the 16-filter G's KID ×1000 was 99–133 after 100
                    // epochs, 69–85 after 200 (chapter 6).
                    epochs: 195,
                    max_images: None,
                    // Sample from the average of G's recent weights: at 250 epochs it halved the
                    // spread between seeds (chapter 6); at 100 epochs it was worse than the
                    // trained G.
                    ema_decay: Some(0.999),
                    diff_augment: true,
                    checkpoint_every: 500,
                    log_every: 20,
                    ..quick
                }
            }
            // ANCHOR_END: laptop_preset
            Preset::Laptop64 => {
                let laptop = Self::preset(Preset::Laptop, architecture);
                let mut model = ModelConfig::new(architecture, 64);
                // Quick's 16-filter G, the one this budget was measured with (chapter 5's run);
                // the laptop preset's wider G is untried at 64×64 and would cost a third more.
                model.generator.base_filters = QUICK_G_FILTERS;
                model.discriminator.filters = laptop.model.discriminator.filters;
                Self {
                    model,
                    epochs: LAPTOP_64_EPOCHS,
                    // At 800 kimg the average of G's weights still lags behind G: on the run of
                    // chapter 5 it scored KID ×1000 143 against the trained G's 106, as at 32×32
                    // after 100 epochs, where it was worse on all three seeds (chapter 6).
                    ema_decay: None,
                    ..laptop
                }
            }
            // ANCHOR: collapse_preset
            Preset::Collapse => {
                let laptop = Self::preset(Preset::Laptop, architecture);
                Self {
                    // G moves ten times faster than D can follow: it finds a few pictures the
                    // current D accepts and sends most of the noise there; by the time D has
                    // learnt to reject them, G has moved on to a few others.
                    generator_optimizer: AdamConfig {
                        lr: 10.0 * laptop.discriminator_optimizer.lr,
                        ..laptop.generator_optimizer
                    },
                    // Without augmentation and without the average of G's weights, nothing
                    // hides the collapse.
                    diff_augment: false,
                    ema_decay: None,
                    epochs: 15,
                    ..laptop
                }
            }
            // ANCHOR_END: collapse_preset
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
        // Bounded so a typo cannot ask for terabytes (a batch is allocated whole) or centuries.
        if self.batch_size > MAX_BATCH_SIZE {
            return Err(Error::config(
                "batch_size",
                format!(
                    "{} is over {MAX_BATCH_SIZE} images per step (the course uses 32-128)",
                    self.batch_size
                ),
            ));
        }
        if self.epochs == 0 {
            return Err(Error::config("epochs", "must be at least 1"));
        }
        if self.epochs > MAX_EPOCHS {
            return Err(Error::config(
                "epochs",
                format!(
                    "{} is over {MAX_EPOCHS} (the course's longest run is 100)",
                    self.epochs
                ),
            ));
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
                    "{} is not in (0.5, 1]: D's target for real images, 1 or e.g. 0.9 for \
                     one-sided label smoothing (--real-label 0.9)",
                    self.real_label
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
        if let Some(target) = self.ada_target {
            if !(target > 0.0 && target < 1.0) {
                return Err(Error::config(
                    "ada_target",
                    format!(
                        "{target} is not in (0, 1): the share of real images D should call real \
                         (the paper's 0.6)"
                    ),
                ));
            }
            if !self.diff_augment {
                return Err(Error::config(
                    "ada_target",
                    "adapts the strength of the differentiable augmentation, which is off: add \
                     --diff-augment (diff_augment = true)",
                ));
            }
        }
        if self.flip_and_turn && !self.diff_augment {
            return Err(Error::config(
                "flip_and_turn",
                "adds a transform to the differentiable augmentation, which is off: add \
                 --diff-augment (diff_augment = true)",
            ));
        }
        if self.checkpoint_every == 0 {
            return Err(Error::config("checkpoint_every", "must be at least 1"));
        }
        if self.log_every == 0 {
            return Err(Error::config("log_every", "must be at least 1"));
        }
        if self.grid_samples == 0 || self.grid_samples > MAX_GRID_SAMPLES {
            return Err(Error::config(
                "grid_samples",
                format!(
                    "{} is not in 1..={MAX_GRID_SAMPLES} (the grid drawn every epoch; the \
                     course shows 64)",
                    self.grid_samples
                ),
            ));
        }
        if self.max_images == Some(0) {
            return Err(Error::config("max_images", "must be at least 1"));
        }
        Ok(())
    }
}

/// Largest batch a run may ask for; the course uses 32–128.
pub const MAX_BATCH_SIZE: usize = 8192;
/// Most samples in the grid drawn every epoch; the course's grids have 64.
pub const MAX_GRID_SAMPLES: usize = 1024;
/// Most epochs a run may ask for; the course's longest run is 100.
pub const MAX_EPOCHS: usize = 100_000;

/// Every training option, in one vocabulary for the command line (`chapter-05 --lr-d 4e-4`), a
/// config file (`--config run.toml` with `lr_d = 4e-4`) and sweep files (`[base]` and each
/// `[[trial]]`). Unset options keep the preset's value; [`TrainOptions::config`] turns them into
/// the [`TrainConfig`] saved as the run's `config.json`. The names are `TrainConfig`'s where it
/// has one field for the option (`epochs`, `real_label`, `ema_decay`, …).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize, clap::Args)]
#[serde(deny_unknown_fields)]
pub struct TrainOptions {
    /// Run name: a folder under the runs folder (default `<model>-<size>px-<date-time>`); in a
    /// sweep file, the trial's name.
    #[arg(long)]
    pub name: Option<String>,
    /// Settings to start from: default (64 px, 25 epochs; the choice on a GPU), laptop (32 px,
    /// 15 to 30 minutes on two CPU cores; the choice without a GPU), laptop-64 (the same
    /// recipe at 64 px, about an hour on two CPU cores), quick (32 px, a few CPU
    /// minutes, blobs), collapse (a run that collapses, on purpose), tiny (smoke tests).
    #[arg(long, value_enum)]
    pub preset: Option<Preset>,
    /// Network design: logogan (the course's) or dcgan (the classic).
    #[arg(long, value_enum)]
    pub model: Option<Architecture>,
    /// Image size (32, 64 or 128); the dataset of that size is built if missing.
    #[arg(long)]
    pub size: Option<usize>,
    /// Length of the noise vector z.
    #[arg(long)]
    pub latent_dim: Option<usize>,
    /// Width of the generator: filters of its last hidden layer (they double towards the noise).
    #[arg(long)]
    pub g_filters: Option<usize>,
    /// Width of the discriminator: its filters per layer (LogoGan) or first layer's (classic).
    #[arg(long)]
    pub d_filters: Option<usize>,
    /// How convolutions are computed: gemm (fast), composed (the same algorithm in candle's
    /// tensor ops, portable) or candle (candle's own kernels).
    #[arg(long, value_enum)]
    pub conv: Option<ConvAlgorithm>,
    /// Save a checkpoint every this many steps (and always at the end).
    #[arg(long)]
    pub checkpoint_every: Option<u64>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Learning rate of both networks (Adam).
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning rate of the generator alone (two time-scale updates: e.g. --lr-g 1e-4 --lr-d 4e-4).
    #[arg(long)]
    pub lr_g: Option<f64>,
    /// Learning rate of the discriminator alone.
    #[arg(long)]
    pub lr_d: Option<f64>,
    /// D's target for real images: 1, or e.g. 0.9 for one-sided label smoothing.
    #[arg(long)]
    pub real_label: Option<f64>,
    /// The game: bce (DCGAN) or hinge.
    #[arg(long, value_enum)]
    pub loss: Option<GanLoss>,
    /// Instance noise: σ of the Gaussian noise added to D's inputs, annealed to 0 (e.g. 0.1).
    #[arg(long)]
    pub instance_noise: Option<f64>,
    /// Keep an exponential moving average of G's weights with this decay (e.g. 0.999) and
    /// sample from it; 0 turns the average off.
    #[arg(long, visible_alias = "ema")]
    pub ema_decay: Option<f64>,
    /// Differentiable augmentation (colour, translation, cutout) of everything D sees
    /// (`--diff-augment` or `--diff-augment false`).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub diff_augment: Option<bool>,
    /// Adapt the augmentation's strength to D's overfitting (ADA): the share of real images D
    /// should call real, e.g. 0.6; 0 turns it off (every transform always).
    #[arg(long)]
    pub ada_target: Option<f64>,
    /// Also mirror or quarter-turn what D sees, with ADA's probability if it adapts, else always
    /// (`--flip-and-turn` or `--flip-and-turn false`; needs `--diff-augment`). Chapter 6's trial
    /// on the laptop preset: much worse samples.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub flip_and_turn: Option<bool>,
    /// Spectral normalisation of the discriminator's convolutions.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub spectral_norm: Option<bool>,
    /// ProGAN's minibatch standard deviation as one more input of D's output layer.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pub minibatch_std: Option<bool>,
    /// Use at most this many training images.
    #[arg(long)]
    pub max_images: Option<usize>,
    /// Seeds the weights, the noise of every step, the order of the images.
    #[arg(long)]
    pub seed: Option<u64>,
    /// Condition both networks on this many logo families, clustered from the training logos
    /// in the judge's feature space (chapter 7; 0: the unconditional GAN).
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=64))]
    pub families: Option<usize>,
}

impl TrainOptions {
    /// Read options from a TOML file with the same names as the flags (`lr_d = 4e-4`).
    pub fn load(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).at(path)?;
        toml::from_str(&text)
            .map_err(|e| Error::bad_input(path, format!("not a valid options file: {e}")))
    }

    /// `other`'s values where it has them, ours elsewhere. Done through serde (an unset option
    /// is `null`), so a new option needs no line here.
    pub fn overlay(&self, other: &TrainOptions) -> TrainOptions {
        let fields = |o: &TrainOptions| match serde_json::to_value(o) {
            Ok(serde_json::Value::Object(fields)) => fields,
            other => unreachable!("options are a map of plain values: {other:?}"),
        };
        let mut merged = fields(self);
        merged.extend(fields(other).into_iter().filter(|(_, v)| !v.is_null()));
        serde_json::from_value(serde_json::Value::Object(merged))
            .expect("a merge of two valid sets of options is valid")
    }

    /// The training configuration these options describe on `device`: where no preset is
    /// named, [`Preset::for_device`]'s; LogoGan's networks where no model is.
    pub fn config_on(&self, device: &candle_core::Device) -> TrainConfig {
        self.config_with(self.preset.unwrap_or(Preset::for_device(device)))
    }

    /// The training configuration these options describe on a CPU.
    pub fn config(&self) -> TrainConfig {
        self.config_on(&candle_core::Device::Cpu)
    }

    fn config_with(&self, preset: Preset) -> TrainConfig {
        // Every field by name and no `..`: an option added to TrainOptions and forgotten here
        // does not compile, where it would otherwise be silently ignored.
        let TrainOptions {
            name: _,   // the run folder's name, not a training setting
            preset: _, // chosen by the caller (`config_on`)
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
            real_label,
            loss,
            instance_noise,
            ema_decay,
            diff_augment,
            ada_target,
            flip_and_turn,
            spectral_norm,
            minibatch_std,
            max_images,
            seed,
            families,
        } = self.clone();
        let mut c = TrainConfig::preset(preset, model.unwrap_or(Architecture::Logogan));
        if let Some(size) = size {
            c.model.generator.image_size = size;
            c.model.discriminator.image_size = size;
        }
        if let Some(n) = latent_dim {
            c.model.generator.latent_dim = n;
        }
        if let Some(n) = g_filters {
            c.model.generator.base_filters = n;
        }
        if let Some(n) = d_filters {
            c.model.discriminator.filters = match c.model.discriminator.filters {
                FilterSchedule::Constant(_) => FilterSchedule::Constant(n),
                FilterSchedule::Doubling { .. } => FilterSchedule::Doubling { first: n },
            };
        }
        if let Some(conv) = conv {
            c.model = c.model.with_conv(conv);
        }
        if let Some(v) = checkpoint_every {
            c.checkpoint_every = v;
        }
        if let Some(v) = epochs {
            c.epochs = v;
        }
        if let Some(v) = batch_size {
            c.batch_size = v;
        }
        if let Some(v) = lr {
            c.generator_optimizer.lr = v;
            c.discriminator_optimizer.lr = v;
        }
        if let Some(v) = lr_g {
            c.generator_optimizer.lr = v;
        }
        if let Some(v) = lr_d {
            c.discriminator_optimizer.lr = v;
        }
        if let Some(v) = real_label {
            c.real_label = v;
        }
        if let Some(v) = loss {
            c.loss = v;
        }
        if let Some(v) = instance_noise {
            c.instance_noise = v;
        }
        if let Some(decay) = ema_decay {
            c.ema_decay = (decay != 0.0).then_some(decay);
        }
        if let Some(v) = diff_augment {
            c.diff_augment = v;
        }
        if let Some(target) = ada_target {
            c.ada_target = (target != 0.0).then_some(target);
        }
        if let Some(v) = flip_and_turn {
            c.flip_and_turn = v;
        }
        if let Some(v) = spectral_norm {
            c.model.discriminator.spectral_norm = v;
        }
        if let Some(v) = minibatch_std {
            c.model.discriminator.minibatch_std = v;
        }
        if max_images.is_some() {
            c.max_images = max_images;
        }
        if let Some(v) = seed {
            c.seed = v;
        }
        if let Some(k) = families {
            c.model = c.model.conditional(k);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_are_valid() {
        for p in [
            Preset::Default,
            Preset::Laptop,
            Preset::Laptop64,
            Preset::Quick,
            Preset::Collapse,
            Preset::Tiny,
        ] {
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
        // laptop-64 is the laptop recipe at 64×64: same D and augmentation, its own budget,
        // and no average of G (which lags at that budget)...
        let (laptop, big) = (
            TrainConfig::preset(Preset::Laptop, Architecture::Logogan),
            TrainConfig::preset(Preset::Laptop64, Architecture::Logogan),
        );
        assert_eq!(big.image_size(), 64);
        // ... but quick's 16-filter G, the one its budget was measured with.
        assert_eq!(big.model.generator.base_filters, 16);
        assert_eq!(laptop.model.generator.base_filters, 32);
        assert_eq!(
            big.model.discriminator.filters,
            laptop.model.discriminator.filters
        );
        assert_eq!(
            (big.diff_augment, big.batch_size),
            (laptop.diff_augment, laptop.batch_size)
        );
        assert_eq!(big.ema_decay, None);
        let flag: TrainOptions = toml::from_str(r#"preset = "laptop-64""#).unwrap();
        assert_eq!(flag.preset, Some(Preset::Laptop64));
        // collapse is the laptop networks with G ten times faster than D and no tricks.
        let collapse = TrainConfig::preset(Preset::Collapse, Architecture::Logogan);
        assert_eq!(collapse.model, laptop.model);
        assert_eq!(
            collapse.generator_optimizer.lr,
            10.0 * collapse.discriminator_optimizer.lr
        );
        assert_eq!(
            collapse.discriminator_optimizer,
            laptop.discriminator_optimizer
        );
        assert!(!collapse.diff_augment && collapse.ema_decay.is_none());
    }

    #[test]
    fn options_set_widths_and_turn_the_average_off() {
        let wide = TrainOptions {
            preset: Some(Preset::Laptop),
            g_filters: Some(32),
            d_filters: Some(64),
            ema_decay: Some(0.0),
            ..TrainOptions::default()
        }
        .config();
        assert_eq!(wide.model.generator.base_filters, 32);
        assert_eq!(
            wide.model.discriminator.filters,
            FilterSchedule::Constant(64)
        );
        assert_eq!(wide.ema_decay, None);
        // A base that keeps an average (as the laptop sweep's does), and a trial that drops it.
        let averaged = TrainOptions {
            preset: Some(Preset::Laptop),
            ema_decay: Some(0.999),
            ..TrainOptions::default()
        };
        assert_eq!(averaged.config().ema_decay, Some(0.999));
        let dropped = averaged.overlay(&TrainOptions {
            ema_decay: Some(0.0),
            ..TrainOptions::default()
        });
        assert_eq!(dropped.config().ema_decay, None);
        let laptop = TrainConfig::preset(Preset::Laptop, Architecture::Logogan);
        // The recipe chapter 6 measured: DiffAugment, the average, the longer budget, the wide G.
        assert!(laptop.diff_augment && laptop.ema_decay == Some(0.999));
        assert_eq!(
            (laptop.epochs, laptop.model.generator.base_filters),
            (195, 32)
        );
        let classic = TrainOptions {
            model: Some(Architecture::Dcgan),
            d_filters: Some(16),
            ..TrainOptions::default()
        }
        .config();
        assert_eq!(
            classic.model.discriminator.filters,
            FilterSchedule::Doubling { first: 16 }
        );
        let huge = TrainOptions {
            g_filters: Some(1 << 20),
            ..TrainOptions::default()
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
        check(&|c| c.batch_size = 1 << 40, "batch_size");
        check(&|c| c.epochs = 0, "epochs");
        check(&|c| c.epochs = usize::MAX, "epochs");
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

    #[derive(clap::Parser)]
    struct Flags {
        #[command(flatten)]
        options: TrainOptions,
    }

    #[test]
    fn a_config_file_and_the_same_flags_give_the_same_config_json() {
        use clap::Parser;
        let flags = Flags::try_parse_from([
            "chapter-05",
            "--preset",
            "laptop",
            "--model",
            "dcgan",
            "--g-filters",
            "24",
            "--lr-d",
            "4e-4",
            "--real-label",
            "0.9",
            "--loss",
            "hinge",
            "--ema-decay",
            "0.999",
            "--diff-augment",
            "false",
            "--spectral-norm",
            "--minibatch-std",
            "--seed",
            "7",
        ])
        .unwrap()
        .options;
        let file: TrainOptions = toml::from_str(
            r#"
            preset = "laptop"
            model = "dcgan"
            g_filters = 24
            lr_d = 4e-4
            real_label = 0.9
            loss = "hinge"
            ema_decay = 0.999
            diff_augment = false
            spectral_norm = true
            minibatch_std = true
            seed = 7
            "#,
        )
        .unwrap();
        assert_eq!(file, flags);
        let json = |o: &TrainOptions| serde_json::to_string_pretty(&o.config()).unwrap();
        assert_eq!(json(&file), json(&flags));
        let config = flags.config();
        assert_eq!(config.model.architecture, Some(Architecture::Dcgan));
        assert_eq!(config.discriminator_optimizer.lr, 4e-4);
        assert!(!config.diff_augment && config.model.discriminator.spectral_norm);
        assert!(config.model.discriminator.minibatch_std);
        // Flags override the file; a bare boolean flag means true.
        let bare = Flags::try_parse_from(["chapter-05", "--diff-augment", "--ema", "0"])
            .unwrap()
            .options;
        let merged = file.overlay(&bare).config();
        assert!(merged.diff_augment);
        assert_eq!(merged.ema_decay, None);
        assert_eq!(merged.seed, 7);
        // A misspelt option in a file is named, not ignored.
        let err = toml::from_str::<TrainOptions>("label_smoothing = 0.1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("label_smoothing"), "{err}");
    }

    /// Every option, set on either side of an overlay, survives it: the overlay goes through
    /// serde, so a field that did not round-trip would be lost here.
    #[test]
    fn an_overlay_keeps_every_option_of_either_side() {
        let every = TrainOptions {
            name: Some("run".into()),
            preset: Some(Preset::Laptop),
            model: Some(Architecture::Dcgan),
            size: Some(64),
            latent_dim: Some(64),
            g_filters: Some(24),
            d_filters: Some(48),
            conv: Some(ConvAlgorithm::Composed),
            checkpoint_every: Some(10),
            epochs: Some(3),
            batch_size: Some(16),
            lr: Some(1e-4),
            lr_g: Some(2e-4),
            lr_d: Some(4e-4),
            real_label: Some(0.9),
            loss: Some(GanLoss::Hinge),
            instance_noise: Some(0.1),
            ema_decay: Some(0.999),
            diff_augment: Some(false),
            ada_target: Some(0.6),
            flip_and_turn: Some(true),
            spectral_norm: Some(true),
            minibatch_std: Some(true),
            max_images: Some(100),
            seed: Some(u64::MAX), // more than a TOML integer holds
            families: Some(6),
        };
        let none = TrainOptions::default();
        assert_eq!(none.overlay(&every), every);
        assert_eq!(every.overlay(&none), every);
        assert_eq!(none.overlay(&none), none);
        let seed_only = TrainOptions {
            seed: Some(9),
            ..TrainOptions::default()
        };
        assert_eq!(
            every.overlay(&seed_only),
            TrainOptions {
                seed: Some(9),
                ..every.clone()
            }
        );
    }

    #[test]
    fn one_default_preset_follows_the_device() {
        assert_eq!(
            Preset::for_device(&candle_core::Device::Cpu),
            Preset::Laptop
        );
        let unnamed = TrainOptions::default().config();
        assert_eq!(
            unnamed,
            TrainConfig::preset(Preset::Laptop, Architecture::Logogan)
        );
    }
}

//! Configuration of the two networks. Both architectures of the course are values of these
//! structs, built by [`ModelConfig::logogan`] and [`ModelConfig::dcgan`]: one code path, two
//! settings.

use crate::error::{Error, Result};
use crate::ops::ConvAlgorithm;

/// The widest layer (and the longest noise vector) a configuration may ask for.
pub const MAX_FILTERS: usize = 4096;

/// How many filters each discriminator convolution has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FilterSchedule {
    /// The same number everywhere (LogoGan: 128 from the first layer to the last).
    Constant(usize),
    /// `first`, then twice as many after every halving of the image (classic DCGAN: 64, 128, …).
    Doubling { first: usize },
}

impl FilterSchedule {
    /// Filters of the `i`-th strided convolution (0-based).
    pub fn filters(self, i: usize) -> usize {
        match self {
            FilterSchedule::Constant(n) => n,
            FilterSchedule::Doubling { first } => first << i,
        }
    }
}

/// The generator: a latent vector `(B, latent_dim, 1, 1)` → an image `(B, channels, S, S)`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct GeneratorConfig {
    /// Length of the noise vector z (100 in the DCGAN paper; 128 in LogoGan).
    pub latent_dim: usize,
    pub image_size: usize,
    pub channels: usize,
    /// Filters of the last hidden layer ("ngf"); each earlier layer has twice as many.
    pub base_filters: usize,
    /// How the transposed convolutions are computed (same numbers, different speed).
    #[serde(default)]
    pub conv: ConvAlgorithm,
    /// Logo families the generator can be asked for (chapter 7); 0 for the unconditional GAN.
    /// The family enters as a one-hot vector of this length after z ([`Self::input_channels`]).
    #[serde(default)]
    pub classes: usize,
}

impl GeneratorConfig {
    /// What the first layer reads per image: z, then the one-hot family when conditional.
    pub fn input_channels(&self) -> usize {
        self.latent_dim + self.classes
    }
}

/// The discriminator: an image → one logit per image (positive means "real").
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DiscriminatorConfig {
    pub image_size: usize,
    pub channels: usize,
    pub filters: FilterSchedule,
    /// Batch-norm after the first convolution too. The DCGAN paper leaves it out (the input
    /// layer sees raw pixels); LogoGan normalises after every convolution but the output.
    pub batch_norm_first: bool,
    /// Slope of LeakyReLU for negative inputs.
    pub leaky_slope: f64,
    /// How the convolutions are computed (same numbers, different speed).
    #[serde(default)]
    pub conv: ConvAlgorithm,
    /// Spectral normalisation of every convolution's weight (a stabilising trick, chapter 6).
    #[serde(default)]
    pub spectral_norm: bool,
    /// ProGAN's minibatch standard deviation before the output layer: one more input channel
    /// holding how much the batch's last features vary, so that D can see a batch of
    /// near-copies (a collapsing G) for what it is (chapter 6).
    #[serde(default)]
    pub minibatch_std: bool,
    /// Logo families D judges each image as a member of (chapter 7's projection
    /// discriminator); 0 for the unconditional GAN.
    #[serde(default)]
    pub classes: usize,
}

/// Both networks.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelConfig {
    /// The design these settings started from (widths and other settings may since differ).
    /// Configurations saved before it was recorded read it back as `None`; see
    /// [`ModelConfig::architecture`].
    #[serde(default)]
    pub architecture: Option<Architecture>,
    pub generator: GeneratorConfig,
    pub discriminator: DiscriminatorConfig,
}

/// The named architectures of the course.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Architecture {
    /// LogoGan: a constant 128 filters in D, batch-norm after every conv but the output.
    Logogan,
    /// The classic DCGAN (Radford et al. 2015): ngf = ndf = 64, doubling, no BN on D's input layer.
    Dcgan,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self::logogan(64)
    }
}

impl ModelConfig {
    /// LogoGan's design (the course's default) for `image_size` pixels.
    // ANCHOR: logogan_config
    pub fn logogan(image_size: usize) -> Self {
        Self {
            architecture: Some(Architecture::Logogan),
            generator: GeneratorConfig {
                latent_dim: 100,
                image_size,
                channels: 3,
                base_filters: 64,
                conv: ConvAlgorithm::Gemm,
                classes: 0,
            },
            discriminator: DiscriminatorConfig {
                image_size,
                channels: 3,
                filters: FilterSchedule::Constant(128),
                batch_norm_first: true,
                leaky_slope: 0.2,
                conv: ConvAlgorithm::Gemm,
                spectral_norm: false,
                minibatch_std: false,
                classes: 0,
            },
        }
    }
    // ANCHOR_END: logogan_config

    /// The classic DCGAN for `image_size` pixels.
    // ANCHOR: dcgan_config
    pub fn dcgan(image_size: usize) -> Self {
        Self {
            architecture: Some(Architecture::Dcgan),
            generator: GeneratorConfig {
                latent_dim: 100,
                image_size,
                channels: 3,
                base_filters: 64,
                conv: ConvAlgorithm::Gemm,
                classes: 0,
            },
            discriminator: DiscriminatorConfig {
                image_size,
                channels: 3,
                filters: FilterSchedule::Doubling { first: 64 },
                batch_norm_first: false,
                leaky_slope: 0.2,
                conv: ConvAlgorithm::Gemm,
                spectral_norm: false,
                minibatch_std: false,
                classes: 0,
            },
        }
    }
    // ANCHOR_END: dcgan_config

    /// Compute every convolution of both networks with `algorithm`.
    pub fn with_conv(mut self, algorithm: ConvAlgorithm) -> Self {
        self.generator.conv = algorithm;
        self.discriminator.conv = algorithm;
        self
    }

    /// The same networks conditioned on `classes` logo families (chapter 7): G reads the
    /// family after z, D projects it onto its features.
    pub fn conditional(mut self, classes: usize) -> Self {
        self.generator.classes = classes;
        self.discriminator.classes = classes;
        self
    }

    /// Logo families the networks are conditioned on (0: unconditional).
    pub fn classes(&self) -> usize {
        self.generator.classes
    }

    /// The design these settings started from: the recorded one, or for configurations saved
    /// before it was recorded, the one whose discriminator schedule they have.
    pub fn architecture(&self) -> Architecture {
        self.architecture
            .unwrap_or(match self.discriminator.filters {
                FilterSchedule::Constant(_) => Architecture::Logogan,
                FilterSchedule::Doubling { .. } => Architecture::Dcgan,
            })
    }

    pub fn new(architecture: Architecture, image_size: usize) -> Self {
        match architecture {
            Architecture::Logogan => Self::logogan(image_size),
            Architecture::Dcgan => Self::dcgan(image_size),
        }
    }

    /// Refuse sizes the networks cannot make, naming the field.
    pub fn validate(&self) -> Result<()> {
        let (g, d) = (&self.generator, &self.discriminator);
        for (field, size) in [
            ("generator.image_size", g.image_size),
            ("discriminator.image_size", d.image_size),
        ] {
            upsamplings(size).ok_or_else(|| {
                Error::config(
                    field,
                    format!("{size} is not a power of two from 8 to 512 (the course uses 32, 64 or 128)"),
                )
            })?;
        }
        if g.image_size != d.image_size {
            return Err(Error::config(
                "discriminator.image_size",
                format!(
                    "{} differs from the generator's {}",
                    d.image_size, g.image_size
                ),
            ));
        }
        for (field, value) in [
            ("generator.latent_dim", g.latent_dim),
            ("generator.channels", g.channels),
            ("generator.base_filters", g.base_filters),
            ("discriminator.channels", d.channels),
        ] {
            if value == 0 {
                return Err(Error::config(field, "must be at least 1"));
            }
        }
        if g.channels != d.channels {
            return Err(Error::config(
                "discriminator.channels",
                "differs from the generator's",
            ));
        }
        if d.filters.filters(0) == 0 {
            return Err(Error::config("discriminator.filters", "must be at least 1"));
        }
        // Bounded so a typo cannot ask for terabytes: 4096 filters is 32× the course's widest.
        for (field, value) in [
            ("generator.base_filters", g.base_filters),
            ("discriminator.filters", d.filters.filters(0)),
            ("generator.latent_dim", g.latent_dim),
        ] {
            if value > MAX_FILTERS {
                return Err(Error::config(
                    field,
                    format!("{value} is more than the {MAX_FILTERS} this course allows"),
                ));
            }
        }
        if g.classes != d.classes {
            return Err(Error::config(
                "discriminator.classes",
                format!("{} differs from the generator's {}", d.classes, g.classes),
            ));
        }
        if g.classes > crate::metrics::families::MAX_FAMILIES {
            return Err(Error::config(
                "generator.classes",
                format!(
                    "{} is more than the {} families this course allows",
                    g.classes,
                    crate::metrics::families::MAX_FAMILIES
                ),
            ));
        }
        if !(0.0..1.0).contains(&d.leaky_slope) {
            return Err(Error::config(
                "discriminator.leaky_slope",
                "must be in [0, 1)",
            ));
        }
        Ok(())
    }
}

/// Number of ×2 steps between a 4×4 map and an `image_size` image: 64 → 4. `None` when
/// `image_size` is not a power of two in 8..=512.
pub fn upsamplings(image_size: usize) -> Option<usize> {
    (image_size.is_power_of_two() && (8..=512).contains(&image_size))
        .then(|| image_size.trailing_zeros() as usize - 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules() {
        assert_eq!(FilterSchedule::Constant(128).filters(3), 128);
        assert_eq!(FilterSchedule::Doubling { first: 64 }.filters(3), 512);
        assert_eq!(upsamplings(64), Some(4));
        assert_eq!(upsamplings(32), Some(3));
        assert_eq!(upsamplings(128), Some(5));
        assert_eq!(upsamplings(48), None);
        assert_eq!(upsamplings(4), None);
    }

    #[test]
    fn impossible_configs_name_the_field() {
        let mut cfg = ModelConfig::logogan(64);
        cfg.generator.image_size = 100;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`generator.image_size`"));
        let mut cfg = ModelConfig::dcgan(64);
        cfg.discriminator.image_size = 32;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`discriminator.image_size`"));
        let mut cfg = ModelConfig::dcgan(64);
        cfg.generator.latent_dim = 0;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`generator.latent_dim`"));
        ModelConfig::logogan(128).validate().unwrap();
        let mut cfg = ModelConfig::logogan(32).conditional(4);
        cfg.validate().unwrap();
        cfg.discriminator.classes = 3;
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`discriminator.classes`"));
        let cfg = ModelConfig::logogan(32).conditional(65);
        assert!(cfg
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`generator.classes`"));
    }
}

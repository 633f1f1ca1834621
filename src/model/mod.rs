//! Chapter 4: the GAN's two networks in candle.
//!
//! * [`Generator`]: transposed convolutions from a noise vector to an image;
//! * [`Discriminator`]: strided convolutions from an image to a "real or fake" logit;
//! * [`ModelConfig`]: LogoGan's design and the classic DCGAN as two settings of the same code;
//! * [`Gan`]: both networks with their variables, built and initialised from a seed.

pub mod config;
pub mod discriminator;
pub mod generator;
pub mod latent;
pub mod layers;
pub mod summary;

pub use crate::ops::ConvAlgorithm;
pub use config::{Architecture, DiscriminatorConfig, FilterSchedule, GeneratorConfig, ModelConfig};
pub use discriminator::Discriminator;
pub use generator::Generator;
pub use latent::{latent_noise, one_hot};

use candle_core::Device;
use candle_nn::VarMap;

use crate::error::Result;

/// Both networks and the variable maps that hold their weights.
pub struct Gan {
    pub config: ModelConfig,
    pub generator: Generator,
    pub discriminator: Discriminator,
    /// The generator's variables (`block{i}.conv.weight`, …).
    pub generator_vars: VarMap,
    /// The discriminator's variables.
    pub discriminator_vars: VarMap,
}

impl Gan {
    /// Build both networks on `device` with the DCGAN initialisation drawn from `seed`.
    pub fn new(config: &ModelConfig, device: &Device, seed: u64) -> Result<Self> {
        config.validate()?;
        let (generator_vars, vb) = layers::new_varmap(device);
        let generator = Generator::new(&config.generator, vb)?;
        let (discriminator_vars, vb) = layers::new_varmap(device);
        let discriminator = Discriminator::new(&config.discriminator, vb)?;
        // Different streams for the two networks, so changing one leaves the other's weights alone.
        layers::init_dcgan(&generator_vars, seed)?;
        layers::init_dcgan(&discriminator_vars, seed ^ 0x9e37_79b9_7f4a_7c15)?;
        Ok(Self {
            config: config.clone(),
            generator,
            discriminator,
            generator_vars,
            discriminator_vars,
        })
    }
}

/// What a generator gives before any training: `n` images from a freshly initialised network
/// (batch statistics, as during training). Its weights are small random numbers, so the images
/// are grey textures whose pattern comes from the transposed convolutions' overlap.
pub fn untrained_samples(
    config: &ModelConfig,
    n: usize,
    seed: u64,
    device: &Device,
) -> Result<Vec<image::RgbImage>> {
    let gan = Gan::new(config, device, seed)?;
    let z = latent_noise(seed, 0, n, config.generator.latent_dim, device)?;
    crate::viz::tensor_to_images(&gan.generator.forward_t(&z, true)?)
}

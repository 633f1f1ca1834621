//! Chapter 4 — Modelling: print both networks layer by layer and run one forward pass.

use anyhow::Result;
use clap::Parser;
use logogan::cli::DeviceArg;
use logogan::model::latent_noise;
use logogan::model::summary::{discriminator_table, generator_table};
use logogan::model::{Architecture, Gan, ModelConfig};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc; // see logogan::cli::init

/// Build the generator and the discriminator, print their layers (output shape and parameter
/// count), and pass a batch of noise through both.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// Which design: LogoGan's (constant 128 filters in D) or the classic DCGAN.
    #[arg(long, value_enum, default_value_t = Architecture::Logogan)]
    model: Architecture,
    /// Image size: 32, 64 or 128.
    #[arg(long, default_value_t = 64)]
    size: usize,
    /// Length of the noise vector (100 or 128 are usual).
    #[arg(long, default_value_t = 100)]
    latent_dim: usize,
    #[command(flatten)]
    device: DeviceArg,
    /// Images in the test batch.
    #[arg(long, default_value_t = 4)]
    batch: usize,
    #[arg(long, default_value_t = 0)]
    seed: u64,
}

fn main() -> Result<()> {
    logogan::cli::init();
    let args = Args::parse();
    let device = args.device.open()?;
    let mut config = ModelConfig::new(args.model, args.size);
    config.generator.latent_dim = args.latent_dim;
    let gan = Gan::new(&config, &device, args.seed)?;
    println!("{}\n", generator_table(&gan.generator, &device)?);
    println!("{}\n", discriminator_table(&gan.discriminator, &device)?);

    let z = latent_noise(args.seed, 0, args.batch, args.latent_dim, &device)?;
    let fake = gan.generator.forward_t(&z, true)?;
    let logits = gan.discriminator.forward_t(&fake, true)?;
    let (min, max) = (
        fake.min_all()?.to_scalar::<f32>()?,
        fake.max_all()?.to_scalar::<f32>()?,
    );
    println!(
        "z {:?} → G(z) {:?}, values in [{min:.3}, {max:.3}] → D(G(z)) logits {:?}",
        z.dims(),
        fake.dims(),
        logits.dims()
    );
    println!(
        "D(G(z)) as probabilities: {:?}",
        candle_nn::ops::sigmoid(&logits)?.to_vec1::<f32>()?
    );
    Ok(())
}

//! The data of the book's browser pages (the code is `web/`, built by `scripts/build-web.sh`):
//!
//! * `generator.safetensors`: a trained run's generator packed into one file
//!   (`logogan::train::pack`), with a few latent directions for the page's sliders;
//! * `reference.json`: the images the native generator draws from that file for a few latent
//!   vectors (as numbers, and as the RGB bytes the binaries save), which the browser test (`scripts/check_book_browser.py`) compares with the page's,
//!   and `tests/training.rs` with today's native code.
//!
//! ```sh
//! cargo run --release --example web-assets -- --run runs/laptop --out book/src/web
//! ```

use std::path::PathBuf;

use anyhow::{Context, Result};
use candle_core::Device;
use clap::Parser;
use logogan::fsutil::write_atomic;
use logogan::model::latent_noise;
use logogan::train::generate::TrainedGenerator;
use logogan::train::pack::{PackedGenerator, MAX_DIRECTIONS};

/// Latent vectors of the reference, drawn from this seed as `chapter-05 generate --seed` does.
const REFERENCE_SEED: u64 = 7;

#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// The finished run whose generator the pages show (its average when it kept one, as
    /// `chapter-05 generate` samples it).
    #[arg(long)]
    run: PathBuf,
    /// Where the page's data goes.
    #[arg(long, default_value = "book/src/web")]
    out: PathBuf,
    /// Latent directions packed for the page's sliders.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=MAX_DIRECTIONS as u64))]
    directions: u64,
    /// Images in the reference.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..=16))]
    reference_images: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let device = Device::Cpu; // the browser's device: the reference must be made on the CPU
    let trained = TrainedGenerator::load(&args.run, &device)
        .with_context(|| format!("loading the generator of {}", args.run.display()))?;
    if trained.classes() > 0 {
        anyhow::bail!(
            "{} is a conditional run: the page shows chapter 5's unconditional generator",
            args.run.display()
        );
    }
    let bytes = trained.pack(args.directions as usize)?;
    // The reference is drawn from the packed bytes, through the code the browser runs.
    let packed = PackedGenerator::unpack(&bytes, "the packed generator", &device)?;
    let n = args.reference_images as usize;
    let latents = latent_noise(REFERENCE_SEED, 0, n, packed.config().latent_dim, &device)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let images = packed.sample(&latents, None)?;
    // The pictures as the binaries save them (RGB bytes, row by row, image after image).
    let pixels: Vec<u8> = logogan::viz::tensor_to_images(&images)?
        .into_iter()
        .flat_map(|image| image.into_raw())
        .collect();
    let images = images.flatten_all()?.to_vec1::<f32>()?;
    let reference = serde_json::json!({
        "about": "images of generator.safetensors for these latent vectors, computed natively \
                  (examples/web-assets.rs); the browser test compares the page's with them",
        "run": args.run.file_name().map(|n| n.to_string_lossy().into_owned()),
        "step": trained.step,
        "seed": REFERENCE_SEED,
        "image_size": packed.config().image_size,
        "latent_dim": packed.config().latent_dim,
        "latents": latents,
        "images": images,
        "pixels": pixels,
    });
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let generator_path = args.out.join("generator.safetensors");
    write_atomic(&generator_path, &bytes)?;
    write_atomic(
        &args.out.join("reference.json"),
        serde_json::to_string(&reference)?.as_bytes(),
    )?;
    println!(
        "{} ({:.2} MB, step {} of {}) and reference.json ({n} images)",
        generator_path.display(),
        bytes.len() as f64 / 1e6,
        trained.step,
        args.run.display()
    );
    Ok(())
}

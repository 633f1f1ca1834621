//! The sets of the calibration ladder: real logos spoiled in known ways, and fakes whose faults
//! are known (see [`super::calibrate`]). Each function returns `n` images `(n, 3, S, S)` in
//! [-1, 1], made only from its inputs and the seed.

use candle_core::{Device, Tensor};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::encoder::images_to_tensor;
use crate::data::augment::{mirror, recolour};
use crate::error::Result;

/// Gaussian blur of standard deviation `sigma` pixels.
pub fn blurred(images: &[RgbImage], sigma: f32, device: &Device) -> Result<Tensor> {
    let out: Vec<RgbImage> = images
        .iter()
        .map(|i| image::imageops::blur(i, sigma))
        .collect();
    images_to_tensor(&out, device)
}

/// Independent Gaussian noise of standard deviation `sigma` (in 0–255 levels) on every value.
pub fn noisy(images: &[RgbImage], sigma: f64, seed: u64, device: &Device) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let normal = Normal::new(0.0, sigma).expect("valid σ");
    let out: Vec<RgbImage> = images
        .iter()
        .map(|i| {
            let mut o = i.clone();
            for v in o.iter_mut() {
                *v = (*v as f64 + normal.sample(&mut rng))
                    .round()
                    .clamp(0.0, 255.0) as u8;
            }
            o
        })
        .collect();
    images_to_tensor(&out, device)
}

/// Contrast pulled toward mid-grey: `v ← grey + (v − grey)·keep` with `keep` in [0, 1].
pub fn washed_out(images: &[RgbImage], keep: f64, device: &Device) -> Result<Tensor> {
    let out: Vec<RgbImage> = images
        .iter()
        .map(|i| {
            let mut o = i.clone();
            for v in o.iter_mut() {
                *v = (127.5 + (*v as f64 - 127.5) * keep).round() as u8;
            }
            o
        })
        .collect();
    images_to_tensor(&out, device)
}

/// The mean of `images`, pixel by pixel, repeated `n` times.
pub fn mean_image(images: &[RgbImage], n: usize, device: &Device) -> Result<Tensor> {
    let mean = images_to_tensor(images, device)?.mean_keepdim(0)?; // (1, 3, S, S)
    Ok(mean.repeat((n, 1, 1, 1))?)
}

/// `n` images that cycle through the first `distinct` of `images`: one logo repeated is total
/// mode collapse, ten logos a generator that learnt a handful of modes.
pub fn repeated(images: &[RgbImage], distinct: usize, n: usize, device: &Device) -> Result<Tensor> {
    let out: Vec<RgbImage> = (0..n)
        .map(|i| images[i % distinct.min(images.len())].clone())
        .collect();
    images_to_tensor(&out, device)
}

/// `n` smooth colour blobs of side `size`, like an undertrained DCGAN's samples: a muted
/// background and two to four soft Gaussian patches of muted colours, no edges anywhere.
pub fn blobs(n: usize, size: u32, seed: u64, device: &Device) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let muted = |rng: &mut ChaCha8Rng, base: f64, spread: f64| {
        let grey = rng.random_range(base - spread..base + spread);
        [0, 1, 2].map(|_| (grey + rng.random_range(-30.0..30.0)).clamp(0.0, 255.0))
    };
    let out: Vec<RgbImage> = (0..n)
        .map(|_| {
            let background = muted(&mut rng, 190.0, 40.0);
            let patches: Vec<([f64; 3], f64, f64, f64, f64)> = (0..rng.random_range(2..=4))
                .map(|_| {
                    let s = size as f64;
                    (
                        muted(&mut rng, 110.0, 60.0),
                        rng.random_range(0.25 * s..0.75 * s),
                        rng.random_range(0.25 * s..0.75 * s),
                        rng.random_range(0.1 * s..0.25 * s),
                        rng.random_range(0.5..0.9),
                    )
                })
                .collect();
            RgbImage::from_fn(size, size, |x, y| {
                let mut colour = background;
                for (c, cx, cy, radius, strength) in &patches {
                    let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                    let w = strength * (-d2 / (2.0 * radius * radius)).exp();
                    for k in 0..3 {
                        colour[k] = colour[k] * (1.0 - w) + c[k] * w;
                    }
                }
                Rgb(colour.map(|v| v.round() as u8))
            })
        })
        .collect();
    images_to_tensor(&out, device)
}

/// Each image mirrored and given a fresh colour (a different hue than chapter 3's variants):
/// copies a pixel-by-pixel comparison would not find.
pub fn altered_copies(images: &[RgbImage], seed: u64, device: &Device) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let out: Vec<RgbImage> = images
        .iter()
        .map(|i| recolour(&mirror(i), &mut rng))
        .collect();
    images_to_tensor(&out, device)
}

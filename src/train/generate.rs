//! Sampling from a trained generator: grids, single images, latent interpolations.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use image::RgbImage;

use super::checkpoint;
use super::run::{RunDir, RunRecord};
use crate::error::{Error, Result};
use crate::fsutil::{create_output_dir, save_png};
use crate::metrics::families::FamilyRow;
use crate::model::latent_noise;
use crate::model::layers::new_varmap;
use crate::model::Generator;
use crate::viz::{image_grid, tensor_to_images};

/// Batches of noise (of [`MEASURE_BATCH_SIZE`]) that [`TrainedGenerator::measure_batch_norm`]
/// passes through the generator.
pub const MEASURE_BATCHES: u64 = 64;
/// Images per batch when batch-norm's statistics are measured (as in the laptop recipe's training).
pub const MEASURE_BATCH_SIZE: usize = 64;

const MEASURE_STREAMS: u64 = 1 << 32;

/// A generator restored from a run's latest checkpoint.
pub struct TrainedGenerator {
    pub generator: Generator,
    pub record: RunRecord,
    /// Training step of the checkpoint.
    pub step: u64,
    /// A conditional generator's images per family in its training set (from the run's
    /// `families.csv`), by family number; empty for the unconditional GAN.
    pub family_sizes: Vec<usize>,
    /// The family every sample is drawn from ([`Self::set_family`]); `None` spreads the samples
    /// over the families in the proportions of the training set.
    family: Option<u32>,
    /// The generator's variables, by name (what [`Self::pack`] writes).
    variables: VarMap,
    device: Device,
}

impl TrainedGenerator {
    /// Load the generator of the run in `run_dir`: its averaged copy when the run kept one.
    pub fn load(run_dir: &Path, device: &Device) -> Result<Self> {
        Self::load_weights(run_dir, device, true)
    }

    /// Load the generator the run trained, never its average (e.g. to see what the average adds).
    pub fn load_trained(run_dir: &Path, device: &Device) -> Result<Self> {
        Self::load_weights(run_dir, device, false)
    }

    fn load_weights(run_dir: &Path, device: &Device, averaged: bool) -> Result<Self> {
        let run = RunDir::new(run_dir);
        let record = RunRecord::load(&run)?;
        let checkpoint = checkpoint::load(&run.checkpoints(), device)?;
        let (varmap, vb) = new_varmap(device);
        let generator = Generator::new(&record.config.model.generator, vb)?;
        let prefix = if averaged && checkpoint.tensors.keys().any(|k| k.starts_with("g_ema.")) {
            "g_ema"
        } else {
            "g"
        };
        checkpoint.restore(&varmap, prefix)?;
        let classes = record.config.model.classes();
        let mut family_sizes = vec![0; classes];
        if classes > 0 {
            let rows: Vec<FamilyRow> = crate::fsutil::read_csv(&run.families())?;
            for row in rows {
                let size = family_sizes.get_mut(row.family as usize).ok_or_else(|| {
                    Error::bad_input(
                        run.families(),
                        format!(
                            "`{}` has family {}, but the generator has {classes}",
                            row.name, row.family
                        ),
                    )
                })?;
                *size += 1;
            }
        }
        Ok(Self {
            generator,
            record,
            step: checkpoint.info.step,
            family_sizes,
            family: None,
            variables: varmap,
            device: device.clone(),
        })
    }

    /// Logo families the generator was trained on (0: unconditional).
    pub fn classes(&self) -> usize {
        self.family_sizes.len()
    }

    /// Draw every later sample from `family` (chapter 7's `generate --class`), or with `None`
    /// from all families in the training set's proportions. Refused, naming the flag, for a
    /// family the generator does not have.
    pub fn set_family(&mut self, family: Option<u32>) -> Result<()> {
        match (family, self.classes()) {
            (Some(_), 0) => Err(Error::config(
                "class",
                "this run's generator is unconditional: it has no families to choose from",
            )),
            (Some(f), k) if f as usize >= k => Err(Error::config(
                "class",
                format!("{f} is not a family of this generator (0 to {})", k - 1),
            )),
            _ => {
                self.family = family;
                Ok(())
            }
        }
    }

    /// The families of `n` samples: the chosen one, or the training set's proportions (sample i
    /// takes the family at quantile (i + ½)/n of the set's families in order); `None` for an
    /// unconditional generator.
    pub fn families(&self, n: usize) -> Result<Option<Tensor>> {
        if self.classes() == 0 {
            return Ok(None);
        }
        let total: usize = self.family_sizes.iter().sum();
        let families: Vec<u32> = (0..n)
            .map(|i| match self.family {
                Some(f) => f,
                None => {
                    let quantile = (i as f64 + 0.5) / n as f64 * total as f64;
                    let mut seen = 0.0;
                    self.family_sizes
                        .iter()
                        .position(|&size| {
                            seen += size as f64;
                            quantile < seen
                        })
                        .unwrap_or(self.classes() - 1) as u32
                }
            })
            .collect();
        Ok(Some(Tensor::new(families, &self.device)?))
    }

    /// Images `(n, 3, S, S)` in [-1, 1] for the latent vectors `z` `(n, latent_dim, 1, 1)`, in
    /// inference mode (of the families of [`Self::families`] for a conditional generator).
    pub fn sample(&self, z: &Tensor) -> Result<Tensor> {
        let families = self.families(z.dim(0)?)?;
        let input = self.generator.input(z, families.as_ref())?;
        Ok(self.generator.forward_t(&input, false)?)
    }

    pub fn latent_dim(&self) -> usize {
        self.generator.config().latent_dim
    }

    /// `n` latent vectors drawn from `seed`.
    pub fn noise(&self, n: usize, seed: u64) -> Result<Tensor> {
        latent_noise(seed, 0, n, self.latent_dim(), &self.device)
    }

    /// Batch-norm's running statistics measured again at these weights ("standing statistics",
    /// Brock et al. 2019): training-mode passes over `MEASURE_BATCHES` batches of fresh noise,
    /// enough for momentum 0.1 to forget what the checkpoint held (0.9⁶⁴ < 0.2 %). Why: in
    /// inference mode each layer normalises with those averages, and what a checkpoint holds
    /// was measured elsewhere. For the trained generator it averages the last dozen batches,
    /// each seen by slightly different weights; for the averaged (EMA) generator it is copied
    /// from the trained one, whose weights the average is not.
    pub fn measure_batch_norm(&self, seed: u64) -> Result<()> {
        for batch in 0..MEASURE_BATCHES {
            // Streams apart from stream 0, which `noise` samples from.
            let stream = MEASURE_STREAMS + batch;
            let z = latent_noise(
                seed,
                stream,
                MEASURE_BATCH_SIZE,
                self.latent_dim(),
                &self.device,
            )?;
            let families = self.families(MEASURE_BATCH_SIZE)?;
            self.generator
                .forward_t(&self.generator.input(&z, families.as_ref())?, true)?;
        }
        Ok(())
    }

    /// The generator in one file's bytes (see [`super::pack`]): what the book's browser page
    /// loads. Measure batch-norm first ([`Self::measure_batch_norm`]) to pack what sampling uses.
    /// It carries [`super::pack::latent_directions`]' first `directions` for the page's sliders.
    pub fn pack(&self, directions: usize) -> Result<Vec<u8>> {
        const SAMPLES: usize = 512;
        let families = self.families(SAMPLES)?;
        let directions = super::pack::latent_directions(
            &self.generator,
            families.as_ref(),
            directions,
            SAMPLES,
            0,
            &self.device,
        )?;
        super::pack::pack(self.generator.config(), &self.variables, &directions)
    }

    /// Images for the latent vectors `z` `(n, latent_dim, 1, 1)`, in inference mode.
    pub fn images(&self, z: &Tensor) -> Result<Vec<RgbImage>> {
        tensor_to_images(&self.sample(z)?)
    }

    /// `frames` images along the great circle from the latent vector of `seed_a` to that of
    /// `seed_b` (spherical interpolation: Gaussian noise lives near a sphere, and a straight line
    /// between two points cuts through its low-probability inside).
    pub fn interpolate(&self, seed_a: u64, seed_b: u64, frames: usize) -> Result<Vec<RgbImage>> {
        let a = self.noise(1, seed_a)?.flatten_all()?.to_vec1::<f32>()?;
        let b = self.noise(1, seed_b)?.flatten_all()?.to_vec1::<f32>()?;
        let steps = frames.max(2);
        let mut all = Vec::with_capacity(steps * a.len());
        for i in 0..steps {
            all.extend(slerp(&a, &b, i as f32 / (steps - 1) as f32));
        }
        let z =
            Tensor::from_vec(all, (steps, a.len(), 1, 1), &Device::Cpu)?.to_device(&self.device)?;
        self.images(&z)
    }
}

impl TrainedGenerator {
    /// `n` samples from the noise of `seed`, written to `out` as one grid
    /// (`grid-seed<seed>.png`, `grid-class<k>-seed<seed>.png` for one family) and as single
    /// PNGs; returns the grid's path.
    pub fn save_samples(&self, n: usize, seed: u64, out: &Path) -> Result<PathBuf> {
        create_output_dir(out)?;
        let images = self.images(&self.noise(n, seed)?)?;
        let columns = (n as f64).sqrt().ceil() as usize;
        let family = self.family.map_or(String::new(), |f| format!("class{f}-"));
        let grid = out.join(format!("grid-{family}seed{seed}.png"));
        save_png(&grid, &image_grid(&images, columns, 2))?;
        for (i, image) in images.iter().enumerate() {
            save_png(&out.join(format!("{family}seed{seed}-{i:03}.png")), image)?;
        }
        Ok(grid)
    }

    /// [`Self::interpolate`] as one strip in `out` (`interpolation-<a>-<b>.png`); returns its path.
    pub fn save_interpolation(
        &self,
        (seed_a, seed_b): (u64, u64),
        frames: usize,
        out: &Path,
    ) -> Result<PathBuf> {
        create_output_dir(out)?;
        let strip = self.interpolate(seed_a, seed_b, frames)?;
        let path = out.join(format!("interpolation-{seed_a}-{seed_b}.png"));
        save_png(&path, &image_grid(&strip, strip.len(), 2))?;
        Ok(path)
    }
}

/// Spherical linear interpolation between two vectors, `t` in [0, 1].
// ANCHOR: slerp
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    let norm = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>().sqrt();
    let (na, nb) = (norm(a), norm(b));
    let cos = (a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>() / (na * nb)).clamp(-1.0, 1.0);
    let omega = cos.acos();
    if omega.abs() < 1e-5 {
        return a.iter().zip(b).map(|(x, y)| x + t * (y - x)).collect();
    }
    let (wa, wb) = (
        ((1.0 - t) * omega).sin() / omega.sin(),
        (t * omega).sin() / omega.sin(),
    );
    a.iter().zip(b).map(|(x, y)| wa * x + wb * y).collect()
}
// ANCHOR_END: slerp

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slerp_ends_at_its_endpoints_and_keeps_the_norm_of_equal_vectors() {
        let (a, b) = ([1.0f32, 0.0], [0.0f32, 1.0]);
        assert_eq!(slerp(&a, &b, 0.0), a.to_vec());
        let end = slerp(&a, &b, 1.0);
        assert!((end[0]).abs() < 1e-6 && (end[1] - 1.0).abs() < 1e-6);
        let mid = slerp(&a, &b, 0.5);
        assert!(
            ((mid[0] * mid[0] + mid[1] * mid[1]).sqrt() - 1.0).abs() < 1e-6,
            "{mid:?}"
        );
        assert_eq!(slerp(&a, &a, 0.3), a.to_vec());
    }
}

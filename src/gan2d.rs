//! A GAN small enough to watch: two little multilayer perceptrons play chapter 1's game on
//! points in the plane instead of logos. The real distribution is a ring of Gaussian blobs
//! ("modes"); a generator that has learnt it puts its points on every blob, one that has
//! *collapsed* puts them on a few. It trains in seconds on a CPU, so a learner can change a
//! setting and see the effect at once.
//!
//! The game, the losses and the optimiser are the logo GAN's: D's loss is BCE on reals
//! (target 1) plus BCE on fakes (target 0), G's is the non-saturating BCE(D(G(z)), 1), both
//! networks use Adam.

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{linear, Linear, VarBuilder, VarMap};
use image::RgbImage;
use plotters::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::error::{Error, Result};
use crate::train::adam::{Adam, AdamConfig};
use crate::train::loss::bce_with_logits;
use crate::viz::plot::{BLUE, GREY, ORANGE};

/// The settings of a 2-D run.
#[derive(Debug, Clone, PartialEq)]
pub struct Gan2dConfig {
    /// Blobs on the ring.
    pub modes: usize,
    /// Radius of the ring and standard deviation of each blob.
    pub radius: f64,
    pub spread: f64,
    /// Length of the noise vector z.
    pub latent_dim: usize,
    /// Units in each of the two hidden layers of both networks.
    pub hidden: usize,
    pub steps: usize,
    pub batch_size: usize,
    /// Adam's learning rate for both networks (β₁ = 0.5, as in DCGAN).
    pub lr: f64,
    pub seed: u64,
}

impl Default for Gan2dConfig {
    fn default() -> Self {
        Self {
            modes: 8,
            radius: 2.0,
            spread: 0.05,
            latent_dim: 2,
            hidden: 64,
            steps: 2000,
            batch_size: 128,
            lr: 5e-3,
            seed: 0,
        }
    }
}

impl Gan2dConfig {
    fn validate(&self) -> Result<()> {
        let check = |ok: bool, field: &str, why: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::config(field, why.to_string()))
            }
        };
        check((1..=64).contains(&self.modes), "modes", "must be 1 to 64")?;
        check(
            (1..=1024).contains(&self.hidden),
            "hidden",
            "must be 1 to 1024",
        )?;
        check(
            (1..=256).contains(&self.latent_dim),
            "latent_dim",
            "must be 1 to 256",
        )?;
        check(
            (2..=4096).contains(&self.batch_size),
            "batch_size",
            "must be 2 to 4096",
        )?;
        check(self.steps <= 1_000_000, "steps", "at most 1 000 000")?;
        check(self.lr > 0.0 && self.lr < 1.0, "lr", "must be in (0, 1)")?;
        check(
            self.radius > 0.0 && self.spread > 0.0,
            "radius",
            "radius and spread must be > 0",
        )
    }

    /// The centres of the blobs.
    pub fn centres(&self) -> Vec<(f64, f64)> {
        (0..self.modes)
            .map(|k| {
                let angle = std::f64::consts::TAU * k as f64 / self.modes as f64;
                (self.radius * angle.cos(), self.radius * angle.sin())
            })
            .collect()
    }
}

/// `n` points of the real distribution, `(n, 2)`: a blob chosen uniformly, then Gaussian noise
/// of standard deviation `spread` around its centre. Drawn from `seed`.
pub fn ring_of_gaussians(config: &Gan2dConfig, n: usize, seed: u64) -> Result<Tensor> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let noise = Normal::new(0.0, config.spread).expect("spread > 0");
    let centres = config.centres();
    let mut points = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let (cx, cy) = centres[rand::Rng::random_range(&mut rng, 0..centres.len())];
        points.push((cx + noise.sample(&mut rng)) as f32);
        points.push((cy + noise.sample(&mut rng)) as f32);
    }
    Ok(Tensor::from_vec(points, (n, 2), &Device::Cpu)?)
}

/// A perceptron with two hidden layers: `in → hidden → hidden → out`, with `activation` after
/// each hidden layer.
pub struct Mlp {
    layers: [Linear; 3],
    leaky: bool,
}

impl Mlp {
    fn new(
        inputs: usize,
        hidden: usize,
        outputs: usize,
        leaky: bool,
        vb: VarBuilder,
    ) -> Result<Self> {
        Ok(Self {
            layers: [
                linear(inputs, hidden, vb.pp("0"))?,
                linear(hidden, hidden, vb.pp("1"))?,
                linear(hidden, outputs, vb.pp("2"))?,
            ],
            leaky,
        })
    }
}

impl Module for Mlp {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let mut x = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            x = layer.forward(&x)?;
            if i < 2 {
                x = if self.leaky {
                    candle_nn::ops::leaky_relu(&x, 0.2)?
                } else {
                    x.relu()?
                };
            }
        }
        Ok(x)
    }
}

/// Both players of the 2-D game, their optimisers and where they stand.
pub struct Gan2d {
    pub config: Gan2dConfig,
    /// z `(B, latent_dim)` → points `(B, 2)`.
    pub generator: Mlp,
    /// points `(B, 2)` → logits `(B, 1)`.
    pub discriminator: Mlp,
    g_optimizer: Adam,
    d_optimizer: Adam,
    rng: ChaCha8Rng,
    pub step: usize,
}

/// The losses of one step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Losses2d {
    pub step: usize,
    pub d_loss: f32,
    pub g_loss: f32,
}

impl Gan2d {
    /// Both networks with candle-nn's default initialisation, drawn from `config.seed`.
    pub fn new(config: &Gan2dConfig) -> Result<Self> {
        config.validate()?;
        let device = Device::Cpu;
        let (g_vars, d_vars) = (VarMap::new(), VarMap::new());
        let vb = |vars: &VarMap| VarBuilder::from_varmap(vars, DType::F32, &device);
        let generator = Mlp::new(config.latent_dim, config.hidden, 2, false, vb(&g_vars))?;
        let discriminator = Mlp::new(2, config.hidden, 1, true, vb(&d_vars))?;
        seed_weights(&g_vars, config.seed)?;
        seed_weights(&d_vars, config.seed ^ 0x5eed)?;
        let adam = AdamConfig {
            lr: config.lr,
            ..AdamConfig::default()
        };
        Ok(Self {
            config: config.clone(),
            g_optimizer: Adam::new(&g_vars, adam)?,
            d_optimizer: Adam::new(&d_vars, adam)?,
            generator,
            discriminator,
            rng: ChaCha8Rng::seed_from_u64(config.seed ^ 0xda7a),
            step: 0,
        })
    }

    /// `n` noise vectors `(n, latent_dim)`, standard normal, from the run's own stream.
    fn noise(&mut self, n: usize) -> Result<Tensor> {
        let normal = Normal::new(0.0f32, 1.0).expect("valid");
        let values = (0..n * self.config.latent_dim)
            .map(|_| normal.sample(&mut self.rng))
            .collect();
        Ok(Tensor::from_vec(
            values,
            (n, self.config.latent_dim),
            &Device::Cpu,
        )?)
    }

    // ANCHOR: gan2d_step
    /// One round of the game: D's update on a real and a fake batch, then G's.
    pub fn train_step(&mut self) -> Result<Losses2d> {
        let b = self.config.batch_size;
        let seed = self.rng.next_u64_seed();
        // D: real points → 1, G's points → 0. The fakes are detached: this step moves D only.
        let real = ring_of_gaussians(&self.config, b, seed)?; // (B, 2)
        let z = self.noise(b)?; // (B, latent_dim)
        let fake = self.generator.forward(&z)?; // (B, 2)
        let d_loss = (bce_with_logits(&self.discriminator.forward(&real)?, 1.0)?
            + bce_with_logits(&self.discriminator.forward(&fake.detach())?, 0.0)?)?;
        self.d_optimizer.step(&d_loss.backward()?)?;
        // G: make D say 1 to fresh fakes (the non-saturating loss). D's weights get gradients
        // here too, but only G's optimiser steps.
        let z = self.noise(b)?;
        let fake = self.generator.forward(&z)?;
        let g_loss = bce_with_logits(&self.discriminator.forward(&fake)?, 1.0)?;
        self.g_optimizer.step(&g_loss.backward()?)?;
        self.step += 1;
        Ok(Losses2d {
            step: self.step,
            d_loss: d_loss.to_scalar()?,
            g_loss: g_loss.to_scalar()?,
        })
    }
    // ANCHOR_END: gan2d_step

    /// `n` of G's points `(n, 2)`, from noise drawn from `seed` (the same seed gives the same
    /// noise at every step: fixed noise, as for the logo grids).
    pub fn sample(&self, n: usize, seed: u64) -> Result<Tensor> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let normal = Normal::new(0.0f32, 1.0).expect("valid");
        let values = (0..n * self.config.latent_dim)
            .map(|_| normal.sample(&mut rng))
            .collect();
        let z = Tensor::from_vec(values, (n, self.config.latent_dim), &Device::Cpu)?;
        Ok(self.generator.forward(&z)?)
    }
}

impl Gan2d {
    /// Change both players' learning rate from the next step on (the browser page's slider):
    /// Adam's moments are kept, as when a schedule changes the rate. Far too large a rate makes
    /// G collapse, as in Figure 1.1.
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        if !(lr > 0.0 && lr < 1.0) {
            return Err(Error::config("lr", format!("{lr} must be in (0, 1)")));
        }
        self.config.lr = lr;
        self.g_optimizer.config.lr = lr;
        self.d_optimizer.config.lr = lr;
        Ok(())
    }

    /// D's verdict over the plane: the probability that a point is real, σ(D(x)), at the centres
    /// of a `resolution × resolution` grid of cells over [-extent, extent]², row by row from the
    /// top (y near extent) down, each row from left (x near -extent) to right: what a page
    /// paints as cells.
    pub fn decision_surface(&self, resolution: usize, extent: f64) -> Result<Vec<f32>> {
        if !((2..=512).contains(&resolution) && extent > 0.0 && extent.is_finite()) {
            return Err(Error::config(
                "resolution",
                format!("a grid of {resolution} over ±{extent}: 2 to 512 cells, a positive extent"),
            ));
        }
        let at = |i: usize| (-extent + extent * (2 * i + 1) as f64 / resolution as f64) as f32;
        let mut points = Vec::with_capacity(2 * resolution * resolution);
        for row in 0..resolution {
            for column in 0..resolution {
                points.push(at(column)); // x, left to right
                points.push(at(resolution - 1 - row)); // y, top to bottom
            }
        }
        let points = Tensor::from_vec(points, (resolution * resolution, 2), &Device::Cpu)?;
        let logits = self.discriminator.forward(&points)?; // (R², 1)
        Ok(candle_nn::ops::sigmoid(&logits)?.flatten_all()?.to_vec1()?)
    }
}

trait NextSeed {
    fn next_u64_seed(&mut self) -> u64;
}

impl NextSeed for ChaCha8Rng {
    fn next_u64_seed(&mut self) -> u64 {
        rand::RngCore::next_u64(self)
    }
}

/// Overwrite every variable with uniform values in ±1/√fan_in (candle-nn's and PyTorch's rule
/// for linear layers), drawn from `seed` in name order, so a run is repeatable.
fn seed_weights(vars: &VarMap, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let data = vars.data().lock().expect("poisoned");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let fan_in = match var.dims() {
            [_, fan_in] => *fan_in,
            [_] => {
                // a bias: its layer's weight has the fan-in as its second dimension
                let weight = name.replace("bias", "weight");
                data.get(&weight).map_or(1, |w| w.dims()[1])
            }
            _ => 1,
        };
        let bound = 1.0 / (fan_in as f32).sqrt();
        let values: Vec<f32> = (0..var.elem_count())
            .map(|_| rand::Rng::random_range(&mut rng, -bound..bound))
            .collect();
        var.set(&Tensor::from_vec(values, var.shape(), &Device::Cpu)?)?;
    }
    Ok(())
}

/// How many of the ring's blobs `points` `(n, 2)` cover: a blob counts when at least
/// `min_share` of the points lie within 4 standard deviations of its centre. Also returns the
/// share of points near no blob at all. A generator that has learnt the ring covers every blob
/// and leaves few points between them; a collapsed one covers a few.
pub fn modes_covered(
    config: &Gan2dConfig,
    points: &Tensor,
    min_share: f64,
) -> Result<(usize, f64)> {
    let points = points.to_dtype(DType::F64)?.to_vec2::<f64>()?;
    let centres = config.centres();
    let mut counts = vec![0usize; centres.len()];
    let mut stray = 0usize;
    let reach = 4.0 * config.spread;
    for p in &points {
        match centres
            .iter()
            .position(|c| ((p[0] - c.0).powi(2) + (p[1] - c.1).powi(2)).sqrt() < reach)
        {
            Some(k) => counts[k] += 1,
            None => stray += 1,
        }
    }
    let n = points.len().max(1) as f64;
    let covered = counts
        .iter()
        .filter(|&&c| c as f64 / n >= min_share)
        .count();
    Ok((covered, stray as f64 / n))
}

/// A scatter plot of real points (grey) and G's points (orange) with the blobs' centres, titled
/// `title`: what the 2-D generator has learnt.
pub fn scatter(
    config: &Gan2dConfig,
    real: &Tensor,
    fake: &Tensor,
    title: &str,
) -> Result<RgbImage> {
    let (w, h) = (420u32, 440u32);
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    let to_points = |t: &Tensor| -> Result<Vec<(f64, f64)>> {
        Ok(t.to_dtype(DType::F64)?
            .to_vec2::<f64>()?
            .into_iter()
            .map(|p| (p[0], p[1]))
            .collect())
    };
    let (real, fake) = (to_points(real)?, to_points(fake)?);
    let lim = config.radius * 1.6;
    crate::viz::plot::register_font();
    {
        let area = BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area();
        let fail = |e: &dyn std::fmt::Display| Error::config("plot", e.to_string());
        area.fill(&WHITE).map_err(|e| fail(&e))?;
        let mut ctx = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 18))
            .margin(8)
            .x_label_area_size(24)
            .y_label_area_size(30)
            .build_cartesian_2d(-lim..lim, -lim..lim)
            .map_err(|e| fail(&e))?;
        ctx.configure_mesh()
            .x_label_formatter(&|v| crate::viz::plot::axis_number(*v))
            .y_label_formatter(&|v| crate::viz::plot::axis_number(*v))
            .label_style(("sans-serif", 11))
            .light_line_style(RGBColor(240, 240, 240))
            .draw()
            .map_err(|e| fail(&e))?;
        ctx.draw_series(
            real.iter()
                .map(|&p| Circle::new(p, 2, GREY.mix(0.5).filled())),
        )
        .map_err(|e| fail(&e))?;
        ctx.draw_series(fake.iter().map(|&p| Circle::new(p, 2, ORANGE.filled())))
            .map_err(|e| fail(&e))?;
        ctx.draw_series(
            config
                .centres()
                .into_iter()
                .map(|c| Cross::new(c, 5, BLUE.stroke_width(2))),
        )
        .map_err(|e| fail(&e))?;
        area.present().map_err(|e| fail(&e))?;
    }
    RgbImage::from_raw(w, h, buffer).ok_or_else(|| Error::config("plot", "buffer size"))
}

/// Train `config` to the end, keeping a scatter plot every `every` steps (and of the start and
/// the end), and the losses of every step.
pub fn train_and_watch(
    config: &Gan2dConfig,
    every: usize,
) -> Result<(Gan2d, Vec<RgbImage>, Vec<Losses2d>)> {
    let mut gan = Gan2d::new(config)?;
    let real = ring_of_gaussians(config, 512, 1)?;
    let every = every.max(1);
    let mut frames = vec![scatter(config, &real, &gan.sample(512, 2)?, "step 0")?];
    let mut losses = Vec::with_capacity(config.steps);
    for _ in 0..config.steps {
        losses.push(gan.train_step()?);
        if gan.step % every == 0 || gan.step == config.steps {
            let title = format!("step {}", gan.step);
            frames.push(scatter(config, &real, &gan.sample(512, 2)?, &title)?);
        }
    }
    Ok((gan, frames, losses))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ring_has_its_blobs_where_it_says() {
        let config = Gan2dConfig::default();
        let real = ring_of_gaussians(&config, 4000, 0).unwrap();
        assert_eq!(real.dims(), &[4000, 2]);
        let (covered, stray) = modes_covered(&config, &real, 0.05).unwrap();
        assert_eq!(covered, 8);
        assert!(stray < 0.01, "{stray}");
        // A "generator" that sits on one blob covers one.
        let one = Tensor::from_vec([2.0f32, 0.0].repeat(100), (100, 2), &Device::Cpu).unwrap();
        assert_eq!(modes_covered(&config, &one, 0.05).unwrap().0, 1);
    }

    #[test]
    fn the_default_learns_the_ring_and_a_huge_learning_rate_collapses() {
        let good = Gan2dConfig::default();
        let (gan, frames, losses) = train_and_watch(&good, 1000).unwrap();
        assert_eq!((frames.len(), losses.len()), (3, good.steps));
        let (covered, stray) = modes_covered(&good, &gan.sample(1000, 2).unwrap(), 0.04).unwrap();
        assert!(
            covered >= 6 && stray < 0.2,
            "{covered} blobs, {stray} stray"
        );
        // Ten times the step size: G ends on (at most) a blob or two, or nowhere.
        let bad = Gan2dConfig {
            lr: 0.05,
            seed: 1,
            ..good
        };
        let (gan, _, _) = train_and_watch(&bad, bad.steps).unwrap();
        let (covered, _) = modes_covered(&bad, &gan.sample(1000, 2).unwrap(), 0.04).unwrap();
        assert!(covered <= 2, "{covered} blobs");
    }

    #[test]
    fn the_decision_surface_is_d_on_the_plane_and_the_rate_can_change_mid_game() {
        let config = Gan2dConfig {
            steps: 200,
            ..Gan2dConfig::default()
        };
        let mut gan = Gan2d::new(&config).unwrap();
        for _ in 0..200 {
            gan.train_step().unwrap();
        }
        let surface = gan.decision_surface(5, 2.0).unwrap();
        assert_eq!(surface.len(), 25);
        // Cells are 0.8 wide: (row 2, column 4) is centred on (1.6, 0), beside the ring's first
        // blob; (row 0, column 0) on (-1.6, 1.6), an empty corner. Both read straight from D.
        let d = |x: f32, y: f32| {
            let logit = gan
                .discriminator
                .forward(&Tensor::new(&[[x, y]], &Device::Cpu).unwrap());
            let logit = logit
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()[0];
            1.0 / (1.0 + (-logit).exp())
        };
        assert!((surface[2 * 5 + 4] - d(1.6, 0.0)).abs() < 1e-5);
        assert!((surface[0] - d(-1.6, 1.6)).abs() < 1e-5);
        // After 200 steps D already rates a blob as more real than the empty corner.
        assert!(surface[2 * 5 + 4] > surface[0], "{surface:?}");
        assert!(gan.decision_surface(1, 2.0).is_err());
        // A new rate takes effect at the next step; an impossible one is refused.
        gan.set_learning_rate(0.05).unwrap();
        assert_eq!(gan.config.lr, 0.05);
        assert!(gan.set_learning_rate(0.0).is_err() && gan.set_learning_rate(f64::NAN).is_err());
        gan.train_step().unwrap();
    }

    #[test]
    fn a_short_run_moves_g_onto_the_ring_and_repeats_itself() {
        use candle_core::D;
        let config = Gan2dConfig {
            steps: 300,
            ..Gan2dConfig::default()
        };
        let mut gan = Gan2d::new(&config).unwrap();
        let radius = |gan: &Gan2d| {
            let p = gan.sample(512, 2).unwrap();
            let r = p.sqr().unwrap().sum(D::Minus1).unwrap().sqrt().unwrap();
            r.mean_all().unwrap().to_scalar::<f32>().unwrap()
        };
        let before = radius(&gan);
        for _ in 0..config.steps {
            gan.train_step().unwrap();
        }
        let after = radius(&gan);
        // Untrained, G's points sit near the origin; the ring is at radius 2.
        assert!(
            before < 1.0 && (after - 2.0).abs() < (before - 2.0).abs() / 2.0,
            "{before} → {after}"
        );
        // Same seed, same run.
        let mut again = Gan2d::new(&config).unwrap();
        for _ in 0..config.steps {
            again.train_step().unwrap();
        }
        let (a, b) = (gan.sample(64, 9).unwrap(), again.sample(64, 9).unwrap());
        assert_eq!(a.to_vec2::<f32>().unwrap(), b.to_vec2::<f32>().unwrap());
    }
}

//! The course's own code in the reader's browser: `scripts/build-web.sh` compiles this crate to
//! WebAssembly (`wasm32-unknown-unknown`) and wasm-bindgen writes the JavaScript that loads it
//! into `book/src/web/`, where the book's pages use it (`book/src/web/widgets.js`).
//!
//! Nothing here is a copy: [`LogoGenerator`] runs chapter 4's `Generator` with the weights of a
//! trained laptop run (packed by `logogan::train::pack`), and [`Game2d`] plays chapter 1's
//! `Gan2d`, step by step. This file only translates between them and JavaScript's numbers and
//! byte arrays.

use candle_core::Device;
use logogan::gan2d::{modes_covered, ring_of_gaussians, Gan2d, Gan2dConfig};
use logogan::model::latent_noise;
use logogan::train::generate::slerp;
use logogan::train::pack::{PackedGenerator, MAX_IMAGES_PER_CALL};
use wasm_bindgen::prelude::*;

/// A library error as a JavaScript `Error` with the library's message.
fn js(error: impl std::fmt::Display) -> JsError {
    JsError::new(&error.to_string())
}

// ANCHOR: logo_generator
/// Chapter 5's trained generator, in the page.
#[wasm_bindgen]
pub struct LogoGenerator {
    packed: PackedGenerator,
}

#[wasm_bindgen]
impl LogoGenerator {
    /// The generator packed in `bytes` (the book's `web/generator.safetensors`).
    #[wasm_bindgen(constructor)]
    pub fn new(bytes: &[u8]) -> Result<LogoGenerator, JsError> {
        console_error_panic_hook::set_once(); // a panic's message in the console, not "unreachable"
        let packed = PackedGenerator::unpack(bytes, "generator.safetensors", &Device::Cpu);
        Ok(Self {
            packed: packed.map_err(js)?,
        })
    }

    // ANCHOR_END: logo_generator
    #[wasm_bindgen(getter, js_name = latentDim)]
    pub fn latent_dim(&self) -> usize {
        self.packed.config().latent_dim
    }

    #[wasm_bindgen(getter, js_name = imageSize)]
    pub fn image_size(&self) -> usize {
        self.packed.config().image_size
    }

    /// `n` latent vectors drawn from `seed`, end to end: the ones `chapter-05 generate --seed`
    /// draws natively (`logogan::model::latent_noise`, stream 0).
    pub fn noise(&self, n: usize, seed: u32) -> Result<Vec<f32>, JsError> {
        if !(1..=MAX_IMAGES_PER_CALL).contains(&n) {
            return Err(JsError::new(&format!(
                "noise: {n} vectors asked for, 1 to {MAX_IMAGES_PER_CALL} allowed"
            )));
        }
        let z = latent_noise(seed as u64, 0, n, self.latent_dim(), &Device::Cpu).map_err(js)?;
        z.flatten_all().and_then(|z| z.to_vec1()).map_err(js)
    }

    /// How many latent directions the packed file carries (see `logogan::train::pack`).
    #[wasm_bindgen(getter, js_name = directionCount)]
    pub fn direction_count(&self) -> usize {
        self.packed.directions.len()
    }

    /// Latent direction `i`: a unit vector of `latentDim` numbers.
    pub fn direction(&self, i: usize) -> Result<Vec<f32>, JsError> {
        self.packed
            .directions
            .get(i)
            .cloned()
            .ok_or_else(|| JsError::new(&format!("no direction {i}")))
    }

    /// The images `(n, 3, S, S)` in [-1, 1] for `n` latent vectors laid end to end, as G
    /// computes them: what the page's test compares with the native generator's.
    pub fn sample(&self, latents: &[f32]) -> Result<Vec<f32>, JsError> {
        let images = self.packed.sample(latents, None).map_err(js)?;
        images.flatten_all().and_then(|t| t.to_vec1()).map_err(js)
    }

    /// The same images as a canvas's pixels: `n` blocks of `S × S × 4` bytes (RGBA, row by row),
    /// scaled from [-1, 1] to 0–255 and rounded, as `logogan::viz::tensor_to_images` does.
    pub fn render(&self, latents: &[f32]) -> Result<Vec<u8>, JsError> {
        let values = self.sample(latents)?;
        let s = self.image_size();
        let plane = s * s;
        let mut rgba = Vec::with_capacity(values.len() / 3 * 4);
        for image in values.chunks_exact(3 * plane) {
            for pixel in 0..plane {
                for channel in 0..3 {
                    let v = image[channel * plane + pixel];
                    rgba.push(((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8);
                }
                rgba.push(255);
            }
        }
        Ok(rgba)
    }
}

/// Spherical interpolation between two latent vectors, `t` in [0, 1] (the course's `slerp`).
#[wasm_bindgen(js_name = slerp)]
pub fn slerp_latents(a: &[f32], b: &[f32], t: f32) -> Result<Vec<f32>, JsError> {
    if a.len() != b.len() || !(0.0..=1.0).contains(&t) {
        return Err(JsError::new(&format!(
            "slerp: vectors of {} and {} numbers at t = {t}: equal lengths and t in [0, 1]",
            a.len(),
            b.len()
        )));
    }
    Ok(slerp(a, b, t))
}

/// Chapter 1's game on points in the plane, played a few steps at a time by the page.
#[wasm_bindgen]
pub struct Game2d {
    gan: Gan2d,
}

#[wasm_bindgen]
impl Game2d {
    /// A new game: both players freshly drawn from `seed`, Adam at rate `lr` (chapter 1's
    /// default is 0.005; 0.05 collapses).
    #[wasm_bindgen(constructor)]
    pub fn new(lr: f64, seed: u32) -> Result<Game2d, JsError> {
        console_error_panic_hook::set_once();
        let config = Gan2dConfig {
            lr,
            seed: seed as u64,
            ..Gan2dConfig::default()
        };
        Ok(Self {
            gan: Gan2d::new(&config).map_err(js)?,
        })
    }

    // ANCHOR: game_play
    /// Play `steps` rounds (D's update, then G's); returns the last round's [D loss, G loss].
    pub fn play(&mut self, steps: usize) -> Result<Vec<f32>, JsError> {
        let mut last = vec![f32::NAN, f32::NAN];
        for _ in 0..steps.min(1000) {
            let losses = self.gan.train_step().map_err(js)?;
            last = vec![losses.d_loss, losses.g_loss];
        }
        Ok(last)
    }
    // ANCHOR_END: game_play

    /// Rounds played so far.
    #[wasm_bindgen(getter)]
    pub fn step(&self) -> usize {
        self.gan.step
    }

    #[wasm_bindgen(js_name = setLearningRate)]
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<(), JsError> {
        self.gan.set_learning_rate(lr).map_err(js)
    }

    /// The ring's radius, for the page's axes.
    #[wasm_bindgen(getter)]
    pub fn radius(&self) -> f64 {
        self.gan.config.radius
    }

    /// `n` real points from `seed`, as x, y pairs.
    pub fn real(&self, n: usize, seed: u32) -> Result<Vec<f32>, JsError> {
        let points = ring_of_gaussians(&self.gan.config, n.min(10_000), seed as u64).map_err(js)?;
        points.flatten_all().and_then(|p| p.to_vec1()).map_err(js)
    }

    /// `n` of G's points from the fixed noise of `seed`, as x, y pairs.
    pub fn fake(&self, n: usize, seed: u32) -> Result<Vec<f32>, JsError> {
        let points = self.gan.sample(n.min(10_000), seed as u64).map_err(js)?;
        points.flatten_all().and_then(|p| p.to_vec1()).map_err(js)
    }

    /// D's probability of "real" on a `resolution²` grid over ±`extent` (rows from the top).
    #[wasm_bindgen(js_name = decisionSurface)]
    pub fn decision_surface(&self, resolution: usize, extent: f64) -> Result<Vec<f32>, JsError> {
        self.gan.decision_surface(resolution, extent).map_err(js)
    }

    /// How many of the ring's blobs 1 000 of G's points cover (chapter 1's count of modes).
    #[wasm_bindgen(js_name = blobsCovered)]
    pub fn blobs_covered(&self) -> Result<usize, JsError> {
        let points = self.gan.sample(1000, 2).map_err(js)?;
        let (covered, _) = modes_covered(&self.gan.config, &points, 0.04).map_err(js)?;
        Ok(covered)
    }

    /// Blobs on the ring.
    #[wasm_bindgen(getter)]
    pub fn blobs(&self) -> usize {
        self.gan.config.modes
    }
}

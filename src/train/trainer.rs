//! Chapter 5: the training loop.
//!
//! One step, with a batch of B real images x and B noise vectors z:
//!
//! 1. **Discriminator.** `fake = G(z)`; D sees the real batch and the fake batch separately
//!    (so each gets its own batch-norm statistics) and learns to call the first real and the
//!    second fake: `L_D = BCE(D(x), 1) + BCE(D(fake), 0)`. The fakes are detached: this step
//!    must not change G.
//! 2. **Generator.** D, just updated, looks at the same fakes; G learns to make D say "real":
//!    `L_G = BCE(D(G(z)), 1)`. This "non-saturating" loss gives G strong gradients exactly when D
//!    is winning, unlike the minimax `−BCE(D(G(z)), 0)` of the original GAN paper.
//!
//! Every number of a step is kept on the device and read back in batches (`log_every`), since a
//! read makes the CPU wait for the GPU. Noise and image order come from the seed and the step,
//! so a run resumed from a checkpoint continues exactly as if it had never stopped.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{Device, Tensor};
use image::RgbImage;

use super::ada::{AdaState, AdaptiveAugment};
use super::checkpoint::{self, CheckpointInfo};
use super::config::TrainConfig;
use super::diff_augment::AugmentDraw;
use super::loss_log::{AugmentLog, MetricsLog, StepMetrics};
use super::run::{current_commit, has_checkpoint, now_rfc3339, RunDir, RunLock, RunRecord};
use super::step::{DiscriminatorInput, GanStep, StepStats};
use crate::data::dataset::ImageDataset;
use crate::error::{Error, Result};
use crate::fsutil::save_png;
use crate::metrics::families::{load_families, save_families};
use crate::model::latent_noise;
use crate::viz::{image_grid, tensor_to_images};

/// The families of a grid of `n` samples for a model of `classes` families: row r (of the
/// square grid's ⌈√n⌉ columns) is family r mod `classes`. `None` for the unconditional GAN.
pub fn grid_families(classes: usize, n: usize, device: &Device) -> Result<Option<Tensor>> {
    if classes == 0 {
        return Ok(None);
    }
    let columns = (n as f64).sqrt().ceil().max(1.0) as usize;
    let families: Vec<u32> = (0..n).map(|i| ((i / columns) % classes) as u32).collect();
    Ok(Some(Tensor::new(families, device)?))
}

const NOISE_SALT: u64 = 0x6e6f_6973_6521; // "noise!"
const FIXED_NOISE_SALT: u64 = 0x6669_7865_6421; // "fixed!"
const SUBSET_SALT: u64 = 0x7375_6273_6574; // "subset"
const INSTANCE_NOISE_SALT: u64 = 0x696e_7374_6e7a; // "instnz"
const AUGMENT_SALT: u64 = 0x6469_6666_6175; // "diffau"
const ADA_SALT: u64 = 0x6164_6170_7421; // "adapt!"
const FLIP_SALT: u64 = 0x666c_6970_7321; // "flips!"

/// What the training loop reports as it goes.
#[derive(Debug)]
pub enum TrainEvent<'a> {
    /// Before the first step of this session.
    Started {
        first_step: u64,
        total_steps: u64,
        steps_per_epoch: u64,
        images: usize,
    },
    /// Measured speed and the time the rest will take: after the first few steps, and again
    /// over the session's first whole epoch (its grid, checkpoints and logging included), which
    /// the warm-up of the first steps does not bias.
    Estimate {
        seconds_per_step: f64,
        remaining_seconds: f64,
        /// Steps the speed was measured over: 3 for the first estimate, an epoch's for the second.
        measured_steps: u64,
    },
    /// One step done (the numbers arrive later, in `Logged`).
    Step {
        step: u64,
        epoch: u64,
        images_per_second: f64,
    },
    /// A batch of step metrics read back from the device.
    Logged(&'a [StepMetrics]),
    /// An epoch finished; its mean metrics and the fixed-noise grid.
    EpochEnd {
        epoch: u64,
        mean: Option<StepMetrics>,
        images_per_second: f64,
        seconds: f64,
        grid: &'a RgbImage,
        grid_path: PathBuf,
        /// Adaptive augmentation's probability p at the epoch's end, in a run that adapts it.
        augment_p: Option<f64>,
    },
    Checkpoint {
        step: u64,
        path: PathBuf,
    },
}

/// The state of a run: networks, optimisers, data, position.
pub struct Trainer {
    pub config: TrainConfig,
    /// The networks and optimisers.
    pub core: GanStep,
    pub run: RunDir,
    dataset: ImageDataset,
    fixed_noise: Tensor,
    /// A conditional run's families of the fixed noise: grid row r shows family r mod K.
    fixed_families: Option<Tensor>,
    step: u64,
    metrics: MetricsLog,
    /// Adaptive augmentation and its log, in a run that adapts the augmentation's strength.
    ada: Option<(AdaptiveAugment, AugmentLog)>,
    pending: Vec<(u64, u64, StepStats)>,
    epoch_rows: Vec<StepMetrics>,
    order: Option<(u64, Vec<u32>)>,
    last_checkpoint: Option<u64>,
    /// Seconds trained in earlier sessions, and when this session's `train` began.
    seconds_before: f64,
    session_started: Option<Instant>,
    /// This process's claim on the run folder, released when the trainer is dropped.
    _lock: RunLock,
}

impl Trainer {
    /// Start a new run in `run_dir` on the dataset's device. Refuses a folder that already
    /// holds a run with a checkpoint (resume it instead).
    pub fn create(
        config: TrainConfig,
        dataset: &ImageDataset,
        data_dir: PathBuf,
        run_dir: PathBuf,
    ) -> Result<Self> {
        config.validate()?;
        let run = RunDir::new(run_dir);
        // Claimed before the check, so that of two runs started on one folder at the same
        // moment the second is refused here rather than writing beside the first.
        let lock = RunLock::acquire(&run)?;
        if has_checkpoint(&run.root) {
            return Err(Error::bad_input(
                &run.root,
                "already holds a run with a checkpoint: continue it with --resume, or choose another --name",
            ));
        }
        let dataset = Self::training_set(&config, dataset)?;
        Self::check_families(&config, &dataset)?;
        let record = RunRecord {
            config: config.clone(),
            data: data_dir,
            images: dataset.len(),
            device: crate::device::describe(dataset.device()),
            commit: current_commit(),
            started: now_rfc3339(),
            logogan_version: env!("CARGO_PKG_VERSION").into(),
        };
        record.save(&run)?;
        if let Some(families) = dataset.families().filter(|_| config.model.classes() > 0) {
            save_families(&run.families(), &dataset.names, families)?;
        }
        Self::assemble(config, dataset, run, lock, 0, None, None)
    }

    /// A conditional model needs every training image's family, each one it has.
    fn check_families(config: &TrainConfig, dataset: &ImageDataset) -> Result<()> {
        let classes = config.model.classes();
        if classes == 0 {
            return Ok(());
        }
        let families = dataset.families().ok_or_else(|| {
            Error::config(
                "model.generator.classes",
                format!(
                    "the model is conditioned on {classes} logo families but the images have none: \
                     cluster them first (`chapter-07 families`)"
                ),
            )
        })?;
        match families.iter().find(|&&f| f as usize >= classes) {
            Some(family) => Err(Error::config(
                "model.generator.classes",
                format!(
                    "an image is of family {family}, but the model has {classes} (0 to {})",
                    classes - 1
                ),
            )),
            None => Ok(()),
        }
    }

    /// Continue the run in `run_dir` from its latest checkpoint. `epochs` may raise the total.
    pub fn resume(run_dir: PathBuf, dataset: &ImageDataset, epochs: Option<usize>) -> Result<Self> {
        let run = RunDir::new(run_dir);
        let mut record = RunRecord::load(&run)?;
        let lock = RunLock::acquire(&run)?;
        let raised = epochs.is_some_and(|e| e != record.config.epochs);
        if let Some(e) = epochs {
            record.config.epochs = e;
        }
        record.config.validate()?;
        let config = record.config.clone();
        let mut dataset = Self::training_set(&config, dataset)?;
        if config.model.classes() > 0 {
            // The run's own copy: the data folder's families may have been clustered again.
            let (families, _) = load_families(&run.families(), &dataset.names)?;
            dataset = dataset.with_families(families)?;
            Self::check_families(&config, &dataset)?;
        }
        if dataset.len() != record.images {
            return Err(Error::bad_input(
                run.config(),
                format!(
                    "the run trained on {} images, the data folder now gives {}: an exact resume needs the same data \
                     (rebuild it with the same chapter-03 settings)",
                    record.images,
                    dataset.len()
                ),
            ));
        }
        let checkpoint = checkpoint::load(&run.checkpoints(), dataset.device())?;
        let step = checkpoint.info.step;
        let ada_state =
            match (config.ada_target, checkpoint.info.augment) {
                (None, _) => None,
                (Some(_), Some(state)) => Some(state),
                (Some(_), None) => return Err(checkpoint.damaged(
                    "the run adapts its augmentation (ada_target) but the checkpoint index keeps \
                     no `augment` state"
                        .to_string(),
                )),
            };
        let mut trainer = Self::assemble(config, dataset, run, lock, step, Some(step), ada_state)?;
        trainer.seconds_before = checkpoint.info.training_seconds;
        checkpoint.restore(&trainer.core.gan.generator_vars, "g")?;
        checkpoint.restore(&trainer.core.gan.discriminator_vars, "d")?;
        if let Some(ema) = &trainer.core.ema {
            checkpoint.restore(&ema.vars, "g_ema")?;
        }
        for (prefix, optimizer, steps) in [
            (
                "opt_g",
                &mut trainer.core.opt_g,
                checkpoint.info.generator_optimizer_steps,
            ),
            (
                "opt_d",
                &mut trainer.core.opt_d,
                checkpoint.info.discriminator_optimizer_steps,
            ),
        ] {
            optimizer
                .load_state(&checkpoint.optimizer_state(prefix), steps)
                .map_err(|e| checkpoint.damaged(format!("{prefix}: {e}")))?;
        }
        if raised {
            // config.json says what the run trains for, so a later --resume or sweep sees it.
            record.save(&trainer.run)?;
        }
        Ok(trainer)
    }

    /// The exact images the run in `run_dir` trained on, read again from the data folder its
    /// `config.json` names (e.g. to train another framework on the same data). Refused if that
    /// folder no longer gives the same number of images.
    pub fn training_set_of_run(run_dir: &Path, device: &Device) -> Result<ImageDataset> {
        let run = RunDir::new(run_dir);
        let record = RunRecord::load(&run)?;
        let all = ImageDataset::load(
            record.data_folder(&run)?,
            record.config.image_size(),
            device,
        )?;
        let images = Self::training_set(&record.config, &all)?;
        if images.len() != record.images {
            return Err(Error::bad_input(
                run.config(),
                format!(
                    "the run trained on {} images, {} now gives {}: rebuild the data with the run's chapter-03 settings",
                    record.images,
                    record.data.display(),
                    images.len()
                ),
            ));
        }
        Ok(images)
    }

    /// The images a run with `config` trains on, taken from `dataset` (all of them, or the seeded
    /// subset of `max_images`), checked against the model's image size and the batch size.
    pub fn training_set(config: &TrainConfig, dataset: &ImageDataset) -> Result<ImageDataset> {
        if dataset.image_size != config.image_size() {
            return Err(Error::config(
                "image_size",
                format!(
                    "the model makes {0}×{0} images but the data is {1}×{1}",
                    config.image_size(),
                    dataset.image_size
                ),
            ));
        }
        let data = match config.max_images {
            Some(n) if n < dataset.len() => {
                let mut order = dataset.epoch_order(config.seed ^ SUBSET_SALT, 0);
                order.truncate(n);
                order.sort();
                dataset.subset(&order)?
            }
            _ => dataset.clone(),
        };
        if data.len() < config.batch_size {
            return Err(Error::config(
                "batch_size",
                format!(
                    "{} is more than the {} training images",
                    config.batch_size,
                    data.len()
                ),
            ));
        }
        Ok(data)
    }

    fn assemble(
        config: TrainConfig,
        dataset: ImageDataset,
        run: RunDir,
        lock: RunLock,
        step: u64,
        last_checkpoint: Option<u64>,
        ada_state: Option<AdaState>,
    ) -> Result<Self> {
        let device = dataset.device().clone();
        let core = GanStep::new(&config, &device)?;
        let fixed_noise = latent_noise(
            config.seed ^ FIXED_NOISE_SALT,
            0,
            config.grid_samples,
            config.model.generator.latent_dim,
            &device,
        )?;
        let fixed_families = grid_families(config.model.classes(), config.grid_samples, &device)?;
        let metrics = MetricsLog::open(&run.metrics(), step)?;
        let ada = match config.ada_target {
            Some(target) => {
                let ada = match ada_state {
                    Some(state) => AdaptiveAugment::restore(target, state),
                    None => AdaptiveAugment::new(target),
                };
                Some((ada, AugmentLog::open(&run.augment(), step)?))
            }
            None => None,
        };
        Ok(Self {
            config,
            core,
            run,
            dataset,
            fixed_noise,
            fixed_families,
            step,
            metrics,
            ada,
            pending: Vec::new(),
            epoch_rows: Vec::new(),
            order: None,
            last_checkpoint,
            seconds_before: 0.0,
            session_started: None,
            _lock: lock,
        })
    }

    /// Wall-clock seconds of training so far, over every session of the run.
    pub fn training_seconds(&self) -> f64 {
        self.seconds_before
            + self
                .session_started
                .map_or(0.0, |t| t.elapsed().as_secs_f64())
    }

    /// Steps done so far.
    pub fn step(&self) -> u64 {
        self.step
    }

    pub fn device(&self) -> &Device {
        self.dataset.device()
    }

    /// Training images used by this run.
    pub fn images(&self) -> usize {
        self.dataset.len()
    }

    pub fn steps_per_epoch(&self) -> u64 {
        self.dataset.batches_per_epoch(self.config.batch_size, true) as u64
    }

    pub fn total_steps(&self) -> u64 {
        self.steps_per_epoch() * self.config.epochs as u64
    }

    /// The 1-based epoch that step `step` (1-based) belongs to.
    fn epoch_of(&self, step: u64) -> u64 {
        (step - 1) / self.steps_per_epoch() + 1
    }

    /// The real images of the next step, with their families in a conditional run.
    fn next_batch(&mut self) -> Result<(Tensor, Option<Tensor>)> {
        let spe = self.steps_per_epoch();
        let epoch = self.step / spe; // 0-based epoch of the next step
        let index = (self.step % spe) as usize;
        if self.order.as_ref().map(|(e, _)| *e) != Some(epoch) {
            self.order = Some((epoch, self.dataset.epoch_order(self.config.seed, epoch)));
        }
        let order = &self.order.as_ref().expect("set above").1;
        let b = self.config.batch_size;
        let rows = &order[index * b..(index + 1) * b];
        let families = match self.config.model.classes() {
            0 => None,
            _ => self.dataset.families_of(rows)?,
        };
        Ok((self.dataset.get(rows)?, families))
    }

    /// One training step on the next batch: one discriminator update and one generator update
    /// (see [`GanStep::step_with`]). Returns what the step measured, still on the device.
    pub fn train_step(&mut self) -> Result<StepStats> {
        let (real, families) = self.next_batch()?; // (B, 3, S, S) in [-1, 1]; (B,)
        let b = self.config.batch_size;
        let latent = self.config.model.generator.latent_dim;
        let z = latent_noise(
            self.config.seed ^ NOISE_SALT,
            self.step + 1,
            b,
            latent,
            self.device(),
        )?; // (B, nz, 1, 1)
        let s = self.config.image_size();
        // Instance noise: two (B, 3, S, S) draws of N(0, σ²), one for the real and one for the
        // generated batch, from the seed and the step (so a resumed run draws the same).
        let sigma = self.instance_noise_sigma();
        let noise = if sigma > 0.0 {
            let draw = |which: u64| -> Result<Tensor> {
                let n = latent_noise(
                    self.config.seed ^ INSTANCE_NOISE_SALT,
                    2 * self.step + which,
                    b,
                    3 * s * s,
                    self.device(),
                )?;
                Ok((n.reshape((b, 3, s, s))? * sigma)?)
            };
            Some((draw(0)?, draw(1)?))
        } else {
            None
        };
        // DiffAugment: fresh settings for each of D's three looks; with adaptive strength, each
        // transform of each image kept with the current probability p; mirrors and quarter turns
        // on top if asked for, with the same p.
        let strength = self.ada.as_ref().map(|(ada, _)| ada.probability());
        let augment = self.config.diff_augment.then(|| {
            [0, 1, 2].map(|k| {
                let stream = 3 * self.step + k;
                let seed = self.config.seed;
                let draw = AugmentDraw::new(seed ^ AUGMENT_SALT, stream, b, s);
                let draw = match strength {
                    Some(p) => draw.keep_with_probability(p, seed ^ ADA_SALT, stream),
                    None => draw,
                };
                if self.config.flip_and_turn {
                    draw.flip_and_turn(strength.unwrap_or(1.0), seed ^ FLIP_SALT, stream)
                } else {
                    draw
                }
            })
        });
        let view = |x: &Tensor, look: DiscriminatorInput| -> Result<Tensor> {
            let x = match &augment {
                Some(draws) => draws[look.index() as usize].apply_fused(x)?,
                None => x.clone(),
            };
            Ok(match (&noise, look) {
                (Some((n_real, _)), DiscriminatorInput::Real) => (x + n_real)?,
                (Some((_, n_fake)), _) => (x + n_fake)?,
                (None, _) => x,
            })
        };
        let stats = self.core.step_given(&real, families.as_ref(), &z, &view)?;
        self.step += 1;
        if let Some((ada, log)) = &mut self.ada {
            if let Some(moved) = ada.observe(&stats.d_real_sign, b, self.step)? {
                log.append(&[moved])?;
            }
        }
        Ok(stats)
    }

    /// The instance noise of the next step: the configured σ, annealed linearly to 0 at the end.
    pub fn instance_noise_sigma(&self) -> f64 {
        let left = 1.0 - self.step as f64 / self.total_steps().max(1) as f64;
        self.config.instance_noise * left.max(0.0)
    }

    /// Generate images from `z` with the running batch-norm statistics (inference mode), from
    /// the averaged generator when the run keeps one.
    pub fn generate(&self, z: &Tensor) -> Result<Tensor> {
        self.generate_given(z, None)
    }

    /// [`Self::generate`] of the families `families` `(B,)` for a conditional run.
    pub fn generate_given(&self, z: &Tensor, families: Option<&Tensor>) -> Result<Tensor> {
        let generator = match &self.core.ema {
            Some(ema) => &ema.generator,
            None => &self.core.gan.generator,
        };
        Ok(generator.forward_t(&generator.input(z, families)?, false)?)
    }

    /// The grid of the fixed noise samples (in a conditional run, row r of family r mod K).
    pub fn sample_grid(&self) -> Result<RgbImage> {
        let images = tensor_to_images(
            &self.generate_given(&self.fixed_noise, self.fixed_families.as_ref())?,
        )?;
        let columns = (images.len() as f64).sqrt().ceil() as usize;
        Ok(image_grid(&images, columns, 2))
    }

    /// Read the pending step numbers back, check them, append them to metrics.csv.
    fn flush_metrics(&mut self, on_event: &mut dyn FnMut(TrainEvent)) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let pending = std::mem::take(&mut self.pending);
        let rows = StepStats::read(&pending)?;
        if let Some(bad) = rows.iter().find(|r| !r.is_finite()) {
            self.metrics.append(&rows)?; // keep the evidence
            return Err(Error::Diverged {
                step: bad.step,
                what: format!("D loss {}, G loss {}", bad.d_loss, bad.g_loss),
                last_checkpoint: self.last_checkpoint,
            });
        }
        self.metrics.append(&rows)?;
        self.epoch_rows.extend_from_slice(&rows);
        on_event(TrainEvent::Logged(&rows));
        Ok(())
    }

    /// Save a checkpoint of the current step (after checking that every weight is finite).
    pub fn save_checkpoint(&mut self, on_event: &mut dyn FnMut(TrainEvent)) -> Result<PathBuf> {
        self.flush_metrics(on_event)?;
        for (name, vars) in [
            ("generator", &self.core.gan.generator_vars),
            ("discriminator", &self.core.gan.discriminator_vars),
        ] {
            if !checkpoint::all_finite(vars)? {
                return Err(Error::Diverged {
                    step: self.step,
                    what: format!("the {name}'s weights are no longer finite"),
                    last_checkpoint: self.last_checkpoint,
                });
            }
        }
        let tensors = checkpoint::collect(
            &self.core.gan.generator_vars,
            &self.core.gan.discriminator_vars,
            self.core.opt_g.state(),
            self.core.opt_d.state(),
            self.core.ema.as_ref().map(|e| &e.vars),
        );
        let info = CheckpointInfo {
            step: self.step,
            file: String::new(),
            sha256: String::new(),
            generator_optimizer_steps: self.core.opt_g.step_count(),
            discriminator_optimizer_steps: self.core.opt_d.step_count(),
            training_seconds: self.training_seconds(),
            augment: match &mut self.ada {
                Some((ada, _)) => Some(ada.state()?),
                None => None,
            },
        };
        let path = checkpoint::save(&self.run.checkpoints(), &tensors, info)?;
        self.last_checkpoint = Some(self.step);
        on_event(TrainEvent::Checkpoint {
            step: self.step,
            path: path.clone(),
        });
        Ok(path)
    }

    /// Train until `stop_at` steps are done (default: all epochs), reporting through `on_event`.
    /// Checkpoints every `checkpoint_every` steps and at the end; a grid at every epoch's end.
    pub fn train(
        &mut self,
        stop_at: Option<u64>,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<()> {
        let total = self.total_steps();
        let stop_at = stop_at.unwrap_or(total).min(total);
        let spe = self.steps_per_epoch();
        on_event(TrainEvent::Started {
            first_step: self.step + 1,
            total_steps: total,
            steps_per_epoch: spe,
            images: self.dataset.len(),
        });
        let batch = self.config.batch_size as f64;
        self.session_started = Some(Instant::now());
        let result = self.train_session(stop_at, spe, batch, on_event);
        self.seconds_before = self.training_seconds();
        self.session_started = None;
        result
    }

    fn train_session(
        &mut self,
        stop_at: u64,
        spe: u64,
        batch: f64,
        on_event: &mut dyn FnMut(TrainEvent),
    ) -> Result<()> {
        let mut epoch_start = Instant::now();
        let mut epoch_steps = 0u64;
        let mut estimate_from: Option<(Instant, u64)> = None;
        // The end of the session's first epoch: the whole epoch after it is timed.
        let mut epoch_mark: Option<(Instant, u64)> = None;
        while self.step < stop_at {
            let stats = self.train_step()?;
            let (step, epoch) = (self.step, self.epoch_of(self.step));
            self.pending.push((step, epoch, stats));
            epoch_steps += 1;
            let elapsed = epoch_start.elapsed().as_secs_f64();
            on_event(TrainEvent::Step {
                step,
                epoch,
                images_per_second: epoch_steps as f64 * batch / elapsed.max(1e-9),
            });

            // Speed from steps 2–4 of this session (step 1 pays for warm-up allocations).
            match estimate_from {
                None => estimate_from = Some((Instant::now(), step)),
                Some((t, s)) if step == s + 3 => {
                    let per_step = t.elapsed().as_secs_f64() / 3.0;
                    on_event(TrainEvent::Estimate {
                        seconds_per_step: per_step,
                        remaining_seconds: per_step * (stop_at - step) as f64,
                        measured_steps: 3,
                    });
                }
                _ => {}
            }

            if self.pending.len() as u64 >= self.config.log_every {
                self.flush_metrics(on_event)?;
            }
            if step % self.config.checkpoint_every == 0 && step != stop_at {
                self.save_checkpoint(on_event)?;
            }
            if step % spe == 0 {
                self.flush_metrics(on_event)?;
                let grid = self.sample_grid()?;
                let grid_path = self.run.sample(epoch);
                save_png(&grid_path, &grid)?;
                let seconds = epoch_start.elapsed().as_secs_f64();
                let mean = super::loss_log::mean(&self.epoch_rows);
                on_event(TrainEvent::EpochEnd {
                    epoch,
                    mean,
                    images_per_second: epoch_steps as f64 * batch / seconds.max(1e-9),
                    seconds,
                    grid: &grid,
                    grid_path,
                    augment_p: self.ada.as_ref().map(|(ada, _)| ada.probability()),
                });
                self.epoch_rows.clear();
                epoch_start = Instant::now();
                epoch_steps = 0;
                match epoch_mark {
                    None => epoch_mark = Some((Instant::now(), step)),
                    Some((t, s)) if s + spe == step && step < stop_at => {
                        let per_step = t.elapsed().as_secs_f64() / spe as f64;
                        on_event(TrainEvent::Estimate {
                            seconds_per_step: per_step,
                            remaining_seconds: per_step * (stop_at - step) as f64,
                            measured_steps: spe,
                        });
                    }
                    _ => {}
                }
            }
        }
        if self.last_checkpoint != Some(self.step) {
            self.save_checkpoint(on_event)?;
        }
        Ok(())
    }
}

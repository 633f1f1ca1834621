//! A training session as chapter 5's binary runs it: start a run from options (or resume one),
//! train it with a progress bar and a line per epoch, then draw its charts.

use std::path::Path;

use candle_core::Device;

use super::charts::{draw_charts, ChartFiles};
use super::config::TrainOptions;
use super::run::default_run_name;
use super::{RunRecord, TrainEvent, Trainer};
use crate::data::dataset::ImageDataset;
use crate::data::pipeline::ensure_dataset;
use crate::device::describe;
use crate::error::{Error, Result};
use crate::metrics::families::with_families;
use crate::paths::{display_path, DataLayout};

/// Where a session's runs and data are, and what it runs on.
pub struct Session<'a> {
    pub device: &'a Device,
    pub layout: &'a DataLayout,
    pub runs: &'a Path,
}

impl Session<'_> {
    /// A new run under `runs/<name>` with the settings `options` describe on this device (the
    /// dataset of its size built if missing). Says what it chose.
    pub fn start(&self, options: &TrainOptions) -> Result<Trainer> {
        if options.preset.is_none() && self.device.is_cpu() {
            println!(
                "no GPU: training the `laptop` preset (32×32, 15 to 30 minutes on two cores); \
                 `--preset default` trains the 64×64 model (hours on a CPU)"
            );
        }
        let config = options.config_on(self.device);
        config.validate()?;
        let architecture = format!("{:?}", config.model.architecture()).to_lowercase();
        let name = match &options.name {
            Some(name) => checked_run_name(name)?.to_string(),
            None => default_run_name(&config, &architecture),
        };
        let size = config.image_size();
        let train_dir = ensure_dataset(self.layout, size as u32, true)?;
        let data = ImageDataset::load(&train_dir, size, self.device)?;
        let data = match config.model.classes() {
            0 => data,
            k => with_families(self.layout, k, data, self.device)?,
        };
        let run = self.runs.join(&name);
        let families = match config.model.classes() {
            0 => String::new(),
            k => format!(" in {k} families"),
        };
        println!(
            "run {} on {} with {} images of {size}×{size}{families}",
            display_path(&run),
            describe(self.device),
            data.len()
        );
        Trainer::create(config, &data, train_dir, run)
    }

    /// The run in `run` from its latest checkpoint, with its saved settings: only `epochs` (if
    /// given) may raise the total. Other options are refused rather than silently ignored.
    pub fn resume(&self, run: &Path, options: &TrainOptions) -> Result<Trainer> {
        let only_epochs = TrainOptions {
            epochs: options.epochs,
            ..TrainOptions::default()
        };
        if *options != only_epochs {
            return Err(Error::bad_input(
                run,
                "--resume continues a run with the settings saved in its config.json (only \
                 --epochs can raise the total); to change a setting, start a new run",
            ));
        }
        let run_dir = super::RunDir::new(run);
        let record = RunRecord::load(&run_dir)?;
        let data = ImageDataset::load(
            record.data_folder(&run_dir)?,
            record.config.image_size(),
            self.device,
        )?;
        println!(
            "resuming {} on {}",
            display_path(run),
            describe(self.device)
        );
        Trainer::resume(run.to_path_buf(), &data, options.epochs)
    }
}

/// `name` if it is one plain folder name (letters, digits, `-`, `_`, `.`; not starting with `.`;
/// at most 100 characters), so that `runs/<name>` stays inside the runs folder.
pub fn checked_run_name(name: &str) -> Result<&str> {
    let plain = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if name.is_empty() || name.len() > 100 || name.starts_with('.') || !plain {
        return Err(Error::config(
            "name",
            format!(
                "{} is not a run name: use up to 100 letters, digits, '-', '_' or '.' (not \
                 first), no '/'; the run goes into a folder of that name under the runs folder",
                quoted_prefix(name, 40)
            ),
        ));
    }
    Ok(name)
}

/// `text` in backquotes, cut after `max` characters with its length said, so that a message
/// never echoes a megabyte of input.
pub fn quoted_prefix(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        None => format!("`{}`", text.escape_debug()),
        Some((end, _)) => format!(
            "`{}…` ({} characters)",
            &text[..end].escape_debug(),
            text.chars().count()
        ),
    }
}

/// Train `trainer` to its end (or `stop_after` steps in all) with a progress bar and one line
/// per epoch, then write its charts and GIF. A CPU run of the 64×64 preset that will take over
/// an hour is told about the laptop preset.
pub fn train_with_console(trainer: &mut Trainer, stop_after: Option<u64>) -> Result<ChartFiles> {
    let epochs = trainer.config.epochs;
    let slow_preset = trainer.config.image_size() >= 64;
    let on_cpu = trainer.device().is_cpu();
    let bar = indicatif::ProgressBar::new(0);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} steps, eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    let say = |line: String| bar.suspend(|| println!("{line}"));
    let result = crate::ops::on_worker_thread(|| {
        trainer.train(stop_after, &mut |event| match event {
        TrainEvent::Started { first_step, total_steps, steps_per_epoch, images } => {
            bar.set_length(total_steps);
            bar.set_position(first_step - 1);
            say(format!("{images} images, {steps_per_epoch} steps per epoch, {epochs} epochs"));
        }
        TrainEvent::Estimate { seconds_per_step, remaining_seconds, measured_steps } => {
            let eta = format_duration(remaining_seconds);
            let first = measured_steps <= 3;
            let over = if first { "measured".to_string() } else { format!("over a whole epoch ({measured_steps} steps):") };
            say(format!("{over} {seconds_per_step:.3} s/step → about {eta} for the rest of the run"));
            if first && on_cpu && slow_preset && remaining_seconds > 3600.0 {
                say("on a CPU this is long: `--preset laptop` makes 32×32 logos in 15 to 30 minutes".into());
                say("(Ctrl-C stops; `--resume <run>` continues from the last checkpoint)".into());
            }
        }
        TrainEvent::Step { step, epoch, images_per_second } => {
            bar.set_position(step);
            bar.set_message(format!("epoch {epoch}/{epochs} · {images_per_second:.0} img/s"));
        }
        TrainEvent::EpochEnd { epoch, mean: Some(m), images_per_second, seconds, grid_path, augment_p, .. } => {
            let (took, grid) = (format_duration(seconds), display_path(&grid_path));
            let strength = augment_p.map(|p| format!("  augment p {p:.3}")).unwrap_or_default();
            say(format!(
                "epoch {epoch:>3}/{epochs}: D loss {:.3}  G loss {:.3}  D(x) {:.3}  D(G(z)) {:.3}→{:.3}{strength}  {images_per_second:.0} img/s  {took}  → {grid}",
                m.d_loss, m.g_loss, m.d_real, m.d_fake, m.d_fake_after
            ));
        }
        _ => {}
    })
    });
    bar.finish_and_clear();
    result?;
    draw_charts(&trainer.run)
}

/// `seconds` as "42 s", "3 min 5 s" or "1 h 52 min".
pub fn format_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(42.4), "42 s");
        assert_eq!(format_duration(185.0), "3 min 5 s");
        assert_eq!(format_duration(6720.0), "1 h 52 min");
    }

    #[test]
    fn run_names_stay_inside_the_runs_folder() {
        for bad in [
            "../../x",
            "/tmp/x",
            "a/b",
            "..",
            ".hidden",
            "",
            "a b",
            &"x".repeat(101),
        ] {
            let err = checked_run_name(bad).unwrap_err().to_string();
            assert!(
                err.contains("`name`") && err.contains("not a run name"),
                "{bad}: {err}"
            );
        }
        for good in ["laptop", "laptop-nodiffaug_2", "run.1"] {
            assert_eq!(checked_run_name(good).unwrap(), good);
        }
        // The session refuses before it builds data or writes anything.
        let dir = tempfile::tempdir().unwrap();
        let session = Session {
            device: &Device::Cpu,
            layout: &DataLayout::new(dir.path().join("data")),
            runs: &dir.path().join("runs"),
        };
        let options = TrainOptions {
            name: Some("../escaped".into()),
            preset: Some(crate::train::Preset::Tiny),
            ..TrainOptions::default()
        };
        assert!(session.start(&options).is_err());
        assert!(!dir.path().join("escaped").exists() && !dir.path().join("data").exists());
    }

    #[test]
    fn resume_refuses_settings_it_would_ignore() {
        let dir = tempfile::tempdir().unwrap();
        let session = Session {
            device: &Device::Cpu,
            layout: &DataLayout::new(dir.path()),
            runs: dir.path(),
        };
        let options = TrainOptions {
            lr: Some(1e-4),
            ..TrainOptions::default()
        };
        let err = session
            .resume(dir.path(), &options)
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("--resume") && err.contains("new run"), "{err}");
    }
}

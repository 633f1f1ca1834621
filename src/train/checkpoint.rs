//! Checkpoints: everything needed to continue a run exactly where it stopped.
//!
//! `runs/<name>/checkpoints/` holds `step-000500.safetensors` files (both networks' weights and
//! batch-norm statistics, both optimisers' moments) and `latest.json`, which names the newest
//! complete one with its SHA-256 and step counts. Every file is written to a temporary name and
//! renamed; `latest.json` is written last, so a process killed at any moment leaves the previous
//! checkpoint usable. The one before the latest is kept as well.
//!
//! The random state needs no saving: the noise of step `s` and the image order of epoch `e` are
//! derived from the seed and `s` or `e` alone.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::{sha256_hex, write_atomic};

/// `latest.json`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CheckpointInfo {
    /// Training steps done.
    pub step: u64,
    /// File name of the tensors, in the same folder.
    pub file: String,
    pub sha256: String,
    pub generator_optimizer_steps: u64,
    pub discriminator_optimizer_steps: u64,
    /// Wall-clock seconds spent training up to this checkpoint, summed over every session of the
    /// run (loading data and building the networks excluded); 0 in checkpoints older than it.
    #[serde(default)]
    pub training_seconds: f64,
    /// Adaptive augmentation's state, in a run that adapts it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub augment: Option<super::ada::AdaState>,
}

pub const LATEST: &str = "latest.json";

/// Gather all named tensors of a checkpoint: `g.*`, `d.*`, `opt_g.*`, `opt_d.*`, and `g_ema.*`
/// when the run keeps an averaged generator.
pub fn collect(
    generator: &VarMap,
    discriminator: &VarMap,
    opt_g: HashMap<String, Tensor>,
    opt_d: HashMap<String, Tensor>,
    generator_ema: Option<&VarMap>,
) -> HashMap<String, Tensor> {
    let mut all = HashMap::new();
    let maps = [
        ("g", Some(generator)),
        ("d", Some(discriminator)),
        ("g_ema", generator_ema),
    ];
    for (prefix, map) in maps.into_iter().filter_map(|(p, m)| m.map(|m| (p, m))) {
        for (name, var) in map.data().lock().expect("poisoned").iter() {
            all.insert(format!("{prefix}.{name}"), var.as_tensor().clone());
        }
    }
    for (prefix, state) in [("opt_g", opt_g), ("opt_d", opt_d)] {
        for (name, t) in state {
            all.insert(format!("{prefix}.{name}"), t);
        }
    }
    all
}

/// Write the tensors and then `latest.json`, both atomically; prune older checkpoints but the
/// previous one.
pub fn save(
    dir: &Path,
    tensors: &HashMap<String, Tensor>,
    mut info: CheckpointInfo,
) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).at(dir)?;
    let file = file_name(info.step);
    let path = dir.join(&file);
    let temp = dir.join(format!(".tmp-{file}"));
    if let Err(e) = candle_core::safetensors::save(tensors, &temp) {
        let _ = std::fs::remove_file(&temp);
        return Err(Error::bad_input(
            &temp,
            format!(
                "could not write the checkpoint ({e}); is the disk full? The previous \
                 checkpoint and {LATEST} are untouched: free space and --resume"
            ),
        ));
    }
    let bytes = std::fs::read(&temp).at(&temp)?;
    std::fs::rename(&temp, &path).at(&path)?;
    let previous = load_info(dir).ok().map(|i| i.file);
    info.file = file.clone();
    info.sha256 = sha256_hex(&bytes);
    write_atomic(&dir.join(LATEST), &serde_json::to_vec_pretty(&info)?)?;
    for entry in std::fs::read_dir(dir).at(dir)?.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let keep = name == file || Some(&name) == previous.as_ref();
        if name.starts_with("step-") && name.ends_with(".safetensors") && !keep {
            std::fs::remove_file(entry.path()).at(entry.path())?;
        }
    }
    Ok(path)
}

/// Read `latest.json`, with a message that says what to do when it is missing or broken.
pub fn load_info(dir: &Path) -> Result<CheckpointInfo> {
    let path = dir.join(LATEST);
    let bytes = std::fs::read(&path).map_err(|e| {
        let reason = if e.kind() == std::io::ErrorKind::NotFound {
            format!(
                "no checkpoint in this run ({e}): a run that has saved none cannot be resumed, \
                 sampled or scored — train it with chapter-05 (a new run, without --resume), or \
                 name a run folder that has checkpoints/{LATEST}"
            )
        } else {
            format!("the checkpoint index cannot be read ({e})")
        };
        Error::bad_input(&path, reason)
    })?;
    let damaged = |why: String| {
        Error::bad_input(
            &path,
            format!(
                "damaged checkpoint index: {why}. The checkpoint files beside it are untouched: \
                 write the index again by hand from the newest step-*.safetensors, or start a \
                 new run"
            ),
        )
    };
    let text = String::from_utf8(bytes).map_err(|_| damaged("not UTF-8 text".into()))?;
    let info: CheckpointInfo = serde_json::from_str(&text).map_err(|e| damaged(e.to_string()))?;
    // The index is data: its counts must agree with each other and with the file it names
    // (every checkpoint this crate writes is `step-<step>.safetensors`).
    if info.file != file_name(info.step) {
        return Err(damaged(format!(
            "`step` is {} but `file` is `{}` (a checkpoint of step {} is `{}`)",
            info.step,
            info.file,
            info.step,
            file_name(info.step)
        )));
    }
    for (key, steps) in [
        ("generator_optimizer_steps", info.generator_optimizer_steps),
        (
            "discriminator_optimizer_steps",
            info.discriminator_optimizer_steps,
        ),
    ] {
        if steps > info.step {
            return Err(damaged(format!(
                "`{key}` is {steps}, more than the {} training steps done",
                info.step
            )));
        }
    }
    if !(info.training_seconds.is_finite() && info.training_seconds >= 0.0) {
        return Err(damaged(format!(
            "`training_seconds` is {}",
            info.training_seconds
        )));
    }
    if let Some(ada) = &info.augment {
        if let Err(why) = ada.check() {
            return Err(damaged(format!("`augment`: {why}")));
        }
    }
    Ok(info)
}

/// The checkpoint file of `step`.
fn file_name(step: u64) -> String {
    format!("step-{step:07}.safetensors")
}

/// A loaded checkpoint: its index, its tensors and the file they came from.
#[derive(Debug)]
pub struct Checkpoint {
    pub info: CheckpointInfo,
    pub tensors: HashMap<String, Tensor>,
    /// The `.safetensors` file, for messages.
    pub path: PathBuf,
}

/// Load the tensors `latest.json` names, after checking their SHA-256.
pub fn load(dir: &Path, device: &Device) -> Result<Checkpoint> {
    let info = load_info(dir)?;
    // `load_info` has checked that the index names a `step-N.safetensors` file beside it.
    let path = dir.join(&info.file);
    if let Ok(meta) = std::fs::metadata(&path) {
        if !meta.is_file() {
            return Err(Error::bad_input(
                &path,
                "is not a regular file: start a new run",
            ));
        }
    }
    let bytes = std::fs::read(&path).map_err(|e| {
        Error::bad_input(
            &path,
            format!("checkpoint file named by {LATEST} is missing: {e}"),
        )
    })?;
    let actual = sha256_hex(&bytes);
    if actual != info.sha256 {
        return Err(Error::bad_input(
            &path,
            format!(
                "checkpoint is incomplete or damaged (sha256 {actual}, {LATEST} expects {}); it was not replaced — \
                 restore it from a backup or start a new run",
                info.sha256
            ),
        ));
    }
    let tensors = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
        Error::bad_input(&path, format!("not a readable safetensors checkpoint: {e}"))
    })?;
    Ok(Checkpoint {
        info,
        tensors,
        path,
    })
}

impl Checkpoint {
    /// Copy the tensors under `prefix.` into the variables of `map`. Every variable must be
    /// present with the same shape and hold only finite numbers (a run stops before it saves
    /// NaN, so a checkpoint that holds one was damaged).
    pub fn restore(&self, map: &VarMap, prefix: &str) -> Result<()> {
        for (name, var) in map.data().lock().expect("poisoned").iter() {
            let key = format!("{prefix}.{name}");
            let saved = self.tensors.get(&key).ok_or_else(|| {
                self.damaged(format!(
                    "tensor `{key}` is missing: was it saved by another model?"
                ))
            })?;
            if saved.dims() != var.dims() {
                return Err(self.damaged(format!(
                    "tensor `{key}` has shape {:?}, the model of config.json expects {:?}",
                    saved.dims(),
                    var.dims()
                )));
            }
            if saved.dtype() != var.dtype() {
                return Err(self.damaged(format!(
                    "tensor `{key}` is {:?}, the model expects {:?}",
                    saved.dtype(),
                    var.dtype()
                )));
            }
            if !is_finite(saved)? {
                return Err(self.damaged(format!("tensor `{key}` holds NaN or infinite values")));
            }
            var.set(&saved.to_device(var.device())?)?;
        }
        Ok(())
    }

    /// The optimiser state stored under `prefix.` (`opt_g` or `opt_d`).
    pub fn optimizer_state(&self, prefix: &str) -> HashMap<String, Tensor> {
        let p = format!("{prefix}.");
        self.tensors
            .iter()
            .filter_map(|(k, v)| k.strip_prefix(&p).map(|rest| (rest.to_string(), v.clone())))
            .collect()
    }

    /// An error about this checkpoint's content, naming its file and what to do.
    pub fn damaged(&self, reason: impl std::fmt::Display) -> Error {
        Error::bad_input(
            &self.path,
            format!(
                "{reason}. The file matches its index, so it was written like this or changed \
                 together with the index: resume from a backup of the run, or start a new run"
            ),
        )
    }
}

fn is_finite(t: &Tensor) -> Result<bool> {
    let sum = t
        .to_dtype(candle_core::DType::F64)?
        .abs()?
        .sum_all()?
        .to_scalar::<f64>()?;
    Ok(sum.is_finite())
}

/// True when every value of every variable is finite.
pub fn all_finite(map: &VarMap) -> Result<bool> {
    for var in map.all_vars() {
        if !is_finite(var.as_tensor())? {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::{Init, VarBuilder};

    fn map(value: f64) -> VarMap {
        let m = VarMap::new();
        let vb = VarBuilder::from_varmap(&m, candle_core::DType::F32, &Device::Cpu);
        vb.get_with_hints(3, "w", Init::Const(value)).unwrap();
        m
    }

    fn info(step: u64) -> CheckpointInfo {
        CheckpointInfo {
            step,
            file: String::new(),
            sha256: String::new(),
            generator_optimizer_steps: step,
            discriminator_optimizer_steps: step,
            training_seconds: 0.0,
            augment: None,
        }
    }

    #[test]
    fn save_load_restore_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let (g, d) = (map(1.0), map(2.0));
        for step in [10, 20, 30] {
            save(
                dir.path(),
                &collect(&g, &d, HashMap::new(), HashMap::new(), None),
                info(step),
            )
            .unwrap();
        }
        let mut files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        files.sort();
        assert_eq!(
            files,
            [
                "latest.json",
                "step-0000020.safetensors",
                "step-0000030.safetensors"
            ]
        );
        let loaded = load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(loaded.info.step, 30);
        let target = map(0.0);
        loaded.restore(&target, "d").unwrap();
        assert_eq!(
            target.data().lock().unwrap()["w"]
                .as_tensor()
                .to_vec1::<f32>()
                .unwrap(),
            [2.0; 3]
        );
        let err = loaded.restore(&target, "x").unwrap_err().to_string();
        assert!(
            err.contains("`x.w` is missing") && err.contains("step-0000030.safetensors"),
            "{err}"
        );
    }

    #[test]
    fn damaged_or_missing_checkpoints_are_reported_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), &Device::Cpu).unwrap_err().to_string();
        assert!(
            err.contains("latest.json") && err.contains("no checkpoint"),
            "{err}"
        );
        let (g, d) = (map(1.0), map(2.0));
        let path = save(
            dir.path(),
            &collect(&g, &d, HashMap::new(), HashMap::new(), None),
            info(5),
        )
        .unwrap();
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap(); // half-written
        let err = load(dir.path(), &Device::Cpu).unwrap_err().to_string();
        assert!(err.contains("incomplete or damaged"), "{err}");
        assert_eq!(
            std::fs::read(&path).unwrap().len(),
            bytes.len() / 2,
            "left as it was for inspection"
        );

        // An index naming a file outside the folder (or a device) is refused before reading.
        let index = dir.path().join(LATEST);
        let good = std::fs::read_to_string(&index).unwrap();
        let named = serde_json::from_str::<CheckpointInfo>(&good).unwrap().file;
        for evil in [
            "../../etc/passwd",
            "/dev/zero",
            "step-1.safetensors/../../x",
        ] {
            std::fs::write(&index, good.replace(&named, evil)).unwrap();
            let err = load(dir.path(), &Device::Cpu).unwrap_err().to_string();
            assert!(err.contains(evil) && err.contains("latest.json"), "{err}");
        }
    }

    #[test]
    fn a_failed_write_names_the_checkpoint_and_keeps_the_previous_one() {
        let dir = tempfile::tempdir().unwrap();
        let (g, d) = (map(1.0), map(2.0));
        let tensors = collect(&g, &d, HashMap::new(), HashMap::new(), None);
        save(dir.path(), &tensors, info(5)).unwrap();
        let index = std::fs::read(dir.path().join(LATEST)).unwrap();
        // The file cannot be written (here: a folder is in its way; a full disk alike).
        let temp = dir.path().join(".tmp-step-0000006.safetensors");
        std::fs::create_dir(&temp).unwrap();
        let err = save(dir.path(), &tensors, info(6)).unwrap_err().to_string();
        assert!(
            err.contains(".tmp-step-0000006.safetensors") && err.contains("disk full"),
            "{err}"
        );
        assert_eq!(std::fs::read(dir.path().join(LATEST)).unwrap(), index);
        assert!(load(dir.path(), &Device::Cpu).is_ok(), "step 5 still loads");
    }

    #[test]
    fn finiteness_check_sees_nan() {
        let m = map(1.0);
        assert!(all_finite(&m).unwrap());
        m.data().lock().unwrap()["w"]
            .set(&Tensor::new(&[1f32, f32::NAN, 0.], &Device::Cpu).unwrap())
            .unwrap();
        assert!(!all_finite(&m).unwrap());
    }
}

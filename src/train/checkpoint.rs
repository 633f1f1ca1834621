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
    let file = format!("step-{:07}.safetensors", info.step);
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
    let text = std::fs::read_to_string(&path).map_err(|e| {
        Error::bad_input(
            &path,
            format!(
                "no checkpoint in this run ({e}): a run that has saved none cannot be resumed, \
                 sampled or scored — train it with chapter-05 (a new run, without --resume), or \
                 name a run folder that has checkpoints/{LATEST}"
            ),
        )
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Error::bad_input(&path, format!("damaged checkpoint index: {e}")))
}

/// Load the tensors `latest.json` names, after checking their SHA-256.
pub fn load(dir: &Path, device: &Device) -> Result<(CheckpointInfo, HashMap<String, Tensor>)> {
    let info = load_info(dir)?;
    // The index is data: it may only name a checkpoint file beside it.
    let plain_name = Path::new(&info.file).file_name() == Some(std::ffi::OsStr::new(&info.file))
        && info.file.ends_with(".safetensors");
    if !plain_name {
        return Err(Error::bad_input(
            dir.join(LATEST),
            format!(
                "names `{}`, which is not a .safetensors file in this run's checkpoints folder; \
                 the index was edited or damaged — start a new run, or write the name of the \
                 newest step-*.safetensors file here",
                info.file
            ),
        ));
    }
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
    Ok((info, tensors))
}

/// Copy the tensors under `prefix.` into the variables of `map`. Every variable must be present
/// with the same shape.
pub fn restore(map: &VarMap, tensors: &HashMap<String, Tensor>, prefix: &str) -> Result<()> {
    for (name, var) in map.data().lock().expect("poisoned").iter() {
        let key = format!("{prefix}.{name}");
        let saved = tensors.get(&key).ok_or_else(|| {
            Error::config(
                "checkpoint",
                format!("tensor `{key}` is missing: was it saved by another model?"),
            )
        })?;
        if saved.dims() != var.dims() {
            return Err(Error::config(
                "checkpoint",
                format!(
                    "tensor `{key}` has shape {:?}, the model expects {:?}",
                    saved.dims(),
                    var.dims()
                ),
            ));
        }
        var.set(&saved.to_device(var.device())?)?;
    }
    Ok(())
}

/// The optimiser state stored under `prefix.` (`opt_g` or `opt_d`).
pub fn optimizer_state(tensors: &HashMap<String, Tensor>, prefix: &str) -> HashMap<String, Tensor> {
    let p = format!("{prefix}.");
    tensors
        .iter()
        .filter_map(|(k, v)| k.strip_prefix(&p).map(|rest| (rest.to_string(), v.clone())))
        .collect()
}

/// True when every value of every variable is finite.
pub fn all_finite(map: &VarMap) -> Result<bool> {
    for var in map.all_vars() {
        let sum = var
            .as_tensor()
            .abs()?
            .sum_all()?
            .to_dtype(candle_core::DType::F32)?
            .to_scalar::<f32>()?;
        if !sum.is_finite() {
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
        let (loaded, tensors) = load(dir.path(), &Device::Cpu).unwrap();
        assert_eq!(loaded.step, 30);
        let target = map(0.0);
        restore(&target, &tensors, "d").unwrap();
        assert_eq!(
            target.data().lock().unwrap()["w"]
                .as_tensor()
                .to_vec1::<f32>()
                .unwrap(),
            [2.0; 3]
        );
        assert!(restore(&target, &tensors, "x")
            .unwrap_err()
            .to_string()
            .contains("`x.w` is missing"));
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

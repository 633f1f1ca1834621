//! Run folders and sweep files changed by hand or by another program: every read path
//! (resume, generate, score, export, charts, sweep) refuses a bad file in moments, naming the
//! file and the key or tensor, before it allocates anything; a run folder has one writer; the
//! temporary files of a killed write are cleared by the next writer.

mod fixtures;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use fixtures::synthetic_logos;
use logogan::data::dataset::ImageDataset;
use logogan::fsutil::sha256_hex;
use logogan::model::Architecture;
use logogan::sweep::SweepFile;
use logogan::train::charts::draw_charts;
use logogan::train::checkpoint::{self, CheckpointInfo, LATEST};
use logogan::train::generate::TrainedGenerator;
use logogan::train::session::checked_run_name;
use logogan::train::{Preset, TrainConfig, Trainer};

fn dataset() -> ImageDataset {
    let images = synthetic_logos(40);
    let names = (0..40).map(|i| format!("{i}.png")).collect();
    ImageDataset::from_images(&images, names, &Device::Cpu).unwrap()
}

fn tiny() -> TrainConfig {
    TrainConfig {
        epochs: 1,
        max_images: None,
        ema_decay: Some(0.9),
        ..TrainConfig::preset(Preset::Tiny, Architecture::Logogan)
    }
}

/// A tiny trained run (5 steps, with an averaged generator) in `dir/name`, its `data` pointing
/// at a folder that exists.
fn trained_run(dir: &Path, name: &str) -> PathBuf {
    let run = dir.join(name);
    let data_dir = dir.join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    Trainer::create(tiny(), &dataset(), data_dir, run.clone())
        .unwrap()
        .train(None, &mut |_| {})
        .unwrap();
    run
}

fn err_text<T>(result: logogan::error::Result<T>) -> String {
    match result {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    }
}

/// `config.json` of `run` with `edit` applied to its JSON.
fn edit_config(run: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = run.join("config.json");
    let mut value: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    edit(&mut value);
    std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
}

/// Rewrite the checkpoint of `run` with `edit` applied to its tensors, and its index re-hashed to
/// match (as a program that writes checkpoints of its own would).
fn edit_checkpoint(run: &Path, edit: impl FnOnce(&mut HashMap<String, Tensor>)) {
    let dir = run.join("checkpoints");
    let index = dir.join(LATEST);
    let mut info: CheckpointInfo = serde_json::from_slice(&std::fs::read(&index).unwrap()).unwrap();
    let file = dir.join(&info.file);
    let mut tensors = candle_core::safetensors::load(&file, &Device::Cpu).unwrap();
    edit(&mut tensors);
    candle_core::safetensors::save(&tensors, &file).unwrap();
    info.sha256 = sha256_hex(&std::fs::read(&file).unwrap());
    std::fs::write(&index, serde_json::to_vec_pretty(&info).unwrap()).unwrap();
}

/// Every reader of a run refuses `run` with a message containing each of `expected`.
fn every_reader_refuses(run: &Path, expected: &[&str]) {
    let data = dataset();
    let messages = [
        (
            "generate/score",
            err_text(TrainedGenerator::load(run, &Device::Cpu)),
        ),
        (
            "score the trained G",
            err_text(TrainedGenerator::load_trained(run, &Device::Cpu)),
        ),
        (
            "resume",
            err_text(Trainer::resume(run.to_path_buf(), &data, None)),
        ),
    ];
    for (reader, message) in messages {
        for want in expected {
            assert!(
                message.contains(want),
                "{reader}: `{want}` not in: {message}"
            );
        }
        assert!(message.len() < 1000, "{reader}: a short message: {message}");
    }
}

#[test]
fn settings_edited_in_config_json_are_refused_by_every_reader_naming_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let good = trained_run(dir.path(), "good");
    type Edit = fn(&mut serde_json::Value);
    let cases: [(&str, Edit, &str); 5] = [
        (
            "wide",
            |v| v["config"]["model"]["generator"]["base_filters"] = 10_000_000.into(),
            "generator.base_filters",
        ),
        (
            "grid",
            |v| v["config"]["grid_samples"] = 1_000_000_000u64.into(),
            "grid_samples",
        ),
        (
            "size",
            |v| {
                v["config"]["model"]["generator"]["image_size"] = 3.into();
                v["config"]["model"]["discriminator"]["image_size"] = 3.into();
            },
            "image_size",
        ),
        (
            "batch",
            |v| v["config"]["batch_size"] = 1_000_000.into(),
            "batch_size",
        ),
        ("images", |v| v["images"] = 0.into(), "images"),
    ];
    for (name, edit, key) in cases {
        let run = dir.path().join(name);
        copy_dir(&good, &run);
        edit_config(&run, edit);
        every_reader_refuses(&run, &["config.json", key]);
        let err = err_text(Trainer::training_set_of_run(&run, &Device::Cpu));
        assert!(err.contains("config.json") && err.contains(key), "{err}");
    }
}

#[test]
fn a_data_folder_that_is_gone_is_named_with_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "run");
    edit_config(&run, |v| v["data"] = "/nowhere/logos/train".into());
    let err = err_text(Trainer::training_set_of_run(&run, &Device::Cpu));
    assert!(
        err.contains("config.json")
            && err.contains("/nowhere/logos/train")
            && err.contains("chapter-03"),
        "{err}"
    );
}

#[test]
fn checkpoints_changed_and_rehashed_are_refused_naming_file_and_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let good = trained_run(dir.path(), "good");
    let file = "step-0000005.safetensors";

    let run = dir.path().join("nan");
    copy_dir(&good, &run);
    edit_checkpoint(&run, |t| {
        let key = "g_ema.block0.conv.weight";
        let shape = t[key].dims().to_vec();
        let n: usize = shape.iter().product();
        let mut values = vec![0.1f32; n];
        values[n / 2] = f32::NAN;
        t.insert(
            key.into(),
            Tensor::from_vec(values, shape, &Device::Cpu).unwrap(),
        );
        let key = "g.block0.conv.weight";
        t.insert(key.into(), (t[key].clone() * f64::INFINITY).unwrap());
    });
    let err = err_text(TrainedGenerator::load(&run, &Device::Cpu));
    assert!(
        err.contains(file) && err.contains("g_ema.block0.conv.weight") && err.contains("NaN"),
        "{err}"
    );
    let err = err_text(TrainedGenerator::load_trained(&run, &Device::Cpu));
    assert!(
        err.contains(file) && err.contains("`g.block0.conv.weight`"),
        "{err}"
    );

    let run = dir.path().join("shape");
    copy_dir(&good, &run);
    edit_checkpoint(&run, |t| {
        t.insert(
            "g.block0.conv.weight".into(),
            Tensor::zeros(7, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = err_text(TrainedGenerator::load_trained(&run, &Device::Cpu));
    assert!(
        err.contains(file) && err.contains("g.block0.conv.weight") && err.contains("[7]"),
        "{err}"
    );
    assert!(
        !err.contains("invalid setting"),
        "a file, not a setting: {err}"
    );

    let run = dir.path().join("optimiser");
    copy_dir(&good, &run);
    let mut moment = String::new();
    edit_checkpoint(&run, |t| {
        moment = t
            .keys()
            .find(|k| k.starts_with("opt_d.m."))
            .unwrap()
            .clone();
        t.insert(
            moment.clone(),
            Tensor::zeros(3, candle_core::DType::F32, &Device::Cpu).unwrap(),
        );
    });
    let err = err_text(Trainer::resume(run.clone(), &dataset(), None));
    let key = moment.strip_prefix("opt_d.").unwrap();
    assert!(
        err.contains(file) && err.contains(key) && err.contains("optimiser state"),
        "{err}"
    );
}

#[test]
fn a_damaged_checkpoint_index_is_called_damaged_not_missing() {
    let dir = tempfile::tempdir().unwrap();
    let good = trained_run(dir.path(), "good");
    let index_of = |run: &Path| run.join("checkpoints").join(LATEST);
    let text = std::fs::read_to_string(index_of(&good)).unwrap();
    let info: CheckpointInfo = serde_json::from_str(&text).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "latin1",
            b"{\"step\": 5, \"file\": \"caf\xe9\"}".to_vec(),
            "not UTF-8",
        ),
        (
            "huge-step",
            text.replace("\"step\": 5", &format!("\"step\": {}", u64::MAX))
                .into_bytes(),
            "18446744073709551615",
        ),
        (
            "optimiser-steps",
            serde_json::to_vec(&CheckpointInfo {
                generator_optimizer_steps: 99,
                ..info.clone()
            })
            .unwrap(),
            "generator_optimizer_steps",
        ),
        (
            "seconds",
            text.replace(
                &format!("\"training_seconds\": {}", info.training_seconds),
                "\"training_seconds\": -1.0",
            )
            .into_bytes(),
            "training_seconds",
        ),
    ];
    for (name, bytes, want) in cases {
        let run = dir.path().join(name);
        copy_dir(&good, &run);
        std::fs::write(index_of(&run), bytes).unwrap();
        let err = err_text(checkpoint::load_info(&run.join("checkpoints")));
        assert!(
            err.contains("latest.json")
                && err.contains("damaged checkpoint index")
                && err.contains(want),
            "{name}: {err}"
        );
        assert!(!err.contains("no checkpoint in this run"), "{name}: {err}");
        every_reader_refuses(&run, &["latest.json"]);
    }
}

#[test]
fn a_run_folder_has_one_writer_and_the_next_writer_clears_stale_temporaries() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset();
    let folder = dir.path().join("twin");
    // The first run holds the folder while it exists (while it trains)…
    let first = Trainer::create(tiny(), &data, "fixture".into(), folder.clone()).unwrap();
    // …so a second run started on it at the same moment, or a resume, is refused.
    let err = err_text(Trainer::create(
        tiny(),
        &data,
        "fixture".into(),
        folder.clone(),
    ));
    assert!(
        err.contains("another process") && err.contains("twin"),
        "{err}"
    );
    let before = std::fs::read(folder.join("config.json")).unwrap();
    let mut first = first;
    first.train(None, &mut |_| {}).unwrap();
    let err = err_text(Trainer::resume(folder.clone(), &data, Some(2)));
    assert!(err.contains("another process"), "{err}");
    assert_eq!(
        std::fs::read(folder.join("config.json")).unwrap(),
        before,
        "untouched"
    );
    drop(first);

    // A write killed half-way left temporaries; the next writer removes them.
    let stale = [
        folder.join(".tmp-abc123"),
        folder.join("checkpoints/.tmp-step-0000010.safetensors"),
        folder.join("samples/.tmp-xyz"),
    ];
    for path in &stale {
        std::fs::write(path, b"half").unwrap();
    }
    let resumed = Trainer::resume(folder.clone(), &data, Some(2)).unwrap();
    for path in &stale {
        assert!(!path.exists(), "{} removed", path.display());
    }
    // Raising the epochs is written into config.json, so the folder says what it trains for.
    let saved: serde_json::Value =
        serde_json::from_slice(&std::fs::read(folder.join("config.json")).unwrap()).unwrap();
    assert_eq!(saved["config"]["epochs"], 2);
    drop(resumed);
}

#[test]
fn special_files_in_the_place_of_outputs_and_logs_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path(), "run");
    // metrics.csv replaced by a folder: not "no steps recorded".
    std::fs::remove_file(run.join("metrics.csv")).unwrap();
    std::fs::create_dir(run.join("metrics.csv")).unwrap();
    let err = err_text(draw_charts(&logogan::train::RunDir::new(&run)));
    assert!(
        err.contains("metrics.csv") && err.contains("not a regular file"),
        "{err}"
    );
    let err = err_text(Trainer::resume(run.clone(), &dataset(), Some(2)));
    assert!(
        err.contains("metrics.csv") && err.contains("not a regular file"),
        "{err}"
    );

    // generate --out naming a file.
    let file = dir.path().join("a-file.png");
    std::fs::write(&file, b"x").unwrap();
    let g = TrainedGenerator::load(&run, &Device::Cpu).unwrap();
    let err = err_text(g.save_samples(4, 0, &file));
    assert!(
        err.contains("a-file.png") && err.contains("not a folder"),
        "{err}"
    );
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
}

#[test]
fn a_run_name_of_megabytes_is_refused_without_echoing_it() {
    let name = "a/".repeat(5_000_000);
    let err = checked_run_name(&name).unwrap_err().to_string();
    assert!(
        err.len() < 500 && err.contains("10000000 characters"),
        "{}",
        &err[..err.len().min(600)]
    );
}

#[test]
fn sweep_files_are_checked_in_full_before_any_trial_trains() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("samples = 1000000000000", "score.samples"),
        ("samples = 0", "score.samples"),
        ("kid_subset_size = 0", "score.kid_subset_size"),
        ("k = 0", "score.k"),
        (
            "two_sample = { repeats = 100000 }",
            "score.two_sample.repeats",
        ),
        ("encoder = { steps = 100000000 }", "score.encoder.steps"),
    ];
    for (line, key) in cases {
        let file = dir.path().join("sweep.toml");
        std::fs::write(
            &file,
            format!("name = \"s\"\n[base]\npreset = \"tiny\"\n[score]\n{line}\n[[trial]]\nname = \"a\"\n"),
        )
        .unwrap();
        let err = err_text(SweepFile::load(&file));
        assert!(
            err.contains("sweep.toml") && err.contains(key) && err.contains("nothing was trained"),
            "{line}: {err}"
        );
    }
    // A trial's settings too (the flags' bounds).
    let file = dir.path().join("trial.toml");
    std::fs::write(
        &file,
        "name = \"s\"\n[[trial]]\nname = \"a\"\nbatch_size = 100000000\n",
    )
    .unwrap();
    let err = err_text(SweepFile::load(&file));
    assert!(
        err.contains("trial.toml") && err.contains("batch_size"),
        "{err}"
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

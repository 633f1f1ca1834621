//! Chapter 6's scores on a 2-core CPU with tiny settings: a briefly trained run is scored
//! against the real images beside the real-vs-real floor, the feature encoder is cached by
//! version, and the Fréchet distance in its feature space notices blurred images.

mod fixtures;

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use fixtures::synthetic_logos;
use logogan::data::dataset::ImageDataset;
use logogan::fsutil::save_png;
use logogan::metrics::{frechet_distance, score_run, EncoderConfig, FeatureEncoder, ScoreConfig};
use logogan::model::Architecture;
use logogan::paths::DataLayout;
use logogan::train::{Preset, TrainConfig, Trainer};

/// A data folder whose 32 px clean and training sets hold `synthetic_logos(n)`.
fn data_folder(root: &Path, n: u32) -> DataLayout {
    let layout = DataLayout::new(root.join("data"));
    for (i, image) in synthetic_logos(n).iter().enumerate() {
        save_png(&layout.clean(32).join(format!("{i:03}.png")), image).unwrap();
        save_png(&layout.train(32).join(format!("{i:03}.png")), image).unwrap();
    }
    layout
}

fn tiny_scores() -> ScoreConfig {
    ScoreConfig {
        samples: 40,
        kid_subsets: 5,
        kid_subset_size: 20,
        k: 3,
        seed: 0,
        encoder: EncoderConfig {
            image_size: 32,
            feature_dim: 8,
            filters: 4,
            epochs: 2,
            batch_size: 16,
            lr: 1e-3,
            seed: 0,
        },
    }
}

fn train_tiny_run(layout: &DataLayout, run: PathBuf) {
    let data = ImageDataset::load(&layout.train(32), 32, &Device::Cpu).unwrap();
    let config = TrainConfig {
        epochs: 1,
        max_images: None,
        ..TrainConfig::preset(Preset::Tiny, Architecture::Logogan)
    };
    let mut trainer = Trainer::create(config, &data, layout.train(32), run).unwrap();
    trainer.train(None, &mut |_| {}).unwrap();
}

#[test]
fn a_run_is_scored_beside_the_real_floor_and_the_encoder_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 100);
    let run = dir.path().join("run");
    train_tiny_run(&layout, run.clone());

    let config = tiny_scores();
    let mut epochs = 0;
    let report = score_run(&run, &layout, &config, &Device::Cpu, &mut |_, loss| {
        assert!(loss.is_finite());
        epochs += 1;
    })
    .unwrap();
    assert_eq!(epochs, 2, "the encoder is trained on first use");
    let (g, f) = (&report.generated, &report.real_floor);
    for v in [
        g.frechet,
        g.kid.mean,
        g.kid.standard_error,
        g.memorisation.ratio,
        f.frechet,
        f.kid.mean,
    ] {
        assert!(v.is_finite(), "{report:?}");
    }
    // A generator trained for 12 steps is far from the real images; two halves of the real
    // images are not.
    assert!(g.frechet > f.frechet, "{report:?}");
    assert!(g.kid.mean > f.kid.mean, "{report:?}");
    for p in [g.precision_recall, f.precision_recall] {
        assert!((0.0..=1.0).contains(&p.precision) && (0.0..=1.0).contains(&p.recall));
    }
    let table = std::fs::read_to_string(run.join("score.md")).unwrap();
    assert!(table.contains("real vs real") && table.contains(&report.encoder_version));
    assert!(run.join("score.json").is_file());

    // Second time: the cached encoder (same version), no training, the same numbers.
    let again = score_run(&run, &layout, &config, &Device::Cpu, &mut |_, _| {
        panic!("the cached encoder must not be retrained")
    })
    .unwrap();
    assert_eq!(again, report);

    // Images from elsewhere (a .npy, as the PyTorch reference writes): here the run's own
    // training set, exported as the reference would train on it. They are the real logos
    // themselves, so the memorisation check must call nearly all of them copies.
    let images = Trainer::training_set_of_run(&run, &Device::Cpu).unwrap();
    assert_eq!(images.len(), 100);
    let npy = dir.path().join("reference/train.npy");
    images.save_npy(&npy).unwrap();
    let copies =
        logogan::metrics::score_images(&npy, &layout, &config, &Device::Cpu, &mut |_, _| {
            panic!("the cached encoder must not be retrained")
        })
        .unwrap();
    assert_eq!(copies.step, None);
    assert!(
        copies.generated.memorisation.near_copies > 0.9
            && copies.generated.memorisation.ratio < 0.1,
        "{copies:?}"
    );
    assert!(
        copies.generated.frechet < report.generated.frechet,
        "{copies:?}"
    );
    for f in ["train.score.md", "train.score.json", "train.grid.png"] {
        assert!(dir.path().join("reference").join(f).is_file(), "{f}");
    }
}

#[test]
fn the_encoder_version_follows_its_data_and_settings() {
    let dir = tempfile::tempdir().unwrap();
    let a = ImageDataset::from_images(
        &synthetic_logos(20),
        (0..20).map(|i| format!("{i}")).collect(),
        &Device::Cpu,
    )
    .unwrap();
    let b = ImageDataset::from_images(
        &synthetic_logos(21)[1..],
        (0..20).map(|i| format!("{i}")).collect(),
        &Device::Cpu,
    )
    .unwrap();
    let config = tiny_scores().encoder;
    let (path_a, _) = FeatureEncoder::weights_path(dir.path(), &config, &a).unwrap();
    let (path_b, _) = FeatureEncoder::weights_path(dir.path(), &config, &b).unwrap();
    let other = EncoderConfig {
        feature_dim: 16,
        ..config.clone()
    };
    let (path_c, _) = FeatureEncoder::weights_path(dir.path(), &other, &a).unwrap();
    assert_ne!(path_a, path_b, "other pixels, other encoder");
    assert_ne!(path_a, path_c, "other settings, other encoder");
    assert_eq!(
        path_a,
        FeatureEncoder::weights_path(dir.path(), &config, &a)
            .unwrap()
            .0
    );
}

#[test]
fn frechet_distance_in_feature_space_notices_blur() {
    let dir = tempfile::tempdir().unwrap();
    let images = synthetic_logos(160);
    let data = ImageDataset::from_images(
        &images,
        (0..160).map(|i| format!("{i}")).collect(),
        &Device::Cpu,
    )
    .unwrap();
    let config = EncoderConfig {
        epochs: 3,
        ..tiny_scores().encoder
    };
    let encoder =
        FeatureEncoder::load_or_train(dir.path(), &config, &data, &mut |_, _| {}).unwrap();
    let all: Vec<u32> = (0..160).collect();
    let x = data.get(&all).unwrap(); // (160, 3, 32, 32)
    let (a, b) = (x.narrow(0, 0, 80).unwrap(), x.narrow(0, 80, 80).unwrap());
    // A 4×4 box blur: average-pool, then back up to 32×32.
    let blurred: Tensor = b.avg_pool2d(4).unwrap().upsample_nearest2d(32, 32).unwrap();
    let fa = encoder.features(&a).unwrap();
    let real_vs_real = frechet_distance(&fa, &encoder.features(&b).unwrap()).unwrap();
    let real_vs_blurred = frechet_distance(&fa, &encoder.features(&blurred).unwrap()).unwrap();
    assert!(
        real_vs_blurred > real_vs_real,
        "blurred {real_vs_blurred} vs {real_vs_real}"
    );
}

#[test]
fn scoring_a_folder_without_a_checkpoint_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 20);
    let err = score_run(
        &dir.path().join("no-run"),
        &layout,
        &tiny_scores(),
        &Device::Cpu,
        &mut |_, _| {},
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("no-run"), "{err}");
}

#[test]
fn a_sweep_trains_scores_ranks_and_resumes() {
    use logogan::sweep::{run_sweep, SweepFile};
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 100);
    let mut sweep: SweepFile = toml::from_str(
        r#"
        name = "tiny"
        [base]
        preset = "tiny"
        epochs = 1
        max_images = 100
        [[trial]]
        name = "baseline"
        [[trial]]
        name = "hinge"
        loss = "hinge"
        [grid]
        ema_decay = [0.9]
        "#,
    )
    .unwrap();
    sweep.score = Some(tiny_scores());
    assert_eq!(
        sweep
            .trials()
            .unwrap()
            .iter()
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>(),
        ["baseline", "hinge", "ema_decay_0.9"]
    );
    let runs = dir.path().join("runs");
    let results = run_sweep(&sweep, &runs, &layout, &Device::Cpu, 1, &|_| {}).unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(
        results.iter().map(|r| r.rank).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert!(
        results.windows(2).all(|w| w[0].frechet <= w[1].frechet),
        "ranked by FD"
    );
    let root = runs.join("tiny");
    for f in [
        "results.md",
        "results.csv",
        "scores.png",
        "scores.svg",
        "sweep.json",
        "hinge.png",
    ] {
        assert!(root.join(f).is_file(), "{f}");
    }
    let metrics = std::fs::read(root.join("hinge/metrics.csv")).unwrap();

    // Again: every trial is finished and scored, so nothing is trained or scored anew.
    let again = run_sweep(&sweep, &runs, &layout, &Device::Cpu, 1, &|_| {}).unwrap();
    assert_eq!(
        std::fs::read(root.join("hinge/metrics.csv")).unwrap(),
        metrics
    );
    let key = |r: &logogan::sweep::TrialResult| (r.trial.clone(), r.frechet.to_bits(), r.rank);
    assert_eq!(
        again.iter().map(key).collect::<Vec<_>>(),
        results.iter().map(key).collect::<Vec<_>>()
    );

    // Three trials trained two at a time, from scratch: the same training, the same scores.
    let side_by_side = dir.path().join("runs-parallel");
    let parallel = run_sweep(&sweep, &side_by_side, &layout, &Device::Cpu, 2, &|_| {}).unwrap();
    assert_eq!(
        parallel.iter().map(key).collect::<Vec<_>>(),
        results.iter().map(key).collect::<Vec<_>>()
    );
    for trial in ["baseline", "hinge", "ema_decay_0.9"] {
        assert_eq!(
            std::fs::read(side_by_side.join("tiny").join(trial).join("metrics.csv")).unwrap(),
            std::fs::read(root.join(trial).join("metrics.csv")).unwrap(),
            "{trial}: metrics of the parallel sweep"
        );
    }
}

#[test]
fn sweep_files_with_mistakes_are_refused_by_name() {
    use logogan::sweep::SweepFile;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "name = \"x\"\n[[trial]]\nlearning_rate = 1\n").unwrap();
    let err = SweepFile::load(&path).unwrap_err().to_string();
    assert!(
        err.contains("bad.toml") && err.contains("learning_rate"),
        "{err}"
    );
    let twice: SweepFile =
        toml::from_str("name = \"x\"\n[[trial]]\nname = \"a\"\n[[trial]]\nname = \"a\"\n").unwrap();
    assert!(twice
        .trials()
        .unwrap_err()
        .to_string()
        .contains("`a` is used twice"));
    let impossible: SweepFile =
        toml::from_str("name = \"x\"\n[[trial]]\nname = \"a\"\nbatch_size = 0\n").unwrap();
    let err = impossible.trials().unwrap_err().to_string();
    assert!(
        err.contains("trial `a`") && err.contains("batch_size"),
        "{err}"
    );
    // The course's own sweep files are valid; the GPU ladder has the CPU ladder's trials.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let ladder = SweepFile::load(&root.join("data/sweeps/stability.toml")).unwrap();
    let gpu = SweepFile::load(&root.join("data/sweeps/stability-gpu.toml")).unwrap();
    assert_eq!(ladder.trials().unwrap().len(), 8);
    assert_eq!(gpu.trial, ladder.trial);
    for (_, config) in gpu.trials().unwrap() {
        assert_eq!(config.image_size(), 64);
    }
    for file in ["seeds-quick.toml", "seeds-gpu.toml"] {
        let seeds = SweepFile::load(&root.join("reference/pytorch-dcgan").join(file)).unwrap();
        assert!(seeds.trials().unwrap().len() >= 3, "{file}");
    }
}

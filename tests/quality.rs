//! Chapter 6's judge on a 2-core CPU with tiny settings: the calibration ladder holds its key
//! orderings on synthetic logos (blobs far below the floor, heavy blur worse than slight, one
//! repeated logo without recall, copies flagged), a briefly trained run is scored beside the
//! held-out floor, and the feature encoder is cached by version.

mod fixtures;

use std::path::PathBuf;

use candle_core::Device;
use fixtures::{data_folder, synthetic_logos};
use logogan::data::dataset::ImageDataset;
use logogan::metrics::{
    calibrate, score_run, CalibrationConfig, EncoderConfig, FeatureEncoder, RealReference, Rung,
    ScoreConfig, TwoSampleConfig,
};
use logogan::model::Architecture;
use logogan::paths::DataLayout;
use logogan::train::{Preset, TrainConfig, Trainer};

fn tiny_scores() -> ScoreConfig {
    ScoreConfig {
        samples: 60,
        kid_subsets: 5,
        kid_subset_size: 30,
        k: 3,
        density_k: 5,
        seed: 0,
        encoder: EncoderConfig {
            filters: 8,
            projection_dim: 16,
            steps: 40,
            batch_size: 32,
            ..EncoderConfig::default()
        },
        two_sample: TwoSampleConfig {
            epochs: 20,
            batch_size: 16,
            lr: 2e-3,
            filters: 8,
            ..TwoSampleConfig::default()
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
fn the_judge_orders_the_calibration_ladder() {
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 240, 60);
    let config = CalibrationConfig {
        score: tiny_scores(),
        ..CalibrationConfig::default()
    };
    let reference =
        RealReference::load(&layout, &config.score, &Device::Cpu, &mut |_, _| {}).unwrap();
    let ladder = calibrate(&reference, &config, &mut |_, _| {}).unwrap();
    println!("{}", ladder.table());
    let s = |r: Rung| &ladder.rungs.iter().find(|x| x.rung == r).unwrap().scores;
    let floor = s(Rung::HeldOut);
    // Smooth blobs: off the real logos' manifold, and obvious to a classifier. (The
    // autoencoder judge this replaced gave blobs precision 1.000.)
    let blobs = s(Rung::Blobs);
    assert!(
        blobs.precision_recall.precision < 0.5 * floor.precision_recall.precision,
        "{blobs:?} vs floor {floor:?}"
    );
    assert!(
        blobs.density_coverage.density < 0.5 * floor.density_coverage.density,
        "{blobs:?}"
    );
    assert!(blobs.two_sample.accuracy >= 0.9, "{blobs:?}");
    assert!(floor.two_sample.accuracy <= 0.7, "real vs real: {floor:?}");
    // Heavy blur is worse than slight blur.
    assert!(
        s(Rung::HeavyBlur).kid.mean > s(Rung::SlightBlur).kid.mean,
        "{}",
        ladder.table()
    );
    // One logo repeated covers nothing of the real variety.
    let one = s(Rung::OneLogo);
    assert!(one.precision_recall.recall <= 0.05, "{one:?}");
    assert!(one.density_coverage.coverage <= 0.1, "{one:?}");
    // Copies of training logos are flagged; held-out logos are not.
    let copies = s(Rung::TrainingCopies);
    assert!(
        copies.memorisation.near_copies >= 0.9 && copies.memorisation.ratio < 0.2,
        "{copies:?}"
    );
    assert!(floor.memorisation.near_copies <= 0.1, "{floor:?}");

    // The results are written for the book, and the same inputs give the same ladder.
    let out = dir.path().join("calibration");
    ladder.save(&out, &reference).unwrap();
    for f in [
        "calibration.md",
        "calibration.csv",
        "calibration.json",
        "calibration-kid.png",
        "calibration-sets.png",
    ] {
        assert!(out.join(f).is_file(), "{f}");
    }
    let again = calibrate(&reference, &config, &mut |_, _| {}).unwrap();
    assert_eq!(again, ladder);
}

#[test]
fn a_run_is_scored_beside_the_held_out_floor_and_the_encoder_is_cached() {
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 100, 30);
    let run = dir.path().join("run");
    train_tiny_run(&layout, run.clone());

    let config = ScoreConfig {
        samples: 30,
        ..tiny_scores()
    };
    let mut reports = 0;
    let report = score_run(&run, &layout, &config, &Device::Cpu, &mut |_, loss| {
        assert!(loss.is_finite());
        reports += 1;
    })
    .unwrap();
    assert!(reports >= 1, "the encoder is trained on first use");
    assert_eq!(report.samples, 30, "as many as there are held-out logos");
    let (g, f) = (&report.generated, &report.real_floor);
    for v in [
        g.frechet,
        g.kid.mean,
        g.kid.standard_error,
        g.memorisation.ratio,
        g.density_coverage.density,
        f.frechet,
        f.kid.mean,
    ] {
        assert!(v.is_finite(), "{report:?}");
    }
    // A generator trained for 12 steps makes noise: a classifier spots it more often than it
    // tells held-out logos from train logos, and held-out logos are nearer the train logos.
    assert!(g.kid.mean > f.kid.mean, "{report:?}");
    assert!(
        g.two_sample.accuracy > f.two_sample.accuracy + 0.1,
        "{report:?}"
    );
    for p in [g.precision_recall, f.precision_recall] {
        assert!((0.0..=1.0).contains(&p.precision) && (0.0..=1.0).contains(&p.recall));
    }
    let table = std::fs::read_to_string(run.join("score.md")).unwrap();
    assert!(table.contains("held-out real (floor)") && table.contains(&report.encoder_version));
    assert!(run.join("score.json").is_file());

    // Second time: the cached encoder (same version), no training, the same numbers.
    let again = score_run(&run, &layout, &config, &Device::Cpu, &mut |_, _| {
        panic!("the cached encoder must not be retrained")
    })
    .unwrap();
    assert_eq!(again, report);

    // Images from elsewhere (a .npy, as the PyTorch reference writes): here the run's own
    // training set, exported as the reference would train on it. They are the training logos
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
        copies.generated.kid.mean < report.generated.kid.mean,
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
        filters: 16,
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
fn too_few_images_or_no_checkpoint_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 40, 10);
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
    // Ten held-out logos are too few for a floor: the message says what to do.
    let npy = dir.path().join("few.npy");
    ImageDataset::load(&layout.train(32), 32, &Device::Cpu)
        .unwrap()
        .save_npy(&npy)
        .unwrap();
    let err =
        logogan::metrics::score_images(&npy, &layout, &tiny_scores(), &Device::Cpu, &mut |_, _| {})
            .err()
            .unwrap()
            .to_string();
    assert!(err.contains("too few") && err.contains("20"), "{err}");
}

/// A sweep trial with `families = k` trains chapter 7's conditional GAN on the families of the
/// training logos (here written beforehand, as `chapter-07 families` would), and the run keeps
/// them.
#[test]
fn a_sweep_trains_a_conditional_trial_on_the_logo_families() {
    use logogan::metrics::families::{families_path, save_families};
    use logogan::sweep::{run_sweep, SweepFile};
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 100, 30);
    let data = ImageDataset::load(&layout.train(32), 32, &Device::Cpu).unwrap();
    let labels: Vec<u32> = (0..data.len() as u32).map(|i| i % 2).collect();
    save_families(&families_path(&layout, 2), &data.names, &labels).unwrap();
    let mut sweep: SweepFile = toml::from_str(
        r#"
        name = "families"
        [base]
        preset = "tiny"
        epochs = 1
        [[trial]]
        name = "two"
        families = 2
        "#,
    )
    .unwrap();
    sweep.score = Some(ScoreConfig {
        samples: 30,
        ..tiny_scores()
    });
    let runs = dir.path().join("runs");
    let results = run_sweep(&sweep, &runs, &layout, &Device::Cpu, 1, &|_| {}).unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].kid_x1000.is_finite());
    let run = runs.join("families/two");
    let generator = logogan::train::generate::TrainedGenerator::load(&run, &Device::Cpu).unwrap();
    assert_eq!(generator.classes(), 2);
    // The run keeps the family of every image it trained on (the tiny preset's first 64), as
    // written beside the data.
    let kept = std::fs::read_to_string(run.join("families.csv")).unwrap();
    assert_eq!(
        kept.lines().count(),
        1 + 64,
        "a header and every image trained on"
    );
    for line in kept.lines().skip(1) {
        let (name, family) = line.split_once(',').unwrap();
        let i = data.names.iter().position(|n| n == name).unwrap();
        assert_eq!(family, labels[i].to_string(), "{line}");
    }
}

#[test]
fn a_sweep_trains_scores_ranks_and_resumes() {
    use logogan::sweep::{run_sweep, SweepFile};
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 100, 30);
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
    sweep.score = Some(ScoreConfig {
        samples: 30,
        ..tiny_scores()
    });
    // The EMA trial is also scored through the generator it trained, as a fourth row.
    sweep.score_trained_generator = true;
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
    assert_eq!(results.len(), 4);
    assert_eq!(
        results.iter().map(|r| r.rank).collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    let averaged = results.iter().find(|r| r.trial == "ema_decay_0.9").unwrap();
    let trained = results
        .iter()
        .find(|r| r.trial == "ema_decay_0.9-trained-g")
        .unwrap();
    assert_eq!(trained.group, "ema_decay_0.9-trained-g");
    assert_ne!(
        averaged.kid_x1000, trained.kid_x1000,
        "another generator, other samples"
    );
    // Without the average the run is the baseline's training (EMA never feeds back), so its
    // trained generator scores exactly as the baseline does.
    let baseline = results.iter().find(|r| r.trial == "baseline").unwrap();
    assert_eq!(trained.kid_x1000, baseline.kid_x1000);
    assert!(runs
        .join("tiny/ema_decay_0.9/score-trained-g.json")
        .is_file());
    assert!(
        results.windows(2).all(|w| w[0].kid_x1000 <= w[1].kid_x1000),
        "ranked by KID"
    );
    let root = runs.join("tiny");
    for f in [
        "results.md",
        "results.csv",
        "summary.csv",
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
    let key = |r: &logogan::sweep::TrialResult| (r.trial.clone(), r.kid_x1000.to_bits(), r.rank);
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
    assert_eq!(ladder.trials().unwrap().len(), 9);
    assert_eq!(gpu.trial, ladder.trial);
    for (_, config) in gpu.trials().unwrap() {
        assert_eq!(config.image_size(), 64);
    }
    for file in ["seeds-quick.toml", "seeds-gpu.toml"] {
        let seeds = SweepFile::load(&root.join("reference/pytorch-dcgan").join(file)).unwrap();
        assert!(seeds.trials().unwrap().len() >= 3, "{file}");
    }
    // Every sweep file the course ships loads and expands into valid runs.
    for entry in std::fs::read_dir(root.join("data/sweeps")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let sweep = SweepFile::load(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
            assert!(!sweep.runs().unwrap().is_empty(), "{path:?}");
        }
    }
    // Every sweep file whose base is the laptop preset pins the G the book's runs of it had (the
    // preset as it shipped before the wide G), and its budget: 250 epochs, or a fraction of it.
    let former = TrainConfig::former_laptop(Architecture::Logogan);
    for (file, epochs) in [
        ("laptop-baseline.toml", 250),
        ("laptop-mbstd.toml", 250),
        ("laptop-wide-g.toml", 250),
        ("laptop-wide-g-avx2.toml", 250),
        ("families-full.toml", 250),
        ("laptop-full.toml", 100),
        ("laptop.toml", 50),
        ("families.toml", 50),
    ] {
        let base = SweepFile::load(&root.join("data/sweeps").join(file))
            .unwrap()
            .base
            .config();
        assert_eq!(base.model.generator, former.model.generator, "{file}");
        assert_eq!(base.epochs, epochs, "{file}");
    }
    // The baseline of chapter 6's recipe trials is that former preset, seed aside.
    let baseline = SweepFile::load(&root.join("data/sweeps/laptop-baseline.toml")).unwrap();
    for (name, mut config) in baseline.trials().unwrap() {
        config.seed = former.seed;
        assert_eq!(config, former, "{name}");
    }
    // The wide-G sweep on the AVX2 path trains its own baseline (book-assets captions it so): its
    // `preset` trial is the former preset, its `wide-g` trial the AVX-512 trial's settings, and
    // both wide-G trials are the laptop preset as it ships now.
    let on_avx2 = SweepFile::load(&root.join("data/sweeps/laptop-wide-g-avx2.toml")).unwrap();
    let wide = SweepFile::load(&root.join("data/sweeps/laptop-wide-g.toml")).unwrap();
    let preset = TrainConfig::preset(Preset::Laptop, Architecture::Logogan);
    let wide_g = TrainConfig {
        seed: preset.seed,
        ..wide.trials().unwrap()[0].1.clone()
    };
    assert_eq!(wide_g, preset);
    assert_eq!(on_avx2.trials().unwrap().len(), 6);
    assert_trials_are(&on_avx2, &[("preset", &former), ("wide-g", &preset)]);
    // The average trial: its `preset` runs are the preset as it ships (and so the wide-G runs
    // above, copied in), its other trial differs only in the decay of the average.
    let ema = SweepFile::load(&root.join("data/sweeps/laptop-ema.toml")).unwrap();
    let longer_average = TrainConfig {
        ema_decay: Some(0.9995),
        ..preset.clone()
    };
    assert_trials_are(
        &ema,
        &[("preset", &preset), ("ema-0.9995", &longer_average)],
    );
    // So are the other trials on the preset: each differs from it only in what its name says.
    let mut hinge = TrainConfig {
        loss: logogan::train::loss::GanLoss::Hinge,
        ..preset.clone()
    };
    hinge.model.discriminator.spectral_norm = true;
    let sweep = SweepFile::load(&root.join("data/sweeps/laptop-hinge.toml")).unwrap();
    assert_trials_are(&sweep, &[("preset", &preset), ("hinge-sn", &hinge)]);
    let adaptive = TrainConfig {
        ada_target: Some(0.6),
        ..preset.clone()
    };
    let sweep = SweepFile::load(&root.join("data/sweeps/laptop-ada.toml")).unwrap();
    assert_trials_are(&sweep, &[("preset", &preset), ("ada", &adaptive)]);
    let turns = TrainConfig {
        flip_and_turn: true,
        ..adaptive.clone()
    };
    let mut fast_g = preset.clone();
    fast_g.generator_optimizer.lr = 4e-4;
    let sweep = SweepFile::load(&root.join("data/sweeps/laptop-fast-g.toml")).unwrap();
    assert_trials_are(&sweep, &[("preset", &preset), ("fast-g", &fast_g)]);
    let sweep = SweepFile::load(&root.join("data/sweeps/laptop-ada-turns.toml")).unwrap();
    assert_trials_are(
        &sweep,
        &[
            ("preset", &preset),
            ("ada", &adaptive),
            ("ada-turns", &turns),
        ],
    );
}

/// Every run of `sweep` has the settings of its trial in `expected` (by name, seed aside), and
/// no run belongs to another trial.
fn assert_trials_are(sweep: &logogan::sweep::SweepFile, expected: &[(&str, &TrainConfig)]) {
    for (name, mut config) in sweep.trials().unwrap() {
        let trial = name.split("-seed").next().unwrap();
        let Some((_, settings)) = expected.iter().find(|(t, _)| *t == trial) else {
            panic!("unexpected trial {trial}");
        };
        config.seed = settings.seed;
        assert_eq!(config, **settings, "{name}");
    }
}

/// Chapter 7's judge: a conditional run gets a KID per family against that family's train
/// logos, beside the family's held-out floor; the families come from k-means on the encoder's
/// features, as `chapter-07` makes them; an unconditional run's free samples are sorted into
/// the families of the training logos.
#[test]
fn a_conditional_run_is_scored_family_by_family() {
    use logogan::metrics::families::{kmeans, KMeansConfig};
    use logogan::metrics::score::score_families;
    let dir = tempfile::tempdir().unwrap();
    let layout = data_folder(dir.path(), 200, 80);
    let config = ScoreConfig {
        samples: 30,
        ..tiny_scores()
    };
    let data = ImageDataset::load(&layout.train(32), 32, &Device::Cpu).unwrap();
    let encoder = FeatureEncoder::load_or_train(
        &layout.processed(32),
        &config.encoder,
        &data,
        &mut |_, _| {},
    )
    .unwrap();
    let features = encoder.dataset_features(&data).unwrap();
    let families = kmeans(
        &features,
        &KMeansConfig {
            k: 2,
            ..KMeansConfig::default()
        },
    )
    .unwrap();
    let data = data.with_families(families.labels.clone()).unwrap();
    let mut train = TrainConfig {
        epochs: 1,
        max_images: None,
        ..TrainConfig::preset(Preset::Tiny, Architecture::Logogan)
    };
    train.model = train.model.conditional(2);
    let run = dir.path().join("conditional");
    Trainer::create(train, &data, layout.train(32), run.clone())
        .unwrap()
        .train(None, &mut |_| {})
        .unwrap();

    // The unconditional k (3) is ignored: a conditional run is judged in its own families.
    let scores = score_families(&run, &layout, &config, 3, true, &Device::Cpu).unwrap();
    assert!(scores.conditional);
    assert!(
        !scores.families.is_empty(),
        "at least one family has 20 held-out logos"
    );
    let sizes = families.sizes();
    for s in &scores.families {
        assert_eq!(s.train_logos, sizes[s.family as usize], "{s:?}");
        assert!(
            s.samples >= 20 && s.samples <= 30 && s.held_out_logos >= s.samples,
            "{s:?}"
        );
        assert!((0.0..=1.0).contains(&s.nearest_share), "{s:?}");
        let kid = s
            .kid
            .as_ref()
            .expect("a conditional run draws every family");
        assert!(kid.mean.is_finite() && s.floor.mean.is_finite());
        // One epoch of a tiny GAN makes noise: farther from its family than held-out logos are.
        assert!(kid.mean > s.floor.mean, "{s:?}");
    }
    let held_out: usize = scores.families.iter().map(|s| s.held_out_logos).sum();
    assert!(held_out <= 80);
    let table = std::fs::read_to_string(run.join("families.score.md")).unwrap();
    assert_eq!(table.lines().count(), 2 + scores.families.len(), "{table}");
    assert!(table.contains("samples asked for the family"), "{table}");

    // An unconditional run is judged in chapter 7's families of the training logos: its free
    // samples (30 × 2 families = 60) are sorted by nearest family centre.
    let plain = dir.path().join("plain");
    train_tiny_run(&layout, plain.clone());
    logogan::metrics::families::save_families(
        &logogan::metrics::families::families_path(&layout, 2),
        &data.names,
        &families.labels,
    )
    .unwrap();
    let scores = score_families(&plain, &layout, &config, 2, false, &Device::Cpu).unwrap();
    assert!(!scores.conditional);
    assert!(!scores.families.is_empty());
    let shares: f64 = scores.families.iter().map(|s| s.nearest_share).sum();
    assert!(shares <= 1.0 + 1e-9, "{scores:?}");
    for s in &scores.families {
        let drawn = (s.nearest_share * 60.0).round() as usize;
        assert_eq!(s.samples, drawn.min(30).min(s.held_out_logos), "{s:?}");
        assert_eq!(s.kid.is_some(), s.samples >= 20, "{s:?}");
        assert!(
            (s.train_share - s.train_logos as f64 / 200.0).abs() < 1e-9,
            "{s:?}"
        );
    }
    // The generator it trained: the file's name says which.
    let table = std::fs::read_to_string(plain.join("families-trained-g.score.md")).unwrap();
    assert!(table.contains("free samples nearest the family"), "{table}");
    let err = score_families(&plain, &layout, &config, 1, false, &Device::Cpu).unwrap_err();
    assert!(err.to_string().contains("give 2 to 64"), "{err}");
}

//! Chapter 5 on a 2-core CPU with tiny settings: a few real training steps write metrics, grids,
//! checkpoints and charts; a resumed run is bit-identical to an uninterrupted one; impossible
//! settings and broken checkpoints are refused with a message that names the problem; a trained
//! generator packed for the book's pages draws there what it draws here.

mod fixtures;

use std::path::{Path, PathBuf};

use candle_core::Device;
use fixtures::synthetic_logos;
use logogan::data::dataset::ImageDataset;
use logogan::model::latent_noise;
use logogan::model::Architecture;
use logogan::train::charts::draw_charts;
use logogan::train::generate::TrainedGenerator;
use logogan::train::loss_log::read_metrics;
use logogan::train::pack::PackedGenerator;
use logogan::train::{checkpoint, Preset, TrainConfig, Trainer};

/// 40 little 32×32 "logos": coloured discs and bars on white.
fn dataset() -> ImageDataset {
    let images = synthetic_logos(40);
    let names = (0..40).map(|i| format!("{i}.png")).collect();
    ImageDataset::from_images(&images, names, &Device::Cpu).unwrap()
}

fn tiny() -> TrainConfig {
    TrainConfig {
        epochs: 2,
        max_images: None,
        ..TrainConfig::preset(Preset::Tiny, Architecture::Logogan)
    }
}

fn ignore(_: logogan::train::TrainEvent) {}

fn checkpoint_bytes(run: &Path) -> Vec<u8> {
    let info = logogan::train::checkpoint::load_info(&run.join("checkpoints")).unwrap();
    std::fs::read(run.join("checkpoints").join(info.file)).unwrap()
}

#[test]
fn a_few_steps_write_metrics_grids_checkpoints_and_charts() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let data = dataset();
    let mut trainer =
        Trainer::create(tiny(), &data, PathBuf::from("fixture"), run.clone()).unwrap();
    assert_eq!(trainer.steps_per_epoch(), 5, "40 images, batch 8");
    let mut epochs_seen = vec![];
    trainer
        .train(None, &mut |e| {
            if let logogan::train::TrainEvent::EpochEnd { epoch, grid, .. } = e {
                epochs_seen.push((epoch, grid.dimensions()));
            }
        })
        .unwrap();
    assert_eq!(trainer.step(), 10);
    // 16 samples of 32 px in a 4×4 grid with 2 px gaps.
    assert_eq!(epochs_seen, vec![(1, (138, 138)), (2, (138, 138))]);

    let rows = read_metrics(&run.join("metrics.csv")).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.step).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    for r in &rows {
        assert!(r.is_finite(), "{r:?}");
        assert!(r.d_loss > 0.0 && r.g_loss > 0.0);
        assert!((0.0..=1.0).contains(&r.d_real) && (0.0..=1.0).contains(&r.d_fake));
    }
    assert!(
        rows[9].d_loss < rows[0].d_loss,
        "D learns to tell the tiny set from noise: {} → {}",
        rows[0].d_loss,
        rows[9].d_loss
    );
    assert!(
        run.join("samples/epoch-0001.png").exists() && run.join("samples/epoch-0002.png").exists()
    );
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["config"]["batch_size"], 8);
    assert_eq!(config["images"], 40);

    // Checkpoints at 4 and 8 and at the end (10): the last two are kept.
    let mut ckpts: Vec<_> = std::fs::read_dir(run.join("checkpoints"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    ckpts.sort();
    assert_eq!(
        ckpts,
        [
            "latest.json",
            "step-0000008.safetensors",
            "step-0000010.safetensors"
        ]
    );

    let files = draw_charts(&trainer.run).unwrap();
    assert_eq!((files.steps, files.frames, files.augment_moves), (10, 2, 0));
    for f in [
        "loss.png",
        "loss.svg",
        "d_outputs.png",
        "d_outputs.svg",
        "progress.gif",
    ] {
        assert!(std::fs::metadata(run.join(f)).unwrap().len() > 100, "{f}");
    }

    // The trained generator can be loaded on its own and sampled.
    let g = TrainedGenerator::load(&run, &Device::Cpu).unwrap();
    assert_eq!(g.step, 10);
    let images = g.images(&g.noise(3, 5).unwrap()).unwrap();
    assert_eq!(images.len(), 3);
    assert_eq!(images[0].dimensions(), (32, 32));
    assert_eq!(g.interpolate(1, 2, 5).unwrap().len(), 5);

    // Packed for the book's page, it draws in the page what `generate` draws from the run.
    let bytes = g.pack(2).unwrap();
    let packed = PackedGenerator::unpack(&bytes, "run.safetensors", &Device::Cpu).unwrap();
    let z = g.noise(3, 5).unwrap();
    let latents = z.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    let from_page = packed.sample(&latents, None).unwrap();
    let from_run = g.sample(&z).unwrap();
    let differ = (from_page - from_run)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap();
    assert_eq!(differ.to_scalar::<f32>().unwrap(), 0.0);
    assert_eq!(packed.directions.len(), 2);
}

/// The book's live widgets load data the repository keeps (book/src/web/, written by
/// scripts/build-web.sh): a packed generator and `reference.json`, the images the native code
/// drew from it. The browser test (scripts/check_book_browser.py) holds the page's images to
/// that reference; this test holds today's native code to it, so between them the browser and
/// the binaries draw the same logos.
#[test]
fn the_pages_packed_generator_draws_the_reference_images_natively() {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("book/src/web");
    let read = |name: &str| {
        std::fs::read(web.join(name)).unwrap_or_else(|e| {
            panic!("book/src/web/{name}: {e}; run scripts/build-web.sh --run RUN")
        })
    };
    let bytes = read("generator.safetensors");
    let reference: serde_json::Value = serde_json::from_slice(&read("reference.json")).unwrap();
    let numbers =
        |key: &str| -> Vec<f32> { serde_json::from_value(reference[key].clone()).expect(key) };
    let (latents, want) = (numbers("latents"), numbers("images"));
    let packed = PackedGenerator::unpack(&bytes, "generator.safetensors", &Device::Cpu).unwrap();
    let config = packed.config();
    assert_eq!(reference["image_size"], config.image_size);
    assert_eq!(reference["latent_dim"], config.latent_dim);
    assert!(
        !packed.directions.is_empty(),
        "the page's sliders need directions"
    );

    // The reference's latent vectors are the course's noise of its seed, as the page draws it.
    let seed = reference["seed"].as_u64().expect("seed");
    let n = latents.len() / config.latent_dim;
    let noise = latent_noise(seed, 0, n, config.latent_dim, &Device::Cpu).unwrap();
    assert_eq!(
        noise.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        latents
    );

    let got = packed.sample(&latents, None).unwrap();
    let got = got.flatten_all().unwrap().to_vec1::<f32>().unwrap();
    assert_eq!(got.len(), want.len());
    assert_eq!(got.len(), n * 3 * config.image_size * config.image_size);
    let largest = got
        .iter()
        .zip(&want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    // Other SIMD paths round differently, by about 1e-6; a changed model moves pixels by far
    // more than a level (1/127.5).
    assert!(
        largest < 1e-4,
        "native images differ from the reference by {largest}"
    );
    // Not a blank picture: the generator draws something.
    let spread = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(spread > 0.5, "{spread}");
}

/// Train `config` straight through and, in another folder, interrupted after step 7 and
/// resumed; assert both runs wrote the same bytes. Returns the straight run's metrics.csv.
fn assert_resume_is_exact(config: TrainConfig) -> String {
    assert_resume_is_exact_on(config, &dataset())
}

/// [`assert_resume_is_exact`] on the images `data`.
fn assert_resume_is_exact_on(config: TrainConfig, data: &ImageDataset) -> String {
    let dir = tempfile::tempdir().unwrap();
    let data = data.clone();

    let straight = dir.path().join("straight");
    Trainer::create(config.clone(), &data, "fixture".into(), straight.clone())
        .unwrap()
        .train(None, &mut ignore)
        .unwrap();

    // Interrupted after step 7 (mid-epoch 2, between checkpoints: the last one is at 6), then
    // resumed from a fresh process's point of view.
    let interrupted = dir.path().join("interrupted");
    let mut first = Trainer::create(config, &data, "fixture".into(), interrupted.clone()).unwrap();
    first.train(Some(7), &mut ignore).unwrap();
    let first_seconds = first.training_seconds();
    drop(first);
    // The clock is saved with the checkpoint (taken just before writing it, so a little less
    // than the session's total, which includes the writing) and resumes from there.
    let saved = checkpoint::load_info(&interrupted.join("checkpoints")).unwrap();
    assert!(saved.training_seconds > 0.0 && saved.training_seconds <= first_seconds);
    let mut resumed = Trainer::resume(interrupted.clone(), &data, None).unwrap();
    assert_eq!(resumed.step(), 7);
    assert_eq!(
        resumed.training_seconds(),
        saved.training_seconds,
        "the clock resumes"
    );
    resumed.train(None, &mut ignore).unwrap();
    assert_eq!(resumed.step(), 10);
    let end = checkpoint::load_info(&interrupted.join("checkpoints")).unwrap();
    assert!(
        end.training_seconds > saved.training_seconds,
        "the second session adds its time"
    );

    assert_eq!(
        checkpoint_bytes(&straight),
        checkpoint_bytes(&interrupted),
        "weights, BN statistics, Adam moments"
    );
    let metrics = std::fs::read_to_string(straight.join("metrics.csv")).unwrap();
    assert_eq!(
        metrics,
        std::fs::read_to_string(interrupted.join("metrics.csv")).unwrap(),
        "the same losses at every step, each step once"
    );
    assert_eq!(
        std::fs::read(straight.join("samples/epoch-0002.png")).unwrap(),
        std::fs::read(interrupted.join("samples/epoch-0002.png")).unwrap()
    );
    // Adaptive augmentation's log: the same strength at every move, each move once.
    let augment = |run: &Path| std::fs::read_to_string(run.join("augment.csv")).ok();
    assert_eq!(augment(&straight), augment(&interrupted));
    metrics
}

#[test]
fn resumed_run_is_bit_identical_to_an_uninterrupted_one() {
    assert_resume_is_exact(TrainConfig {
        checkpoint_every: 3,
        ..tiny()
    });
}

#[test]
fn stabilising_switches_train_and_resume_exactly() {
    let bce = assert_resume_is_exact(TrainConfig {
        checkpoint_every: 3,
        ..tiny()
    });
    let mut config = TrainConfig {
        checkpoint_every: 3,
        loss: logogan::train::loss::GanLoss::Hinge,
        ..tiny()
    };
    config.generator_optimizer.lr = 1e-4;
    config.discriminator_optimizer.lr = 4e-4;
    let hinge = assert_resume_is_exact(config);
    assert_ne!(bce, hinge, "the switch changes the training");
    let noisy = assert_resume_is_exact(TrainConfig {
        checkpoint_every: 3,
        instance_noise: 0.2,
        ..tiny()
    });
    assert_ne!(bce, noisy, "instance noise changes the training");
    // The averaged generator changes nothing in training (same metrics), only what is sampled.
    let with_ema = assert_resume_is_exact(TrainConfig {
        checkpoint_every: 3,
        ema_decay: Some(0.9),
        ..tiny()
    });
    assert_eq!(bce, with_ema, "EMA must not feed back into training");
    let augmented = assert_resume_is_exact(TrainConfig {
        checkpoint_every: 3,
        diff_augment: true,
        ..tiny()
    });
    assert_ne!(bce, augmented, "DiffAugment changes the training");
    let mut spectral = TrainConfig {
        checkpoint_every: 3,
        ..tiny()
    };
    spectral.model.discriminator.spectral_norm = true;
    let spectral = assert_resume_is_exact(spectral); // the estimates `u` are checkpointed
    assert_ne!(bce, spectral, "spectral normalisation changes the training");
    // Adaptive augmentation: its strength and the signs of an unfinished group of steps are
    // checkpointed (the checkpoint at step 6 is mid-group: p moves after steps 4 and 8).
    let adaptive = assert_resume_is_exact(TrainConfig {
        checkpoint_every: 3,
        diff_augment: true,
        ada_target: Some(0.6),
        ..tiny()
    });
    assert_ne!(
        augmented, adaptive,
        "p starts at 0, not at fixed DiffAugment's 1"
    );
    // Mirrors and quarter turns on top of DiffAugment: drawn from their own stream, so a resume
    // draws the same ones.
    let turned = assert_resume_is_exact(TrainConfig {
        checkpoint_every: 3,
        diff_augment: true,
        flip_and_turn: true,
        ..tiny()
    });
    assert_ne!(augmented, turned, "the turns change what D sees");
    let last: Vec<f64> = hinge
        .lines()
        .last()
        .unwrap()
        .split(',')
        .filter_map(|v| v.parse().ok())
        .collect();
    assert!(last.iter().all(|v| v.is_finite()), "{last:?}");
}

#[test]
fn impossible_configs_and_bad_checkpoints_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset();
    let refuse = |config: TrainConfig, field: &str| {
        let err = Trainer::create(config, &data, "fixture".into(), dir.path().join("x"))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains(&format!("`{field}`")), "{field}: {err}");
    };
    refuse(
        TrainConfig {
            batch_size: 0,
            ..tiny()
        },
        "batch_size",
    );
    refuse(
        TrainConfig {
            batch_size: 64,
            ..tiny()
        },
        "batch_size",
    ); // more than the 40 images
    let mut lr = tiny();
    lr.generator_optimizer.lr = -0.1;
    refuse(lr, "generator_optimizer.lr");
    let mut size = tiny();
    size.model.generator.image_size = 64;
    size.model.discriminator.image_size = 64;
    refuse(size, "image_size"); // the data is 32×32
    let mut odd = tiny();
    odd.model.generator.image_size = 40;
    refuse(odd, "generator.image_size");
    assert!("quantum"
        .parse::<logogan::device::DeviceChoice>()
        .unwrap_err()
        .to_string()
        .contains("`device`"));

    // Resuming a folder without a checkpoint says so.
    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = Trainer::resume(empty, &data, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("config.json"), "{err}");

    // A half-written checkpoint is reported and left in place; a started run is not overwritten.
    let run = dir.path().join("run");
    Trainer::create(tiny(), &data, "fixture".into(), run.clone())
        .unwrap()
        .train(Some(4), &mut ignore)
        .unwrap();
    let err = Trainer::create(tiny(), &data, "fixture".into(), run.clone())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("--resume"), "{err}");
    let ckpt = run.join("checkpoints/step-0000004.safetensors");
    let bytes = std::fs::read(&ckpt).unwrap();
    std::fs::write(&ckpt, &bytes[..100]).unwrap();
    let err = Trainer::resume(run.clone(), &data, None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("incomplete or damaged"), "{err}");
    assert_eq!(std::fs::read(&ckpt).unwrap().len(), 100);
}

#[test]
fn adaptive_augmentation_moves_p_by_the_rule_and_its_state_is_required() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset();
    let config = TrainConfig {
        epochs: 4,
        diff_augment: true,
        ada_target: Some(0.6),
        ..tiny()
    };
    // Without the augmentation it adapts, or with a target that is not a share: refused.
    for (bad, why) in [
        (
            TrainConfig {
                diff_augment: false,
                ..config.clone()
            },
            "--diff-augment",
        ),
        (
            TrainConfig {
                ada_target: Some(1.5),
                ..config.clone()
            },
            "not in (0, 1)",
        ),
    ] {
        let err = Trainer::create(bad, &data, "fixture".into(), dir.path().join("bad"))
            .err()
            .expect("refused")
            .to_string();
        assert!(err.contains("`ada_target`") && err.contains(why), "{err}");
    }
    let turns_alone = TrainConfig {
        diff_augment: false,
        ada_target: None,
        flip_and_turn: true,
        ..config.clone()
    };
    let err = Trainer::create(turns_alone, &data, "fixture".into(), dir.path().join("bad"))
        .err()
        .expect("refused")
        .to_string();
    assert!(
        err.contains("`flip_and_turn`") && err.contains("--diff-augment"),
        "{err}"
    );

    let run = dir.path().join("ada");
    Trainer::create(config, &data, "fixture".into(), run.clone())
        .unwrap()
        .train(None, &mut ignore)
        .unwrap();
    // 20 steps: p moved after every 4th, each time by 4 × 8 images / 100 kimg, up when the mean
    // sign of D's real scores was above 0.6 and down (never below 0) when not.
    let log = std::fs::read_to_string(run.join("augment.csv")).unwrap();
    let rows: Vec<Vec<f64>> = log
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(log.lines().next(), Some("step,overfitting,p"));
    assert_eq!(
        rows.iter().map(|r| r[0]).collect::<Vec<_>>(),
        [4.0, 8.0, 12.0, 16.0, 20.0]
    );
    let step = 32.0 / 100_000.0;
    let mut p = 0.0f64;
    for row in &rows {
        assert!((-1.0..=1.0).contains(&row[1]), "{row:?}");
        p = (p + (row[1] - 0.6).signum() * step).max(0.0);
        assert!((row[2] - p).abs() < 1e-12, "{row:?}: p {p} expected");
    }
    let saved = checkpoint::load_info(&run.join("checkpoints")).unwrap();
    assert_eq!(saved.augment.map(|a| a.p), Some(p));
    // Its charts include p's.
    let files = draw_charts(&logogan::train::RunDir::new(&run)).unwrap();
    assert_eq!(files.augment_moves, 5);
    assert!(run.join("augment.png").exists() && run.join("augment.svg").exists());

    // A checkpoint index of such a run without the state cannot continue it exactly: refused.
    let index = run.join("checkpoints").join(checkpoint::LATEST);
    let mut info = saved.clone();
    info.augment = None;
    std::fs::write(&index, serde_json::to_vec(&info).unwrap()).unwrap();
    let err = Trainer::resume(run.clone(), &data, Some(5))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("`augment`"), "{err}");
    // Nor with a state no run could have written.
    info.augment = Some(logogan::train::ada::AdaState {
        p: 1.5,
        ..saved.augment.unwrap()
    });
    std::fs::write(&index, serde_json::to_vec(&info).unwrap()).unwrap();
    let err = Trainer::resume(run, &data, Some(5))
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains("not a probability"), "{err}");
}

#[test]
fn divergence_stops_the_run_and_keeps_the_last_good_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset();
    let run = dir.path().join("run");
    let mut config = tiny();
    config.checkpoint_every = 2;
    let mut trainer = Trainer::create(config, &data, "fixture".into(), run.clone()).unwrap();
    trainer.train(Some(2), &mut ignore).unwrap();
    // Poison the discriminator's output layer, as an exploding update would: the logits, the
    // losses and then every weight turn NaN.
    let d_map = trainer.core.gan.discriminator_vars.data().lock().unwrap();
    let w = &d_map["block3.conv.weight"];
    w.set(&(w.as_tensor() * f64::NAN).unwrap()).unwrap();
    drop(d_map);
    let err = trainer.train(None, &mut ignore).unwrap_err().to_string();
    assert!(
        err.contains("diverged at step 3: D loss NaN")
            && err.contains("checkpoint (step 2) is kept"),
        "{err}"
    );
    let rows = read_metrics(&run.join("metrics.csv")).unwrap();
    assert!(
        rows[2].d_loss.is_nan(),
        "the bad step is logged as evidence"
    );
    let info = logogan::train::checkpoint::load_info(&run.join("checkpoints")).unwrap();
    assert_eq!(info.step, 2, "the good checkpoint is still the latest");
}

#[test]
fn instance_noise_anneals_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let config = TrainConfig {
        instance_noise: 0.2,
        ..tiny()
    };
    let mut trainer =
        Trainer::create(config, &dataset(), "fixture".into(), dir.path().join("run")).unwrap();
    assert_eq!(trainer.instance_noise_sigma(), 0.2);
    trainer.train(Some(5), &mut ignore).unwrap(); // half of the 10 steps
    assert!((trainer.instance_noise_sigma() - 0.1).abs() < 1e-12);
    trainer.train(None, &mut ignore).unwrap();
    assert_eq!(trainer.instance_noise_sigma(), 0.0);
}

#[test]
fn the_averaged_generator_is_checkpointed_and_sampled() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    let config = TrainConfig {
        ema_decay: Some(0.5),
        ..tiny()
    };
    let data = dataset();
    let mut trainer = Trainer::create(config, &data, "fixture".into(), run.clone()).unwrap();
    trainer.train(None, &mut ignore).unwrap();
    let z = logogan::model::latent_noise(3, 0, 4, 100, &Device::Cpu).unwrap();
    let from_ema = trainer.generate(&z).unwrap();
    let from_g = trainer.core.gan.generator.forward_t(&z, false).unwrap();
    let differ = (&from_ema - &from_g)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert!(differ > 1e-4, "the average lags behind the trained weights");
    // `generate` from the checkpoint gives the averaged generator's images.
    let loaded = TrainedGenerator::load(&run, &Device::Cpu).unwrap();
    let again = loaded.generator.forward_t(&z, false).unwrap();
    let same = (&from_ema - &again)
        .unwrap()
        .abs()
        .unwrap()
        .max_all()
        .unwrap()
        .to_scalar::<f32>()
        .unwrap();
    assert_eq!(same, 0.0);
}

#[test]
fn the_trained_generator_is_the_one_a_run_without_the_average_has() {
    let dir = tempfile::tempdir().unwrap();
    let data = dataset();
    let train = |name: &str, ema_decay: Option<f64>| {
        let run = dir.path().join(name);
        let config = TrainConfig {
            ema_decay,
            ..tiny()
        };
        Trainer::create(config, &data, "fixture".into(), run.clone())
            .unwrap()
            .train(None, &mut ignore)
            .unwrap();
        run
    };
    let (averaged, plain) = (train("ema", Some(0.9)), train("plain", None));
    let pixels = |g: TrainedGenerator| {
        let images = g.images(&g.noise(4, 7).unwrap()).unwrap();
        images
            .into_iter()
            .flat_map(|i| i.into_raw())
            .collect::<Vec<u8>>()
    };
    let device = Device::Cpu;
    let trained = pixels(TrainedGenerator::load_trained(&averaged, &device).unwrap());
    assert_eq!(
        trained,
        pixels(TrainedGenerator::load(&plain, &device).unwrap()),
        "the average never feeds back: the trained G is the same as without it"
    );
    assert_ne!(
        trained,
        pixels(TrainedGenerator::load(&averaged, &device).unwrap()),
        "`load` samples the average"
    );
}

/// Chapter 7's conditional GAN: it trains and resumes exactly (its families come back from the
/// run's own families.csv), samples in the training set's proportions or one family on demand,
/// and refuses images without families, a family it does not have, and a run that lost its
/// families.
#[test]
fn a_conditional_run_trains_resumes_and_samples_a_family() {
    let mut config = TrainConfig {
        checkpoint_every: 3,
        ..tiny()
    };
    config.model = config.model.clone().conditional(2);
    // Family 0: the first 30 images, family 1: the last 10.
    let families: Vec<u32> = (0..40).map(|i| u32::from(i >= 30)).collect();
    let data = dataset().with_families(families.clone()).unwrap();
    let conditional = assert_resume_is_exact_on(config.clone(), &data);
    assert_ne!(
        conditional,
        assert_resume_is_exact(TrainConfig {
            checkpoint_every: 3,
            ..tiny()
        })
    );

    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    Trainer::create(config.clone(), &data, "fixture".into(), run.clone())
        .unwrap()
        .train(None, &mut ignore)
        .unwrap();
    let kept = logogan::metrics::families::load_families(&run.join("families.csv"), &data.names);
    assert_eq!(kept.unwrap(), (families, 2));

    let mut g = TrainedGenerator::load(&run, &Device::Cpu).unwrap();
    assert_eq!(g.family_sizes, vec![30, 10]);
    let spread = g.families(8).unwrap().unwrap().to_vec1::<u32>().unwrap();
    assert_eq!(spread, [0, 0, 0, 0, 0, 0, 1, 1], "the set's 3:1");
    let z = g.noise(4, 3).unwrap();
    let pixels = |g: &TrainedGenerator| {
        let images = g.images(&z).unwrap();
        images
            .iter()
            .flat_map(|i| i.as_raw().clone())
            .collect::<Vec<u8>>()
    };
    g.set_family(Some(1)).unwrap();
    let ones = pixels(&g);
    g.set_family(Some(0)).unwrap();
    assert_ne!(
        pixels(&g),
        ones,
        "another family, other images from the same noise"
    );
    let err = g.set_family(Some(2)).unwrap_err().to_string();
    assert!(err.contains("`class`") && err.contains("0 to 1"), "{err}");

    let refused = |result: logogan::Result<Trainer>| match result {
        Ok(_) => panic!("accepted"),
        Err(e) => e.to_string(),
    };
    let err = refused(Trainer::create(
        config.clone(),
        &dataset(),
        "fixture".into(),
        dir.path().join("none"),
    ));
    assert!(err.contains("cluster them first"), "{err}");
    let three = dataset()
        .with_families((0..40).map(|i| i % 3).collect())
        .unwrap();
    let err = refused(Trainer::create(
        config,
        &three,
        "fixture".into(),
        dir.path().join("three"),
    ));
    assert!(err.contains("family 2"), "{err}");
    std::fs::remove_file(run.join("families.csv")).unwrap();
    let err = refused(Trainer::resume(run, &data, Some(3)));
    assert!(err.contains("families.csv"), "{err}");
}

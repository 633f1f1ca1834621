//! Chapter 3's pipeline on a folder of fixtures, good and hostile: every file gets one row in
//! report.csv with the right reason, bad files are named in the report and the run goes on, and
//! nothing is written outside the output folder.

use std::collections::HashMap;
use std::path::Path;

use logogan::data::augment::AugmentConfig;
use logogan::data::clean::{clean_folder, read_report, CleanConfig};
use logogan::data::dataset::ImageDataset;
use logogan::data::pipeline::{build_dataset, DatasetConfig};
use logogan::paths::DataLayout;

fn svg(body: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" viewBox="0 0 100 100">{body}</svg>"#
    )
}

fn png_bytes(image: &image::RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    image
        .write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png)
        .unwrap();
    out
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    let path = dir.join(name);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

/// A folder of fixtures: name → the reason cleaning must give.
fn fixtures(raw: &Path) -> HashMap<&'static str, &'static str> {
    write(
        raw,
        "good/circle.svg",
        svg(r##"<circle cx="50" cy="50" r="40" fill="#d02020"/>"##),
    );
    write(
        raw,
        "good/circle_blue.svg",
        svg(r##"<circle cx="50" cy="50" r="40" fill="#2020d0"/>"##),
    );
    write(
        raw,
        "good/triangle.svg",
        svg(r##"<path d="M50 10 L90 90 L10 90 Z" fill="#208020"/>"##),
    );
    // A transparent PNG logo: a green ring.
    let mut ring = image::RgbaImage::new(80, 80);
    for (x, y, p) in ring.enumerate_pixels_mut() {
        let d = ((x as f32 - 40.0).powi(2) + (y as f32 - 40.0).powi(2)).sqrt();
        if (20.0..30.0).contains(&d) {
            *p = image::Rgba([20, 160, 60, 255]);
        }
    }
    let ring_png = png_bytes(&ring);
    write(raw, "good/ring.png", &ring_png);
    write(raw, "bad/truncated.png", &ring_png[..ring_png.len() / 3]);
    write(
        raw,
        "bad/truncated.svg",
        &svg(r#"<circle cx="50" cy="50" r="40"/>"#)[..60],
    );
    write(
        raw,
        "bad/passwd.svg",
        svg(r#"<image xlink:href="file:///etc/passwd" width="100" height="100"/>"#),
    );
    write(
        raw,
        "bad/remote.svg",
        svg(r#"<image href="http://127.0.0.1:9/logo.png" width="100" height="100"/>"#),
    );
    write(
        raw,
        "bad/huge-canvas.svg",
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="50000" height="50000"><rect x="10000" y="10000" width="30000" height="30000" fill="#fa0"/></svg>"##,
    );
    // A PNG whose header claims 50 000 × 50 000 pixels (with a correct CRC).
    let mut bomb = png_bytes(&image::RgbaImage::new(1, 1));
    bomb[16..20].copy_from_slice(&50_000u32.to_be_bytes());
    bomb[20..24].copy_from_slice(&50_000u32.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&bomb[12..29]);
    bomb[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    write(raw, "bad/bomb.png", bomb);
    write(
        raw,
        "bad/page.png",
        "<!DOCTYPE html><html><body>404</body></html>",
    );
    write(
        raw,
        "drop/white-on-white.svg",
        svg(r##"<circle cx="50" cy="50" r="40" fill="#ffffff"/>"##),
    );
    write(
        raw,
        "drop/card.svg",
        svg(
            r##"<rect width="100" height="100" fill="#123456"/><circle cx="50" cy="50" r="20" fill="#fff"/>"##,
        ),
    );
    write(
        raw,
        "drop/wordmark.svg",
        svg(&(0..6)
            .map(|i| {
                format!(
                    r##"<rect x="{}" y="40" width="10" height="16" fill="#333"/>"##,
                    4 + i * 16
                )
            })
            .collect::<String>()),
    );
    write(
        raw,
        "drop/banner.svg",
        svg(r##"<rect x="0" y="45" width="100" height="10" fill="#a0a"/>"##),
    );
    // Hostile SVGs of a few hundred bytes that cost minutes or aborted the process.
    write(
        raw,
        "bad/turbulence.svg",
        svg(
            r#"<filter id="f"><feTurbulence baseFrequency="0.9" numOctaves="10000"/></filter><rect width="100" height="100" filter="url(#f)"/>"#,
        ),
    );
    write(
        raw,
        "bad/pattern-tile.svg",
        svg(
            r#"<pattern id="p" width="100000" height="100000" patternUnits="userSpaceOnUse"><rect width="50000" height="50000"/></pattern><rect width="100" height="100" fill="url(#p)"/>"#,
        ),
    );
    write(raw, "notes.txt", "not an image extension: ignored");
    HashMap::from([
        ("bad/turbulence.svg", "svg-too-complex"),
        ("bad/pattern-tile.svg", "svg-too-complex"),
        ("good/circle.svg", "kept"),
        ("good/circle_blue.svg", "near-duplicate"),
        ("good/triangle.svg", "kept"),
        ("good/ring.png", "kept"),
        ("bad/huge-canvas.svg", "kept"),
        ("bad/truncated.png", "corrupt"),
        ("bad/truncated.svg", "corrupt"),
        ("bad/passwd.svg", "svg-external-ref"),
        ("bad/remote.svg", "svg-external-ref"),
        ("bad/bomb.png", "too-many-pixels"),
        ("bad/page.png", "not-an-image"),
        ("drop/white-on-white.svg", "near-blank"),
        ("drop/card.svg", "non-white-background"),
        ("drop/wordmark.svg", "text-heavy"),
        ("drop/banner.svg", "text-heavy"),
    ])
}

#[test]
fn every_file_gets_its_reason_and_bad_files_do_not_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let raw = dir.path().join("raw");
    let expected = fixtures(&raw);
    let processed = dir.path().join("processed");
    let cfg = CleanConfig {
        image_size: 32,
        ..CleanConfig::default()
    };
    let summary = clean_folder(
        &raw,
        &processed,
        &cfg,
        &indicatif::ProgressBar::hidden(),
        false,
    )
    .unwrap();

    let report = read_report(&processed.join("report.csv")).unwrap();
    assert_eq!(
        report.len(),
        expected.len(),
        "one row per image file, notes.txt ignored"
    );
    for row in &report {
        assert_eq!(
            row.reason,
            expected[row.file.as_str()],
            "{}: {}",
            row.file,
            row.detail
        );
    }
    let passwd = report.iter().find(|r| r.file == "bad/passwd.svg").unwrap();
    assert!(
        passwd.detail.contains("file:///etc/passwd"),
        "{}",
        passwd.detail
    );
    let dup = report
        .iter()
        .find(|r| r.file == "good/circle_blue.svg")
        .unwrap();
    assert!(
        dup.duplicate_of.starts_with("good/circle.svg"),
        "{}",
        dup.duplicate_of
    );
    assert_eq!(summary.kept, 4);
    assert_eq!(summary.counts["text-heavy"], 2);

    // Kept images are 32×32 PNGs on white, named after their source.
    let mut names: Vec<_> = std::fs::read_dir(&summary.clean_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "bad__huge-canvas.png",
            "good__circle.png",
            "good__ring.png",
            "good__triangle.png"
        ]
    );
    let circle = image::open(summary.clean_dir.join("good__circle.png"))
        .unwrap()
        .to_rgb8();
    assert_eq!(circle.dimensions(), (32, 32));
    assert_eq!(circle.get_pixel(0, 0).0, [255, 255, 255], "margin is white");
    assert_eq!(
        circle.get_pixel(16, 16).0,
        [208, 32, 32],
        "centre keeps the colour"
    );

    // Everything written is inside the output folder.
    let mut top: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    top.sort();
    assert_eq!(top, ["processed", "raw"]);
    let table = summary.table();
    assert!(
        table.contains("| kept | 4 |") && table.contains("| **total** | 17 |"),
        "{table}"
    );
}

#[test]
fn pipeline_builds_a_loadable_augmented_set_and_rebuilds_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let layout = DataLayout::new(dir.path());
    // No vendored sources in this layout: an empty manifest, and our fixtures as raw images.
    std::fs::create_dir_all(layout.vendor()).unwrap();
    std::fs::write(layout.vendor().join("manifest.json"), r#"{"sources": []}"#).unwrap();
    fixtures(&layout.raw());
    let cfg = DatasetConfig {
        clean: CleanConfig {
            image_size: 32,
            ..CleanConfig::default()
        },
        augment: Some(AugmentConfig::default()),
        split: Default::default(),
    };
    let report = build_dataset(&layout, &cfg, false).unwrap();
    assert_eq!(report.clean.kept, 4);
    // One logo at least is held out, with its variants; the rest train.
    assert!(report.held_out_logos >= 1 && report.train_logos >= 1);
    assert_eq!(report.train_logos + report.held_out_logos, 4);
    assert_eq!(report.train_images, 3 * report.train_logos, "×3");
    assert_eq!(report.held_out_images, 3 * report.held_out_logos);
    assert!(report.preview_clean.exists() && report.preview_augment.as_ref().unwrap().exists());

    let data = ImageDataset::load(&report.train_dir, 32, &candle_core::Device::Cpu).unwrap();
    assert_eq!(data.len(), report.train_images);
    let b = data.len().min(5);
    let batch = data
        .batches(b, 0, 0, true)
        .unwrap()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(batch.dims(), &[b, 3, 32, 32]);
    let (min, max) = (
        batch.min_all().unwrap().to_scalar::<f32>().unwrap(),
        batch.max_all().unwrap().to_scalar::<f32>().unwrap(),
    );
    assert!((-1.0..=-0.5).contains(&min) && max == 1.0, "{min} {max}");

    // A stricter rebuild replaces the old outputs instead of mixing with them.
    std::fs::remove_file(layout.raw().join("good/triangle.svg")).unwrap();
    let report = build_dataset(
        &layout,
        &DatasetConfig {
            augment: None,
            ..cfg
        },
        false,
    )
    .unwrap();
    assert_eq!(report.clean.kept, 3);
    assert_eq!(report.train_images + report.held_out_images, 3);
    assert!(!report.clean.clean_dir.join("good__triangle.png").exists());
}

#[test]
fn cleaning_that_keeps_nothing_says_why_and_keeps_the_previous_set() {
    let dir = tempfile::tempdir().unwrap();
    let (raw, processed) = (dir.path().join("raw"), dir.path().join("processed"));
    write(
        &raw,
        "a.svg",
        svg(r##"<circle cx="50" cy="50" r="40" fill="#d02020"/>"##),
    );
    let cfg = CleanConfig::default();
    let quiet = indicatif::ProgressBar::hidden();
    clean_folder(&raw, &processed, &cfg, &quiet, false).unwrap();
    assert!(processed.join("clean/a.png").exists());

    // Now only banners and a broken file: nothing survives.
    std::fs::remove_file(raw.join("a.svg")).unwrap();
    write(
        &raw,
        "banner.svg",
        svg(r##"<rect x="0" y="45" width="100" height="10" fill="#a0a"/>"##),
    );
    write(&raw, "broken.png", b"\x89PNG\r\n\x1a\n broken");
    let err = clean_folder(&raw, &processed, &cfg, &quiet, false)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("kept none of the 2 images")
            && err.contains("text-heavy 1")
            && err.contains("corrupt 1")
            && err.contains("report-kept-none.csv"),
        "{err}"
    );
    let report = read_report(&processed.join("report-kept-none.csv")).unwrap();
    assert_eq!(report.len(), 2, "the report names each file's reason");
    assert!(
        processed.join("clean/a.png").exists(),
        "the previous clean set is kept"
    );
    let previous = read_report(&processed.join("report.csv")).unwrap();
    assert_eq!(
        previous[0].file, "a.svg",
        "with the report that describes it"
    );
}

#[test]
fn missing_raw_folder_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let err = clean_folder(
        &dir.path().join("nope"),
        dir.path(),
        &CleanConfig::default(),
        &indicatif::ProgressBar::hidden(),
        false,
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("nope") && err.contains("chapter-02"), "{err}");
}

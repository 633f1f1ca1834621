//! Hostile input against the real `chapter-03` binary, measured from outside: a data folder of
//! decompression bombs and SVGs that cost minutes or abort, among ordinary logos. The command
//! must end in bounded time, its peak memory must stay under a bound whatever the number of
//! threads, every bad file must be named in the report with its reason, and nothing may be
//! written outside the data folder. (The other hostile cases live beside the code they attack:
//! src/data/raster.rs, tests/gather.rs, tests/cleaning.rs, src/data/sources.rs,
//! src/train/checkpoint.rs, src/train/loss_log.rs.)
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ImageEncoder, Rgba, RgbaImage};
use logogan::data::clean::read_report;

fn svg(body: &str) -> String {
    format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" width="100" height="100">{body}</svg>"#
    )
}

/// An 8192 × 8192 PNG of a few hundred kilobytes: white, with one small dot. Decoded it is
/// 256 MiB of RGBA, and cleaning makes RGB and mask copies of it.
fn png_bomb() -> Vec<u8> {
    let mut image = RgbaImage::from_pixel(8192, 8192, Rgba([255, 255, 255, 255]));
    for y in 4000..4010 {
        for x in 4000..4010 {
            image.put_pixel(x, y, Rgba([0, 0, 0, 255]));
        }
    }
    let mut bytes = Vec::new();
    PngEncoder::new_with_quality(&mut bytes, CompressionType::Default, FilterType::Sub)
        .write_image(image.as_raw(), 8192, 8192, image::ExtendedColorType::Rgba8)
        .unwrap();
    bytes
}

/// Peak resident memory of a running process, in bytes (its high-water mark).
fn peak_memory(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn chapter_03_on_bombs_and_costly_svgs_ends_in_bounded_time_and_memory() {
    let sandbox = tempfile::tempdir().unwrap();
    let data = sandbox.path().join("data");
    let raw = data.join("raw/hostile");
    std::fs::create_dir_all(&raw).unwrap();
    std::fs::create_dir_all(data.join("vendor")).unwrap();
    write(&data.join("vendor"), "manifest.json", r#"{"sources": []}"#);

    // Ordinary logos, so the run has something to keep.
    let shapes = [
        r##"<circle cx="50" cy="50" r="40" fill="#d02020"/>"##,
        r##"<path d="M50 10 L90 90 L10 90 Z" fill="#208020"/>"##,
        r##"<rect x="20" y="20" width="60" height="60" fill="#2020d0"/>"##,
        r##"<path d="M20 20 L80 80 M80 20 L20 80" stroke="#000" stroke-width="12"/>"##,
        r##"<ellipse cx="50" cy="50" rx="40" ry="20" fill="#c08000"/>"##,
        r##"<path d="M50 5 L61 39 L97 39 L68 60 L79 95 L50 73 L21 95 L32 60 L3 39 L39 39 Z" fill="#800080"/>"##,
        r##"<circle cx="50" cy="50" r="40" fill="none" stroke="#008080" stroke-width="10"/>"##,
        r##"<path d="M10 50 Q50 0 90 50 Q50 100 10 50 Z" fill="#404040"/>"##,
    ];
    for (i, shape) in shapes.iter().enumerate() {
        write(&raw, &format!("good-{i}.svg"), svg(shape));
    }
    let bomb = png_bomb();
    for i in 0..3 {
        write(&raw, &format!("bomb-{i}.png"), &bomb);
    }
    let mut nested_patterns = String::from(
        r#"<pattern id="p0" width="50" height="50" patternUnits="userSpaceOnUse"><rect width="25" height="25"/></pattern>"#,
    );
    for level in 1..30 {
        nested_patterns += &format!(
            r#"<pattern id="p{level}" width="50" height="50" patternUnits="userSpaceOnUse"><rect width="50" height="50" fill="url(#p{0})"/><rect width="25" height="25" fill="url(#p{0})"/></pattern>"#,
            level - 1
        );
    }
    let hostile_svgs = [
        (
            "turbulence.svg",
            svg(
                r#"<filter id="f"><feTurbulence baseFrequency="0.9" numOctaves="10000"/></filter><rect width="100" height="100" filter="url(#f)"/>"#,
            ),
        ),
        (
            "blur-chain.svg",
            svg(&format!(
                r#"<filter id="f">{}</filter><rect width="100" height="100" filter="url(#f)"/>"#,
                r#"<feGaussianBlur stdDeviation="5"/>"#.repeat(3000)
            )),
        ),
        (
            "pattern-tile.svg",
            svg(
                r#"<pattern id="p" width="100000" height="100000" patternUnits="userSpaceOnUse"><rect width="50000" height="50000"/></pattern><rect width="100" height="100" fill="url(#p)"/>"#,
            ),
        ),
        (
            "nested-patterns.svg",
            svg(&format!(
                r#"{nested_patterns}<rect width="100" height="100" fill="url(#p29)"/>"#
            )),
        ),
        (
            "morphology.svg",
            svg(
                r#"<filter id="f"><feMorphology radius="100000"/></filter><rect width="100" height="100" filter="url(#f)"/>"#,
            ),
        ),
    ];
    for (name, text) in &hostile_svgs {
        write(&raw, name, text);
    }

    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_chapter-03"))
        .args([
            "--data-dir",
            data.to_str().unwrap(),
            "--size",
            "32",
            "--no-augment",
        ])
        .current_dir(sandbox.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut peak = 0;
    let status = loop {
        if let Some(bytes) = peak_memory(child.id()) {
            peak = peak.max(bytes);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > Duration::from_secs(300) {
            child.kill().unwrap();
            panic!("chapter-03 still running after 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    let seconds = start.elapsed().as_secs_f64();
    assert!(status.success(), "{stderr}");
    eprintln!(
        "chapter-03 on hostile files: {seconds:.1} s, peak {} MB",
        peak >> 20
    );

    // Before the fixes: the pattern tile aborted the process (a 262 GB allocation), the nested
    // patterns took 50 s and the turbulence minutes.
    assert!(seconds < 120.0, "took {seconds:.0} s");
    // One bomb decoded at a time: ≈ 0.6 GB. Two at once (one per core, as before the shared
    // decode budget) peaked at ≈ 1.1 GB.
    assert!(peak < 850 << 20, "peak memory {} MB", peak >> 20);

    let report = read_report(&data.join("processed/32px/report.csv")).unwrap();
    let reason = |file: &str| {
        report
            .iter()
            .find(|r| r.file == format!("hostile/{file}"))
            .map(|r| r.reason.clone())
            .unwrap_or_else(|| panic!("{file} missing from the report"))
    };
    for (name, _) in &hostile_svgs {
        assert_eq!(reason(name), "svg-too-complex", "{name}");
        // Bad input is printed as a warning naming the file.
        assert!(stderr.contains(name), "{name} not named in:\n{stderr}");
    }
    for i in 0..3 {
        assert_eq!(reason(&format!("bomb-{i}.png")), "near-blank");
    }
    let kept = report.iter().filter(|r| r.is_kept()).count();
    assert_eq!(kept, shapes.len(), "the ordinary logos are kept");

    // Nothing written outside the data folder.
    let top: Vec<_> = std::fs::read_dir(sandbox.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(top, ["data"]);
}

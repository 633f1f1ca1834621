//! Chapter 3: from a folder of raw logos to a folder of clean, square, white-background images
//! of one size, with a report that says what happened to every file.
//!
//! For every raw file, in parallel:
//! 1. load it safely ([`crate::data::raster`]): SVG rendered with resvg, rasters decoded under limits;
//! 2. flatten transparency onto white;
//! 3. drop it if its border is not white (a photo, a logo on a coloured card);
//! 4. drop it if it is near-blank (e.g. a white brand colour on white);
//! 5. trim to the ink, drop it if it looks like words ([`rules::text_measures`]);
//! 6. pad to a square with a margin and resize (Lanczos3) to the image size;
//! 7. hash it perceptually.
//!
//! Then, in a fixed order, near-duplicates are dropped (the colourful copy wins), the kept
//! images are written, and `report.csv` / `summary.csv` are saved.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use image::RgbImage;
use rayon::prelude::*;

use super::format::ImageFormat;
use super::raster::{load_image, LoadLimits};
use super::rules::{self, TextMeasures};
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::{replace_dir, safe_file_name, save_png, staging_dir, write_atomic, write_csv};

/// Image sizes the models of chapter 4 can produce.
pub const SUPPORTED_SIZES: [u32; 3] = [32, 64, 128];

/// Thresholds of the cleaning rules. `Default` is what `chapter-03` uses.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CleanConfig {
    /// Side of the output images, in pixels (32, 64 or 128).
    pub image_size: u32,
    /// White margin around the logo, as a fraction of the side.
    pub margin: f32,
    /// A pixel is "ink" when some channel is more than this far from 255.
    pub ink_threshold: u8,
    /// Drop images with less ink than this fraction of their pixels.
    pub min_ink_fraction: f32,
    /// Drop images whose outer ring is less white than this fraction.
    pub min_border_white: f32,
    /// Drop content boxes wider (or taller) than this ratio: banners and wordmarks.
    pub max_aspect: f32,
    /// Drop images with more than this many letter-like shapes in a row.
    pub max_glyphs_in_row: usize,
    /// Two images whose perceptual hashes (256 bits) differ in at most this many bits are
    /// near-duplicates.
    pub max_duplicate_distance: u32,
    /// Bounds on the files that are read.
    pub limits: LoadLimits,
}

impl Default for CleanConfig {
    fn default() -> Self {
        Self {
            image_size: 64,
            margin: 0.08,
            ink_threshold: 40,
            min_ink_fraction: 0.01,
            min_border_white: 0.5,
            max_aspect: 3.0,
            max_glyphs_in_row: 3,
            max_duplicate_distance: 12,
            limits: LoadLimits::default(),
        }
    }
}

impl CleanConfig {
    /// Refuse impossible settings, naming the field.
    pub fn validate(&self) -> Result<()> {
        if !SUPPORTED_SIZES.contains(&self.image_size) {
            return Err(Error::config(
                "image_size",
                format!("{} is not one of {SUPPORTED_SIZES:?}", self.image_size),
            ));
        }
        if !(0.0..0.45).contains(&self.margin) {
            return Err(Error::config(
                "margin",
                format!("{} is not in [0, 0.45)", self.margin),
            ));
        }
        for (field, v) in [
            ("min_ink_fraction", self.min_ink_fraction),
            ("min_border_white", self.min_border_white),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(Error::config(field, format!("{v} is not in [0, 1]")));
            }
        }
        if self.max_aspect < 1.0 {
            return Err(Error::config(
                "max_aspect",
                format!("{} is below 1", self.max_aspect),
            ));
        }
        if self.limits.svg_render_size < self.image_size {
            return Err(Error::config(
                "limits.svg_render_size",
                format!(
                    "{} is below the image size {}",
                    self.limits.svg_render_size, self.image_size
                ),
            ));
        }
        Ok(())
    }
}

/// One row of `report.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReportRow {
    /// Path of the raw file, relative to the raw folder.
    pub file: String,
    /// `kept` or `dropped`.
    pub status: String,
    /// Short reason code (`kept`, `corrupt`, `near-blank`, `text-heavy`, …).
    pub reason: String,
    /// Human-readable detail for the reason.
    pub detail: String,
    pub format: String,
    pub source_width: u32,
    pub source_height: u32,
    pub ink_fraction: f32,
    pub border_white: f32,
    pub aspect: f32,
    pub components: usize,
    pub glyphs_in_row: usize,
    /// Perceptual hash (base64), empty when not computed.
    pub phash: String,
    /// For near-duplicates: the kept file it duplicates, and the distance in bits.
    pub duplicate_of: String,
    /// Output file name in `clean/`, for kept images.
    pub output: String,
}

impl ReportRow {
    fn new(file: &str) -> Self {
        Self {
            file: file.to_string(),
            status: "dropped".into(),
            reason: String::new(),
            detail: String::new(),
            format: String::new(),
            source_width: 0,
            source_height: 0,
            ink_fraction: 0.0,
            border_white: 0.0,
            aspect: 0.0,
            components: 0,
            glyphs_in_row: 0,
            phash: String::new(),
            duplicate_of: String::new(),
            output: String::new(),
        }
    }

    fn drop(mut self, reason: &str, detail: impl Into<String>) -> Self {
        self.status = "dropped".into();
        self.reason = reason.into();
        self.detail = detail.into();
        self
    }

    pub fn is_kept(&self) -> bool {
        self.status == "kept"
    }

    /// True when the file itself is bad (unreadable, unsafe), as opposed to a rule's verdict.
    pub fn is_bad_input(&self) -> bool {
        BAD_INPUT_REASONS.contains(&self.reason.as_str())
    }
}

/// Reasons that mean "this file is broken or unsafe", printed as warnings while cleaning.
const BAD_INPUT_REASONS: [&str; 10] = [
    "unreadable",
    "too-large",
    "not-an-image",
    "corrupt",
    "too-many-pixels",
    "svg-external-ref",
    "svg-bad-size",
    "svg-too-complex",
    "too-slow",
    "over-memory-budget",
];

/// Result of [`clean_folder`].
#[derive(Debug, Clone)]
pub struct CleanSummary {
    pub rows: Vec<ReportRow>,
    /// Number of files per reason code (`kept` included).
    pub counts: BTreeMap<String, usize>,
    pub kept: usize,
    pub clean_dir: PathBuf,
    pub seconds: f64,
}

impl CleanSummary {
    /// The summary as a small Markdown table, most frequent reason first.
    pub fn table(&self) -> String {
        let mut counts: Vec<_> = self.counts.iter().collect();
        counts.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let total = self.rows.len().max(1);
        let mut out = String::from("| reason | images | share |\n|---|---:|---:|\n");
        for (reason, n) in counts {
            out.push_str(&format!(
                "| {reason} | {n} | {:.1} % |\n",
                100.0 * *n as f64 / total as f64
            ));
        }
        out.push_str(&format!("| **total** | {} | 100 % |\n", self.rows.len()));
        out
    }
}

/// Files under `dir` (recursively, sorted, symbolic links and hidden files skipped) whose
/// extension is an image format. Paths are relative to `dir`.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
        for entry in std::fs::read_dir(dir).at(dir)? {
            let entry = entry.at(dir)?;
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            let kind = entry.file_type().at(entry.path())?;
            let path = entry.path();
            if kind.is_dir() {
                walk(root, &path, out)?;
            } else if kind.is_file()
                && path
                    .extension()
                    .and_then(|e| e.to_str())
                    .and_then(ImageFormat::from_extension)
                    .is_some()
            {
                out.push(path.strip_prefix(root).expect("under root").to_path_buf());
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out)?;
    out.sort();
    Ok(out)
}

/// An image that passed the per-file rules, waiting for the duplicate check.
struct Candidate {
    row: ReportRow,
    image: RgbImage,
    hash: image_hasher::ImageHash,
    colourful: bool,
}

/// Apply the per-file rules to one raw file.
// ANCHOR: clean_one
fn clean_one(raw_dir: &Path, rel: &Path, cfg: &CleanConfig) -> (ReportRow, Option<Candidate>) {
    let shown = rel.to_string_lossy().replace('\\', "/");
    let row = ReportRow::new(&shown);
    let path = raw_dir.join(rel);
    let bytes = match std::fs::metadata(&path) {
        Ok(meta) if meta.len() > cfg.limits.max_file_bytes => {
            let detail = format!(
                "file is {} bytes, over the {}-byte limit",
                meta.len(),
                cfg.limits.max_file_bytes
            );
            return (row.drop("too-large", detail), None);
        }
        Ok(_) => match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) => return (row.drop("unreadable", e.to_string()), None),
        },
        Err(e) => return (row.drop("unreadable", e.to_string()), None),
    };
    let loaded = match load_image(&bytes, &cfg.limits) {
        Ok(loaded) => loaded,
        Err(e) => return (row.drop(e.code(), e.to_string()), None),
    };
    let mut row = row;
    row.format = loaded.format.to_string();
    (row.source_width, row.source_height) = loaded.pixels.dimensions();
    let (w, h) = loaded.pixels.dimensions();

    let flat = rules::flatten_on_white(&loaded.pixels);
    row.border_white = rules::border_white_fraction(&flat, cfg.ink_threshold);
    if row.border_white < cfg.min_border_white {
        let detail = format!(
            "only {:.0} % of the border is white (need {:.0} %)",
            100.0 * row.border_white,
            100.0 * cfg.min_border_white
        );
        return (row.drop("non-white-background", detail), None);
    }
    let mask = rules::ink_mask(&flat, cfg.ink_threshold);
    row.ink_fraction = rules::ink_fraction(&mask);
    let bbox = match rules::content_bbox(&mask, w, h) {
        Some(bbox) if row.ink_fraction >= cfg.min_ink_fraction => bbox,
        _ => {
            let detail = format!(
                "{:.2} % ink (need {:.2} %)",
                100.0 * row.ink_fraction,
                100.0 * cfg.min_ink_fraction
            );
            return (row.drop("near-blank", detail), None);
        }
    };
    let TextMeasures {
        aspect,
        components,
        glyphs_in_row,
    } = rules::text_measures(&mask, w, h, bbox);
    (row.aspect, row.components, row.glyphs_in_row) = (aspect, components, glyphs_in_row);
    let stretch = aspect.max(1.0 / aspect);
    if stretch > cfg.max_aspect {
        let detail = format!(
            "content is {stretch:.1}:1 (max {:.1}:1), like a wordmark or banner",
            cfg.max_aspect
        );
        return (row.drop("text-heavy", detail), None);
    }
    if glyphs_in_row > cfg.max_glyphs_in_row {
        let detail = format!(
            "{glyphs_in_row} letter-like shapes in a row (max {})",
            cfg.max_glyphs_in_row
        );
        return (row.drop("text-heavy", detail), None);
    }

    let square = rules::crop_pad_square(&flat, bbox, cfg.margin);
    let image = rules::resize_square(&square, cfg.image_size);
    let hash = rules::perceptual_hash(&image);
    row.phash = hash.to_base64();
    let colourful = is_colourful(&image, cfg.ink_threshold);
    (
        row.clone(),
        Some(Candidate {
            row,
            image,
            hash,
            colourful,
        }),
    )
}
// ANCHOR_END: clean_one

/// True when a visible share of the ink is saturated colour (not black/grey).
fn is_colourful(image: &RgbImage, ink_threshold: u8) -> bool {
    let (mut ink, mut colour) = (0u32, 0u32);
    for p in image.pixels() {
        if rules::darkness(p) > ink_threshold {
            ink += 1;
            let [r, g, b] = p.0;
            let (max, min) = (r.max(g).max(b) as f32, r.min(g).min(b) as f32);
            colour += (max > 0.0 && (max - min) / max > 0.25) as u32;
        }
    }
    ink > 0 && colour * 20 > ink
}

/// Output name for a raw file: its relative path with separators replaced, as PNG.
fn output_name(rel: &str) -> String {
    let stem = rel
        .rsplit_once('.')
        .map_or(rel, |(s, _)| s)
        .replace('/', "__");
    format!("{}.png", safe_file_name(&stem, "logo"))
}

/// Clean every image under `raw_dir` into `processed_dir/clean/`, and write
/// `processed_dir/report.csv` and `summary.csv`. Bad files are reported (and, with `warn`,
/// printed as one line each) and skipped; the run goes on. The previous `clean/` folder is
/// replaced only once the new one is complete.
pub fn clean_folder(
    raw_dir: &Path,
    processed_dir: &Path,
    cfg: &CleanConfig,
    progress: &indicatif::ProgressBar,
    warn: bool,
) -> Result<CleanSummary> {
    cfg.validate()?;
    let start = Instant::now();
    if !raw_dir.is_dir() {
        return Err(Error::bad_input(
            raw_dir,
            "raw image folder not found: run `cargo run --release --bin chapter-02` first",
        ));
    }
    let files = list_images(raw_dir)?;
    if files.is_empty() {
        return Err(Error::bad_input(
            raw_dir,
            "no image files (.svg .png .jpg .gif .webp) found: run chapter-02 to gather logos",
        ));
    }
    progress.set_length(files.len() as u64);
    let results: Vec<(ReportRow, Option<Candidate>)> = files
        .par_iter()
        .map(|rel| {
            let out = clean_one(raw_dir, rel, cfg);
            progress.inc(1);
            out
        })
        .collect();
    progress.finish_and_clear();

    let mut rows = Vec::with_capacity(results.len());
    let mut candidates = Vec::new();
    for (row, candidate) in results {
        if warn && row.is_bad_input() {
            eprintln!(
                "warning: {}: {} ({})",
                raw_dir.join(&row.file).display(),
                row.detail,
                row.reason
            );
        }
        match candidate {
            Some(c) => candidates.push(c),
            None => rows.push(row),
        }
    }

    // Near-duplicates: colourful images first so they win over a black copy of the same logo,
    // then by file name, so the outcome does not depend on thread timing.
    candidates.sort_by(|a, b| {
        b.colourful
            .cmp(&a.colourful)
            .then(a.row.file.cmp(&b.row.file))
    });
    let mut kept: Vec<Candidate> = Vec::with_capacity(candidates.len());
    let mut used_names = std::collections::HashSet::new();
    for mut c in candidates {
        let nearest = kept
            .iter()
            .map(|k| (k.hash.dist(&c.hash), k))
            .min_by_key(|(d, _)| *d);
        if let Some((distance, original)) =
            nearest.filter(|(d, _)| *d <= cfg.max_duplicate_distance)
        {
            c.row.duplicate_of = format!("{} ({distance} bits)", original.row.file);
            let detail = format!(
                "{distance} of 256 hash bits differ from {}",
                original.row.file
            );
            rows.push(c.row.drop("near-duplicate", detail));
            continue;
        }
        let mut name = output_name(&c.row.file);
        while !used_names.insert(name.clone()) {
            name = format!("{}_.png", name.trim_end_matches(".png"));
        }
        c.row.status = "kept".into();
        c.row.reason = "kept".into();
        c.row.output = name;
        kept.push(c);
    }

    let clean_dir = processed_dir.join("clean");
    if kept.is_empty() {
        // Say why, file by file, beside the previous clean/ folder and its report, kept as
        // they were (and still matching each other).
        rows.sort_by(|a, b| a.file.cmp(&b.file));
        let report = processed_dir.join("report-kept-none.csv");
        write_csv(&report, &rows)?;
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for row in &rows {
            *counts.entry(row.reason.as_str()).or_default() += 1;
        }
        let why: Vec<String> = counts.iter().map(|(r, n)| format!("{r} {n}")).collect();
        return Err(Error::bad_input(
            raw_dir,
            format!(
                "cleaning kept none of the {} images ({}); {} gives each file's reason. Gather \
                 other logos (chapter-02), or loosen the rule that dropped them \
                 (chapter-03 --help lists the thresholds)",
                rows.len(),
                why.join(", "),
                crate::paths::display_path(&report)
            ),
        ));
    }
    let staged = staging_dir(&clean_dir)?;
    kept.par_iter()
        .map(|c| save_png(&staged.join(&c.row.output), &c.image))
        .collect::<Result<Vec<()>>>()?;
    replace_dir(&staged, &clean_dir)?;

    let kept_count = kept.len();
    rows.extend(kept.into_iter().map(|c| c.row));
    rows.sort_by(|a, b| a.file.cmp(&b.file));
    let mut counts = BTreeMap::new();
    for row in &rows {
        *counts.entry(row.reason.clone()).or_insert(0) += 1;
    }
    write_csv(&processed_dir.join("report.csv"), &rows)?;
    let summary_rows: Vec<_> = counts
        .iter()
        .map(|(reason, count)| SummaryRow {
            reason: reason.clone(),
            count: *count,
        })
        .collect();
    write_csv(&processed_dir.join("summary.csv"), &summary_rows)?;
    write_atomic(
        &processed_dir.join("clean-config.json"),
        &serde_json::to_vec_pretty(cfg)?,
    )?;

    Ok(CleanSummary {
        rows,
        counts,
        kept: kept_count,
        clean_dir,
        seconds: start.elapsed().as_secs_f64(),
    })
}

#[derive(serde::Serialize)]
struct SummaryRow {
    reason: String,
    count: usize,
}

/// Up to `count` raw images that the report gives `reason`, drawn square on white at `size`
/// pixels, as the cleaning saw them (before trimming): for showing what a rule removes.
pub fn examples_for_reason(
    raw_dir: &Path,
    rows: &[ReportRow],
    reason: &str,
    count: usize,
    size: u32,
) -> Result<Vec<RgbImage>> {
    let limits = LoadLimits {
        svg_render_size: size * 4,
        ..LoadLimits::default()
    };
    let mut out = Vec::new();
    for row in rows.iter().filter(|r| r.reason == reason) {
        if out.len() == count {
            break;
        }
        let path = raw_dir.join(&row.file);
        let bytes = std::fs::read(&path).at(&path)?;
        let Ok(loaded) = load_image(&bytes, &limits) else {
            continue;
        };
        let flat = rules::flatten_on_white(&loaded.pixels);
        let (w, h) = flat.dimensions();
        let full = rules::Rect {
            x: 0,
            y: 0,
            width: w,
            height: h,
        };
        out.push(rules::resize_square(
            &rules::crop_pad_square(&flat, full, 0.0),
            size,
        ));
    }
    Ok(out)
}

/// Read `report.csv` back.
pub fn read_report(path: &Path) -> Result<Vec<ReportRow>> {
    crate::fsutil::read_csv(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_names_are_flat_and_safe() {
        assert_eq!(
            output_name("simple-icons/github.svg"),
            "simple-icons__github.png"
        );
        assert_eq!(output_name("downloaded/ab12.jpg"), "downloaded__ab12.png");
        assert_eq!(output_name("x/../../y.svg"), "x__..__..__y.png");
    }

    #[test]
    fn invalid_settings_name_the_field() {
        let bad = CleanConfig {
            image_size: 100,
            ..CleanConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`image_size`"));
        let bad = CleanConfig {
            margin: 0.6,
            ..CleanConfig::default()
        };
        assert!(bad.validate().unwrap_err().to_string().contains("`margin`"));
        let bad = CleanConfig {
            min_border_white: 2.0,
            ..CleanConfig::default()
        };
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("`min_border_white`"));
        CleanConfig::default().validate().unwrap();
    }

    #[test]
    fn colourful_detects_saturated_ink() {
        let mut img = RgbImage::from_pixel(10, 10, image::Rgb([255, 255, 255]));
        img.put_pixel(1, 1, image::Rgb([0, 0, 0]));
        assert!(!is_colourful(&img, 40));
        img.put_pixel(2, 2, image::Rgb([200, 20, 20]));
        assert!(is_colourful(&img, 40));
    }
}

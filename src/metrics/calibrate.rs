//! The calibration ladder: before a judge's verdict on a GAN means anything, it must get the
//! right answer on sets whose right answer is known. Held-out real logos must score as well as
//! real data can; real logos blurred slightly must score worse, blurred heavily worse still;
//! noise, washed-out colours, the mean image and smooth colour blobs must all be told from
//! logos; one or ten logos repeated must lose recall; copies of training logos must be flagged.
//!
//! Every rung states the order it must show, and [`Calibration::all_held`] says whether the
//! judge passed. `chapter-06 calibrate` runs it and writes the table and chart chapter 6 shows.

use std::path::Path;

use candle_core::Tensor;
use image::RgbImage;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::calibration_sets as sets;
use super::score::{score_rows, RealReference, ScoreConfig, Scores};
use crate::data::augment::is_variant_name;
use crate::error::{Error, Result};
use crate::fsutil::{save_png, write_atomic, write_csv};
use crate::viz::plot::{save_chart, BarChart};
use crate::viz::{image_grid, tensor_to_images};

/// Settings of the ladder's spoiled sets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CalibrationConfig {
    pub score: ScoreConfig,
    /// Gaussian blur σ in pixels (of the judge's 32×32 images) of the slight and heavy rungs.
    pub slight_blur: f32,
    pub heavy_blur: f32,
    /// Pixel noise σ in 0–255 levels.
    pub noise: f64,
    /// Share of the contrast kept when colours are pulled toward grey.
    pub contrast_kept: f64,
}

impl Default for CalibrationConfig {
    fn default() -> Self {
        Self {
            score: ScoreConfig::default(),
            slight_blur: 0.5,
            heavy_blur: 1.5,
            noise: 20.0,
            contrast_kept: 0.5,
        }
    }
}

/// One rung of the ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rung {
    HeldOut,
    SlightBlur,
    HeavyBlur,
    Noise,
    Contrast,
    MeanImage,
    Blobs,
    OneLogo,
    TenLogos,
    TrainingCopies,
    AlteredCopies,
}

impl Rung {
    pub const ALL: [Rung; 11] = [
        Rung::HeldOut,
        Rung::SlightBlur,
        Rung::HeavyBlur,
        Rung::Noise,
        Rung::Contrast,
        Rung::MeanImage,
        Rung::Blobs,
        Rung::OneLogo,
        Rung::TenLogos,
        Rung::TrainingCopies,
        Rung::AlteredCopies,
    ];

    /// What the set is, in a few words.
    pub fn label(self) -> &'static str {
        match self {
            Rung::HeldOut => "held-out real logos",
            Rung::SlightBlur => "held-out, slight blur",
            Rung::HeavyBlur => "held-out, heavy blur",
            Rung::Noise => "held-out + pixel noise",
            Rung::Contrast => "held-out, contrast halved",
            Rung::MeanImage => "the mean image, repeated",
            Rung::Blobs => "smooth colour blobs",
            Rung::OneLogo => "one logo, repeated",
            Rung::TenLogos => "ten logos, repeated",
            Rung::TrainingCopies => "copies of training logos",
            Rung::AlteredCopies => "training logos mirrored + recoloured",
        }
    }
}

/// One rung's scores.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RungResult {
    pub rung: Rung,
    pub scores: Scores,
}

/// An ordering the ladder must show, and whether it did.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Check {
    pub rung: Rung,
    pub rule: String,
    pub held: bool,
}

/// Where a score lands among the ladder's rungs (by KID, lower is better).
#[derive(Debug, Clone, PartialEq)]
pub struct LadderPlace {
    /// The rung with the highest KID still at or below the score (None: better than every rung).
    pub better: Option<(String, f64)>,
    /// The rung with the lowest KID above the score (None: worse than every rung).
    pub worse: Option<(String, f64)>,
}

impl std::fmt::Display for LadderPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.better, &self.worse) {
            (Some((b, bk)), Some((w, wk))) => {
                write!(f, "between “{b}” (KID ×1000 {bk:.1}) and “{w}” ({wk:.1})")
            }
            (None, Some((w, wk))) => write!(f, "better than every rung, next to “{w}” ({wk:.1})"),
            (Some((b, bk)), None) => write!(f, "worse than every rung, next to “{b}” ({bk:.1})"),
            (None, None) => write!(f, "nowhere: the ladder is empty"),
        }
    }
}

/// Where `kid` lands among `rungs` (label, KID), whatever their order.
pub fn place_on_ladder(rungs: &[(String, f64)], kid: f64) -> LadderPlace {
    let better = rungs
        .iter()
        .filter(|(_, k)| *k <= kid)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .cloned();
    let worse = rungs
        .iter()
        .filter(|(_, k)| *k > kid)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .cloned();
    LadderPlace { better, worse }
}

/// The ladder's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Calibration {
    pub samples: usize,
    pub encoder_version: String,
    pub rungs: Vec<RungResult>,
    pub checks: Vec<Check>,
    pub config: CalibrationConfig,
}

/// The images of `rung`: `n` of them, made from `reference`'s held-out or train logos.
pub fn rung_images(
    rung: Rung,
    reference: &RealReference,
    n: usize,
    c: &CalibrationConfig,
) -> Result<Tensor> {
    let device = reference.held_out.device();
    let seed = c.score.seed;
    // The same n held-out logos for every spoiled rung (the floor's own choice).
    let held: Vec<RgbImage> = {
        let all = reference.held_out.to_images()?;
        reference
            .held_out_rows(n, seed)
            .iter()
            .map(|&i| all[i as usize].clone())
            .collect()
    };
    // Training logos that are not in the judge's train reference sample, chosen with the seed:
    // copies of what the GAN saw, not of what it is compared with.
    let training = |originals_only: bool| -> Result<Vec<RgbImage>> {
        let all = reference.train.to_images()?;
        let reference_rows = reference.train_rows(n, seed);
        let mut others: Vec<usize> = (0..all.len())
            .filter(|i| !reference_rows.contains(&(*i as u32)))
            .filter(|&i| !originals_only || !is_variant_name(&reference.train.names[i]))
            .collect();
        others.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 3));
        if others.len() < n {
            return Err(Error::Metric(format!(
                "the calibration needs {n} training logos besides the reference sample, there \
                 are {}: use fewer samples",
                others.len()
            )));
        }
        Ok(others[..n].iter().map(|&i| all[i].clone()).collect())
    };
    match rung {
        Rung::HeldOut => Ok(sets::repeated(&held, n, n, device)?),
        Rung::SlightBlur => sets::blurred(&held, c.slight_blur, device),
        Rung::HeavyBlur => sets::blurred(&held, c.heavy_blur, device),
        Rung::Noise => sets::noisy(&held, c.noise, seed, device),
        Rung::Contrast => sets::washed_out(&held, c.contrast_kept, device),
        Rung::MeanImage => sets::mean_image(&held, n, device),
        Rung::Blobs => sets::blobs(n, reference.held_out.image_size as u32, seed, device),
        Rung::OneLogo => sets::repeated(&held, 1, n, device),
        Rung::TenLogos => sets::repeated(&held, 10, n, device),
        Rung::TrainingCopies => sets::repeated(&training(false)?, n, n, device),
        Rung::AlteredCopies => sets::altered_copies(&training(true)?, seed ^ 0xa17e, device),
    }
}

// ANCHOR: calibrate
/// Score every rung against the train logos, then check the orderings.
pub fn calibrate(
    reference: &RealReference,
    config: &CalibrationConfig,
    on_rung: &mut dyn FnMut(Rung, &Scores),
) -> Result<Calibration> {
    let n = reference.set_size(usize::MAX, &config.score);
    let mut rungs = Vec::new();
    for rung in Rung::ALL {
        let scores = match rung {
            // The floor: held-out logos, two-sample-tested against train logos.
            Rung::HeldOut => reference.floor(n, &config.score)?,
            _ => reference.score(&rung_images(rung, reference, n, config)?, n, &config.score)?,
        };
        on_rung(rung, &scores);
        rungs.push(RungResult { rung, scores });
    }
    let checks = checks(&rungs);
    Ok(Calibration {
        samples: n,
        encoder_version: reference.encoder.version.clone(),
        rungs,
        checks,
        config: config.clone(),
    })
}
// ANCHOR_END: calibrate

// ANCHOR: ladder_checks
/// The orderings a trustworthy judge must show.
fn checks(rungs: &[RungResult]) -> Vec<Check> {
    let s = |r: Rung| {
        &rungs
            .iter()
            .find(|x| x.rung == r)
            .expect("every rung")
            .scores
    };
    let kid = |r: Rung| s(r).kid.mean;
    let floor = s(Rung::HeldOut);
    let c2st = |r: Rung| s(r).two_sample.accuracy;
    let precision = |r: Rung| s(r).precision_recall.precision;
    let recall = |r: Rung| s(r).precision_recall.recall;
    let density = |r: Rung| s(r).density_coverage.density;
    let coverage = |r: Rung| s(r).density_coverage.coverage;
    let near = |r: Rung| s(r).memorisation.near_copies;
    use Rung::*;
    let list: Vec<(Rung, &str, bool)> = vec![
        (
            HeldOut,
            "two-sample accuracy ≤ 0.6: real cannot be told from real",
            c2st(HeldOut) <= 0.6,
        ),
        (
            SlightBlur,
            "KID above the held-out floor",
            kid(SlightBlur) > kid(HeldOut),
        ),
        (
            HeavyBlur,
            "KID above slight blur's",
            kid(HeavyBlur) > kid(SlightBlur),
        ),
        (
            HeavyBlur,
            "two-sample accuracy above slight blur's and ≥ 0.9",
            c2st(HeavyBlur) > c2st(SlightBlur) && c2st(HeavyBlur) >= 0.9,
        ),
        (
            HeavyBlur,
            "density below slight blur's",
            density(HeavyBlur) < density(SlightBlur),
        ),
        // Precision barely notices blur (a blurred logo still lies near some real logo's
        // neighbourhood); density, which counts how many real neighbourhoods hold it, does.
        (
            HeavyBlur,
            "density below two thirds of the floor's (the measure of sharpness)",
            density(HeavyBlur) < 2.0 / 3.0 * floor.density_coverage.density,
        ),
        (Noise, "KID above the floor", kid(Noise) > kid(HeldOut)),
        (Noise, "two-sample accuracy ≥ 0.9", c2st(Noise) >= 0.9),
        (
            Contrast,
            "KID above the floor",
            kid(Contrast) > kid(HeldOut),
        ),
        (
            MeanImage,
            "KID above heavy blur's",
            kid(MeanImage) > kid(HeavyBlur),
        ),
        (
            MeanImage,
            "recall and coverage ≤ 0.05",
            recall(MeanImage) <= 0.05 && coverage(MeanImage) <= 0.05,
        ),
        (Blobs, "KID above heavy blur's", kid(Blobs) > kid(HeavyBlur)),
        (
            Blobs,
            "precision and density below half the floor's",
            precision(Blobs) < 0.5 * floor.precision_recall.precision
                && density(Blobs) < 0.5 * floor.density_coverage.density,
        ),
        (Blobs, "two-sample accuracy ≥ 0.95", c2st(Blobs) >= 0.95),
        (
            OneLogo,
            "recall and coverage ≤ 0.05",
            recall(OneLogo) <= 0.05 && coverage(OneLogo) <= 0.05,
        ),
        (
            TenLogos,
            "coverage below half the floor's, and not below one logo's",
            coverage(TenLogos) < 0.5 * floor.density_coverage.coverage
                && coverage(TenLogos) >= coverage(OneLogo),
        ),
        (
            TrainingCopies,
            "near-copies ≥ 90% (the floor has 5%)",
            near(TrainingCopies) >= 0.9,
        ),
        (
            TrainingCopies,
            "KID below heavy blur's (copies look real)",
            kid(TrainingCopies) < kid(HeavyBlur),
        ),
        (
            AlteredCopies,
            "near-copies ≥ 4× the floor's",
            near(AlteredCopies) >= 4.0 * floor.memorisation.near_copies,
        ),
    ];
    list.into_iter()
        .map(|(rung, rule, held)| Check {
            rung,
            rule: rule.to_string(),
            held,
        })
        .collect()
}
// ANCHOR_END: ladder_checks

/// One row of `calibration.csv`.
#[derive(serde::Serialize)]
struct CsvRow {
    rung: Rung,
    set: &'static str,
    kid_x1000: f64,
    kid_se_x1000: f64,
    frechet: f64,
    precision: f64,
    recall: f64,
    density: f64,
    coverage: f64,
    two_sample_accuracy: f64,
    two_sample_standard_error: f64,
    two_sample_seed_spread: f64,
    two_sample_features_accuracy: f64,
    memorisation_ratio: f64,
    near_copies: f64,
    checks_held: String,
}

impl Calibration {
    /// Did every ordering hold?
    pub fn all_held(&self) -> bool {
        self.checks.iter().all(|c| c.held)
    }

    /// Where a KID (×1000) lands on the ladder: the rungs just below and just above it.
    pub fn place(&self, kid_x1000: f64) -> LadderPlace {
        let rungs: Vec<(String, f64)> = self
            .rungs
            .iter()
            .map(|r| (r.rung.label().to_string(), r.scores.kid.mean * 1e3))
            .collect();
        place_on_ladder(&rungs, kid_x1000)
    }

    fn checks_of(&self, rung: Rung) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(move |c| c.rung == rung)
    }

    /// The ladder as a Markdown table: one row per rung, every measure, the orderings it must
    /// show with ✓ or ✗.
    pub fn table(&self) -> String {
        let floor = &self.rungs[0].scores;
        let names: Vec<&str> = score_rows(floor, floor).iter().map(|r| r.0).collect();
        let mut out = format!(
            "| set ({} images, encoder {}) | {} | must show |\n|---|{}---|\n",
            self.samples,
            self.encoder_version,
            names.join(" | "),
            "---:|".repeat(names.len())
        );
        for r in &self.rungs {
            let values: Vec<String> = score_rows(&r.scores, floor)
                .into_iter()
                .map(|row| row.1)
                .collect();
            let rules: Vec<String> = self
                .checks_of(r.rung)
                .map(|c| format!("{} {}", if c.held { "✓" } else { "✗" }, c.rule))
                .collect();
            out.push_str(&format!(
                "| {} | {} | {} |\n",
                r.rung.label(),
                values.join(" | "),
                rules.join("; ")
            ));
        }
        let held = self.checks.iter().filter(|c| c.held).count();
        out.push_str(&format!(
            "\n{held} of {} orderings held.\n",
            self.checks.len()
        ));
        out
    }

    /// Write `calibration.md`, `.csv`, `.json`, the KID chart and a grid of every rung's first
    /// images into `dir`.
    pub fn save(&self, dir: &Path, reference: &RealReference) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| Error::bad_input(dir, e.to_string()))?;
        write_atomic(&dir.join("calibration.md"), self.table().as_bytes())?;
        write_atomic(
            &dir.join("calibration.json"),
            serde_json::to_string_pretty(self)?.as_bytes(),
        )?;
        let rows: Vec<CsvRow> = self
            .rungs
            .iter()
            .map(|r| {
                let s = &r.scores;
                CsvRow {
                    rung: r.rung,
                    set: r.rung.label(),
                    kid_x1000: s.kid.mean * 1e3,
                    kid_se_x1000: s.kid.standard_error * 1e3,
                    frechet: s.frechet,
                    precision: s.precision_recall.precision,
                    recall: s.precision_recall.recall,
                    density: s.density_coverage.density,
                    coverage: s.density_coverage.coverage,
                    two_sample_accuracy: s.two_sample.accuracy,
                    two_sample_standard_error: s.two_sample.standard_error,
                    two_sample_seed_spread: s.two_sample.seed_spread,
                    two_sample_features_accuracy: s.two_sample_features.accuracy,
                    memorisation_ratio: s.memorisation.ratio,
                    near_copies: s.memorisation.near_copies,
                    checks_held: self
                        .checks_of(r.rung)
                        .map(|c| if c.held { "yes" } else { "NO" })
                        .collect::<Vec<_>>()
                        .join(" "),
                }
            })
            .collect();
        write_csv(&dir.join("calibration.csv"), &rows)?;
        save_chart(dir, "calibration-kid", &self.chart())?;
        // Eight images of every rung, one row each, in ladder order.
        let mut tiles = Vec::new();
        for rung in Rung::ALL {
            let images = rung_images(rung, reference, self.samples, &self.config)?;
            tiles.extend(tensor_to_images(&images.narrow(
                0,
                0,
                8.min(self.samples),
            )?)?);
        }
        save_png(
            &dir.join("calibration-sets.png"),
            &image_grid(&tiles, 8.min(self.samples), 2),
        )
    }

    /// KID of every rung as labelled bars, the held-out floor as a line.
    pub fn chart(&self) -> BarChart {
        BarChart {
            title: "The calibration ladder: KID of each set against the train logos".into(),
            value_label: "KID ×1000 (lower is better; log scale)".into(),
            bars: self
                .rungs
                .iter()
                .map(|r| (r.rung.label().to_string(), r.scores.kid.mean * 1e3))
                .collect(),
            reference: Some((
                "held-out floor".to_string(),
                self.rungs[0].scores.kid.mean * 1e3,
            )),
            // From copies (≈ 0) and the floor (≈ 20) to blobs (≈ 40 000): on a linear axis
            // every rung near the floor would be an invisible sliver.
            log_scale: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_score_lands_between_its_neighbouring_rungs() {
        let rungs: Vec<(String, f64)> = [
            ("floor", 23.0),
            ("heavy blur", 2496.0),
            ("slight blur", 58.0),
            ("noise", 597.0),
        ]
        .iter()
        .map(|(l, k)| (l.to_string(), *k))
        .collect();
        let place = place_on_ladder(&rungs, 187.6);
        assert_eq!(place.better, Some(("slight blur".into(), 58.0)));
        assert_eq!(place.worse, Some(("noise".into(), 597.0)));
        assert!(place.to_string().contains("between “slight blur”"));
        assert_eq!(place_on_ladder(&rungs, 10.0).better, None);
        assert_eq!(place_on_ladder(&rungs, 1e6).worse, None);
        assert_eq!(place_on_ladder(&rungs, 597.0).better.unwrap().0, "noise");
    }
}

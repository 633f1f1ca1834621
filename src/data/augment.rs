//! Augmentation, as the original LogoGan did it: every clean logo also appears mirrored and in
//! another colour, which triples a small data set.
//!
//! * **Mirror**: flip left–right. A mirrored logo is still a plausible logo, and the generator
//!   should not learn that logos lean one way.
//! * **Recolour**: a colourful logo has its hue rotated by a random angle between 60° and 300°
//!   (HSV, saturation and value kept, so white stays white and black stays black); a black or grey
//!   logo, which hue rotation would leave unchanged, is tinted with a random saturated colour
//!   instead (its darkness becomes the amount of that colour).
//! * **Mirror + recolour**: both, for a ×4 set.
//!
//! Every random choice comes from a generator seeded by the run's seed and the file name, so the
//! same inputs give the same outputs whatever the thread scheduling.

use std::path::Path;

use image::{imageops, Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::clean::list_images;
use crate::error::{Error, IoResultExt, Result};
use crate::fsutil::{replace_dir, save_png, sha256_hex, staging_dir};
use crate::viz::image_grid;

/// One kind of augmented copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    Mirror,
    Recolour,
    MirrorRecolour,
}

impl Variant {
    /// Suffix of the file name of this variant.
    pub fn suffix(self) -> &'static str {
        match self {
            Variant::Mirror => "mirror",
            Variant::Recolour => "recolour",
            Variant::MirrorRecolour => "mirror-recolour",
        }
    }

    /// Apply the variant to an image; `rng` supplies the colour choices.
    pub fn apply(self, image: &RgbImage, rng: &mut impl Rng) -> RgbImage {
        match self {
            Variant::Mirror => mirror(image),
            Variant::Recolour => recolour(image, rng),
            Variant::MirrorRecolour => recolour(&mirror(image), rng),
        }
    }
}

/// True when `name` (a file name in a training folder) is an augmented variant, not a clean
/// logo: it ends in `__<variant>.png`.
pub fn is_variant_name(name: &str) -> bool {
    [Variant::Mirror, Variant::Recolour, Variant::MirrorRecolour]
        .iter()
        .any(|v| name.ends_with(&format!("__{}.png", v.suffix())))
}

impl std::str::FromStr for Variant {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "mirror" => Ok(Variant::Mirror),
            "recolour" | "recolor" => Ok(Variant::Recolour),
            "mirror-recolour" | "mirror-recolor" => Ok(Variant::MirrorRecolour),
            other => Err(format!(
                "unknown variant `{other}` (expected mirror, recolour or mirror-recolour)"
            )),
        }
    }
}

/// Settings of the augmentation step.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AugmentConfig {
    /// Copies made of every clean image, besides the image itself. Default: mirror, recolour (×3).
    pub variants: Vec<Variant>,
    pub seed: u64,
}

impl Default for AugmentConfig {
    fn default() -> Self {
        Self {
            variants: vec![Variant::Mirror, Variant::Recolour],
            seed: 0,
        }
    }
}

impl AugmentConfig {
    /// How many training images each clean image becomes.
    pub fn factor(&self) -> usize {
        1 + self.variants.len()
    }
}

/// Flip left–right.
pub fn mirror(image: &RgbImage) -> RgbImage {
    imageops::flip_horizontal(image)
}

/// RGB (0–255) to HSV (hue in degrees, saturation and value in 0–1).
pub fn rgb_to_hsv(Rgb([r, g, b]): Rgb<u8>) -> (f32, f32, f32) {
    let (r, g, b) = (r as f32 / 255.0, g as f32 / 255.0, b as f32 / 255.0);
    let max = r.max(g).max(b);
    let min = r.min(g).min(b);
    let delta = max - min;
    let hue = if delta == 0.0 {
        0.0
    } else if max == r {
        60.0 * ((g - b) / delta).rem_euclid(6.0)
    } else if max == g {
        60.0 * ((b - r) / delta + 2.0)
    } else {
        60.0 * ((r - g) / delta + 4.0)
    };
    let saturation = if max == 0.0 { 0.0 } else { delta / max };
    (hue, saturation, max)
}

/// HSV back to RGB.
pub fn hsv_to_rgb(hue: f32, saturation: f32, value: f32) -> Rgb<u8> {
    let c = value * saturation;
    let h = hue.rem_euclid(360.0) / 60.0;
    let x = c * (1.0 - (h.rem_euclid(2.0) - 1.0).abs());
    let (r, g, b) = match h as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let m = value - c;
    let to = |v: f32| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    Rgb([to(r), to(g), to(b)])
}

/// Rotate every pixel's hue by `degrees`. Greys (white, black) have no hue and do not change.
// ANCHOR: rotate_hue
pub fn rotate_hue(image: &RgbImage, degrees: f32) -> RgbImage {
    let mut out = image.clone();
    for p in out.pixels_mut() {
        let (h, s, v) = rgb_to_hsv(*p);
        if s > 0.0 {
            *p = hsv_to_rgb(h + degrees, s, v);
        }
    }
    out
}
// ANCHOR_END: rotate_hue

/// Paint a black-and-white image in `colour`: white stays white, black becomes `colour`, and
/// greys (anti-aliased edges) blend between the two.
pub fn tint(image: &RgbImage, colour: Rgb<u8>) -> RgbImage {
    let mut out = image.clone();
    for p in out.pixels_mut() {
        let [r, g, b] = p.0;
        let luminance = (0.299 * r as f32 + 0.587 * g as f32 + 0.114 * b as f32) / 255.0;
        let amount = 1.0 - luminance; // 0 on white, 1 on black
        let mix = |c: u8| (255.0 * (1.0 - amount) + c as f32 * amount).round() as u8;
        *p = Rgb([mix(colour[0]), mix(colour[1]), mix(colour[2])]);
    }
    out
}

/// True when the image's ink is (almost) all grey: hue rotation would not change it.
pub fn is_greyscale(image: &RgbImage) -> bool {
    let (mut ink, mut coloured) = (0u32, 0u32);
    for p in image.pixels() {
        let (_, s, v) = rgb_to_hsv(*p);
        if v < 0.85 || s > 0.15 {
            ink += 1;
            coloured += (s > 0.25) as u32;
        }
    }
    coloured * 20 <= ink
}

/// A new colour for the image: hue rotation for colourful logos, a tint for grey ones.
// ANCHOR: recolour
pub fn recolour(image: &RgbImage, rng: &mut impl Rng) -> RgbImage {
    if is_greyscale(image) {
        let colour = hsv_to_rgb(
            rng.random_range(0.0..360.0),
            rng.random_range(0.65..1.0),
            rng.random_range(0.45..0.85),
        );
        tint(image, colour)
    } else {
        rotate_hue(image, rng.random_range(60.0..300.0))
    }
}
// ANCHOR_END: recolour

/// A generator seeded by the run seed and the file name: stable across runs and threads.
fn rng_for(seed: u64, name: &str) -> ChaCha8Rng {
    let digest = sha256_hex(name.as_bytes());
    let from_name = u64::from_str_radix(&digest[..16], 16).expect("hex");
    ChaCha8Rng::seed_from_u64(seed ^ from_name)
}

/// The configured variants of one clean image, named `stem`; the same inputs always give the
/// same images.
pub fn make_variants(
    image: &RgbImage,
    stem: &str,
    cfg: &AugmentConfig,
) -> Vec<(Variant, RgbImage)> {
    let mut rng = rng_for(cfg.seed, stem);
    cfg.variants
        .iter()
        .map(|v| (*v, v.apply(image, &mut rng)))
        .collect()
}

/// Result of [`augment_folder`].
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentSummary {
    pub originals: usize,
    pub written: usize,
}

/// Write every clean image and its variants into `train_dir` (`name.png`, `name__mirror.png`, …).
/// The previous `train_dir` is replaced only when the new one is complete.
pub fn augment_folder(
    clean_dir: &Path,
    train_dir: &Path,
    cfg: &AugmentConfig,
) -> Result<AugmentSummary> {
    augment_files(clean_dir, &list_images(clean_dir)?, train_dir, cfg)
}

/// Write the clean images `files` (paths under `clean_dir`) and their variants into `out_dir`,
/// as [`augment_folder`] does: one side of the train / held-out split at a time.
pub fn augment_files(
    clean_dir: &Path,
    files: &[std::path::PathBuf],
    out_dir: &Path,
    cfg: &AugmentConfig,
) -> Result<AugmentSummary> {
    if files.is_empty() {
        return Err(Error::bad_input(
            clean_dir,
            "no clean images here to augment: run chapter-03, which cleans data/raw/ first",
        ));
    }
    let staged = staging_dir(out_dir)?;
    let written: usize = files
        .par_iter()
        .map(|rel| -> Result<usize> {
            let path = clean_dir.join(rel);
            let image = image::open(&path)
                .map_err(|e| Error::bad_input(&path, e.to_string()))?
                .to_rgb8();
            let name = rel.to_string_lossy();
            let stem = name.trim_end_matches(".png");
            std::fs::copy(&path, staged.join(rel)).at(&path)?;
            for (variant, out) in make_variants(&image, stem, cfg) {
                save_png(
                    &staged.join(format!("{stem}__{}.png", variant.suffix())),
                    &out,
                )?;
            }
            Ok(1 + cfg.variants.len())
        })
        .sum::<Result<usize>>()?;
    replace_dir(&staged, out_dir)?;
    Ok(AugmentSummary {
        originals: files.len(),
        written,
    })
}

/// Preview of the augmentation: `columns` clean images chosen with `seed`, one row each for the
/// originals and for every variant.
pub fn preview_grid(clean_dir: &Path, cfg: &AugmentConfig, columns: usize) -> Result<RgbImage> {
    let files = list_images(clean_dir)?;
    let mut rng = ChaCha8Rng::seed_from_u64(cfg.seed);
    let chosen = rand::seq::index::sample(&mut rng, files.len(), columns.min(files.len()));
    let originals: Vec<(String, RgbImage)> = chosen
        .iter()
        .map(|i| {
            let path = clean_dir.join(&files[i]);
            let image = image::open(&path)
                .map_err(|e| Error::bad_input(&path, e.to_string()))?
                .to_rgb8();
            Ok((
                files[i]
                    .to_string_lossy()
                    .trim_end_matches(".png")
                    .to_string(),
                image,
            ))
        })
        .collect::<Result<_>>()?;
    let variants: Vec<Vec<(Variant, RgbImage)>> = originals
        .iter()
        .map(|(stem, image)| make_variants(image, stem, cfg))
        .collect();
    // Row 0: originals; row k: the k-th variant of each.
    let mut tiles: Vec<RgbImage> = originals.iter().map(|(_, img)| img.clone()).collect();
    for k in 0..cfg.variants.len() {
        tiles.extend(variants.iter().map(|vs| vs[k].1.clone()));
    }
    Ok(image_grid(&tiles, originals.len(), 2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trip_on_primaries_and_greys() {
        for rgb in [
            [255, 0, 0],
            [0, 255, 0],
            [0, 0, 255],
            [255, 255, 255],
            [0, 0, 0],
            [12, 200, 99],
        ] {
            let (h, s, v) = rgb_to_hsv(Rgb(rgb));
            assert_eq!(hsv_to_rgb(h, s, v), Rgb(rgb), "{rgb:?}");
        }
        assert_eq!(rgb_to_hsv(Rgb([0, 255, 0])).0, 120.0);
    }

    #[test]
    fn hue_rotation_moves_colours_and_keeps_white_and_black() {
        let mut img = RgbImage::from_pixel(3, 1, Rgb([255, 255, 255]));
        img.put_pixel(1, 0, Rgb([255, 0, 0]));
        img.put_pixel(2, 0, Rgb([0, 0, 0]));
        let out = rotate_hue(&img, 120.0);
        assert_eq!(out.get_pixel(0, 0), &Rgb([255, 255, 255]));
        assert_eq!(out.get_pixel(1, 0), &Rgb([0, 255, 0]));
        assert_eq!(out.get_pixel(2, 0), &Rgb([0, 0, 0]));
    }

    #[test]
    fn grey_logos_are_tinted_and_colour_logos_rotated() {
        let mut grey = RgbImage::from_pixel(8, 8, Rgb([255, 255, 255]));
        grey.put_pixel(3, 3, Rgb([0, 0, 0]));
        assert!(is_greyscale(&grey));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let out = recolour(&grey, &mut rng);
        assert_ne!(
            out.get_pixel(3, 3),
            &Rgb([0, 0, 0]),
            "black ink got a colour"
        );
        assert_eq!(
            out.get_pixel(0, 0),
            &Rgb([255, 255, 255]),
            "white stays white"
        );

        let red = RgbImage::from_pixel(8, 8, Rgb([220, 20, 20]));
        assert!(!is_greyscale(&red));
        let out = recolour(&red, &mut rng);
        let (h, _, _) = rgb_to_hsv(*out.get_pixel(0, 0));
        assert!(
            (55.0..=305.0).contains(&h),
            "hue moved by 60–300 degrees: {h}"
        );
    }

    #[test]
    fn mirror_flips_columns() {
        let mut img = RgbImage::from_pixel(4, 1, Rgb([255, 255, 255]));
        img.put_pixel(0, 0, Rgb([0, 0, 0]));
        assert_eq!(mirror(&img).get_pixel(3, 0), &Rgb([0, 0, 0]));
    }

    #[test]
    fn augment_folder_triples_and_is_reproducible() {
        let dir = tempfile::tempdir().unwrap();
        let clean = dir.path().join("clean");
        std::fs::create_dir_all(&clean).unwrap();
        for (i, colour) in [[200, 30, 30], [0, 0, 0]].iter().enumerate() {
            let mut img = RgbImage::from_pixel(16, 16, Rgb([255, 255, 255]));
            for x in 2..8 {
                img.put_pixel(x, 4, Rgb(*colour));
            }
            save_png(&clean.join(format!("logo{i}.png")), &img).unwrap();
        }
        let cfg = AugmentConfig::default();
        let train = dir.path().join("train");
        let summary = augment_folder(&clean, &train, &cfg).unwrap();
        assert_eq!(
            summary,
            AugmentSummary {
                originals: 2,
                written: 6
            }
        );
        let first = std::fs::read(train.join("logo1__recolour.png")).unwrap();
        augment_folder(&clean, &train, &cfg).unwrap();
        assert_eq!(
            std::fs::read(train.join("logo1__recolour.png")).unwrap(),
            first
        );
        let other = AugmentConfig {
            seed: 7,
            ..cfg.clone()
        };
        augment_folder(&clean, &train, &other).unwrap();
        assert_ne!(
            std::fs::read(train.join("logo1__recolour.png")).unwrap(),
            first
        );

        let grid = preview_grid(&clean, &cfg, 8).unwrap();
        // 2 columns (only two images) × 3 rows of 16 px tiles with 2 px gaps.
        assert_eq!(grid.dimensions(), (2 * 16 + 3 * 2, 3 * 16 + 4 * 2));
    }

    #[test]
    fn variant_names_parse() {
        assert_eq!("mirror".parse::<Variant>(), Ok(Variant::Mirror));
        assert_eq!("recolor".parse::<Variant>(), Ok(Variant::Recolour));
        assert!("blur"
            .parse::<Variant>()
            .unwrap_err()
            .contains("unknown variant `blur`"));
    }
}

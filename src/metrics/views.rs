//! The views of a logo that the judge's encoder learns to call "the same logo".
//!
//! A contrastive encoder learns whatever its views leave unchanged. These views move, scale,
//! mirror and recolour a logo — changes after which a person still sees the same mark — and
//! never blur it, add noise or wash its colours out: those are the defects of generated images
//! that the encoder must keep *visible*. Half the views are moved by whole pixels only, so no
//! resampling (which softens edges a little) enters them.

use image::imageops::FilterType;
use image::{Rgb, RgbImage};
use rand::Rng;

use crate::data::augment::{mirror, recolour};

/// How far the views may move a logo away from itself.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ViewConfig {
    /// Chance that a view is rescaled (else it is only shifted by whole pixels).
    pub rescale_probability: f64,
    /// Smallest and largest scale factor of a rescaled view (below 1: the logo shrinks on its
    /// white canvas; above 1: the view is a crop of an enlarged logo).
    pub min_scale: f64,
    pub max_scale: f64,
    /// Largest shift, in pixels, in each direction.
    pub max_shift: i64,
    /// Chance of a mirrored view.
    pub mirror_probability: f64,
    /// Chance of a recoloured view (hue rotation; grey logos are tinted), as chapter 3 does.
    pub recolour_probability: f64,
}

impl Default for ViewConfig {
    fn default() -> Self {
        Self {
            rescale_probability: 0.5,
            min_scale: 0.75,
            max_scale: 1.3,
            max_shift: 3,
            mirror_probability: 0.5,
            recolour_probability: 0.5,
        }
    }
}

/// One random view of `image` (same size, white where the logo moved away).
pub fn view(image: &RgbImage, c: &ViewConfig, rng: &mut impl Rng) -> RgbImage {
    let size = image.width() as i64;
    let scaled = if rng.random_bool(c.rescale_probability) {
        let s = rng.random_range(c.min_scale..=c.max_scale);
        let n = ((size as f64 * s).round() as u32).max(4);
        image::imageops::resize(image, n, n, FilterType::CatmullRom)
    } else {
        image.clone()
    };
    let n = scaled.width() as i64;
    // Top-left corner of the scaled logo on the canvas: centred, then shifted.
    let (ox, oy) = (
        (size - n) / 2 + rng.random_range(-c.max_shift..=c.max_shift),
        (size - n) / 2 + rng.random_range(-c.max_shift..=c.max_shift),
    );
    let mut out = RgbImage::from_fn(size as u32, size as u32, |x, y| {
        let (sx, sy) = (x as i64 - ox, y as i64 - oy);
        if (0..n).contains(&sx) && (0..n).contains(&sy) {
            *scaled.get_pixel(sx as u32, sy as u32)
        } else {
            Rgb([255, 255, 255])
        }
    });
    if rng.random_bool(c.mirror_probability) {
        out = mirror(&out);
    }
    if rng.random_bool(c.recolour_probability) {
        out = recolour(&out, rng);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn square() -> RgbImage {
        RgbImage::from_fn(32, 32, |x, y| {
            if (10..22).contains(&x) && (10..22).contains(&y) {
                Rgb([200, 30, 30])
            } else {
                Rgb([255, 255, 255])
            }
        })
    }

    #[test]
    fn a_shift_only_view_keeps_every_pixel_value() {
        // No rescaling, no recolouring: the view is the logo moved by whole pixels, so its
        // colours are exactly the logo's (no blur crept in).
        let c = ViewConfig {
            rescale_probability: 0.0,
            recolour_probability: 0.0,
            ..ViewConfig::default()
        };
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for _ in 0..20 {
            let v = view(&square(), &c, &mut rng);
            assert!(v
                .pixels()
                .all(|p| *p == Rgb([255, 255, 255]) || *p == Rgb([200, 30, 30])));
            let red = v.pixels().filter(|p| p.0[1] == 30).count();
            assert_eq!(red, 144, "the whole square stays on the canvas");
        }
    }

    #[test]
    fn views_differ_and_are_reproducible() {
        let c = ViewConfig::default();
        let a: Vec<RgbImage> = {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            (0..8).map(|_| view(&square(), &c, &mut rng)).collect()
        };
        let b: Vec<RgbImage> = {
            let mut rng = ChaCha8Rng::seed_from_u64(5);
            (0..8).map(|_| view(&square(), &c, &mut rng)).collect()
        };
        assert_eq!(a, b);
        assert!(a.iter().any(|v| v != &a[0]));
        assert!(a.iter().all(|v| v.dimensions() == (32, 32)));
    }
}

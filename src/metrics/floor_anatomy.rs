//! Why the judge's held-out floor has a KID above zero while copies of training logos score
//! below zero: the KID and Fréchet distance of pairs of real sets that differ in one way at a
//! time (chapter 6, `examples/floor-anatomy.rs`, `book-assets`).
//!
//! KID's estimate is unbiased for sets of independent draws. The logo sets are not: every logo
//! comes with its mirrored and recoloured variants (chapter 3), and a set that holds a logo with
//! its *siblings* is more alike within itself than to a set that does not. Comparing one image
//! per logo takes that out.

use std::collections::BTreeSet;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use super::distances::{frechet_distance, kernel_inception_distance, Features, Kid};
use super::score::{RealReference, ScoreConfig};
use crate::data::augment::is_variant_name;
use crate::error::Result;

/// One comparison of two real sets.
#[derive(Debug, Clone, PartialEq)]
pub struct FloorComparison {
    pub what: &'static str,
    pub images_per_set: usize,
    pub kid: Kid,
    pub frechet: f64,
}

/// The logo an image shows: its file name without the variant suffix (`__mirror.png`, …).
pub fn logo_of(name: &str) -> &str {
    let stem = name.strip_suffix(".png").unwrap_or(name);
    if is_variant_name(name) {
        stem.rsplit_once("__").map_or(stem, |(logo, _)| logo)
    } else {
        stem
    }
}

// ANCHOR: floor_anatomy
/// The floor beside real sets that differ from it in one way at a time: other train images
/// (the copies rung: siblings of the reference's logos among them), other train logos, and one
/// image per logo on both sides (no siblings anywhere).
pub fn floor_anatomy(
    reference: &RealReference,
    config: &ScoreConfig,
) -> Result<Vec<FloorComparison>> {
    let seed = config.seed;
    let n = reference.set_size(usize::MAX, config);
    let shuffled = |mut rows: Vec<usize>, salt: u64| {
        rows.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ salt));
        rows
    };
    let (train, held) = (&reference.train_features, &reference.held_out_features);
    let (train_names, held_names) = (&reference.train.names, &reference.held_out.names);
    let reference_rows: Vec<usize> = reference
        .train_rows(n, seed)
        .iter()
        .map(|&r| r as usize)
        .collect();
    let in_reference: BTreeSet<usize> = reference_rows.iter().copied().collect();
    let reference_logos: BTreeSet<&str> = reference_rows
        .iter()
        .map(|&r| logo_of(&train_names[r]))
        .collect();
    let train_reference = train.select(&reference_rows);
    let other_images = shuffled(
        (0..train_names.len())
            .filter(|r| !in_reference.contains(r))
            .collect(),
        3,
    );
    let other_logos = shuffled(
        (0..train_names.len())
            .filter(|&r| !reference_logos.contains(logo_of(&train_names[r])))
            .collect(),
        5,
    );
    let held_out: Vec<usize> = reference
        .held_out_rows(n, seed)
        .iter()
        .map(|&r| r as usize)
        .collect();
    let originals = |names: &[String]| -> Vec<usize> {
        (0..names.len())
            .filter(|&r| !is_variant_name(&names[r]))
            .collect()
    };
    let held_originals = originals(held_names);
    let train_originals = shuffled(originals(train_names), 7);
    let m = held_originals.len().min(train_originals.len() / 2);
    let first = |rows: &[usize], k: usize| rows[..k.min(rows.len())].to_vec();
    let pairs = [
        (
            "train reference vs held-out logos (the floor)",
            train_reference.clone(),
            held.select(&held_out),
        ),
        (
            "train reference vs other train images (the copies rung)",
            train_reference.clone(),
            train.select(&first(&other_images, n)),
        ),
        (
            "train reference vs train logos none of whose images it holds",
            train_reference.clone(),
            train.select(&first(&other_logos, n)),
        ),
        (
            "one image per logo: train vs held-out",
            train.select(&train_originals[..m]),
            held.select(&held_originals[..m]),
        ),
        (
            "one image per logo: train vs other train logos",
            train.select(&train_originals[..m]),
            train.select(&train_originals[m..2 * m]),
        ),
    ];
    pairs
        .into_iter()
        .map(|(what, a, b)| compare(what, &a, &b, config))
        .collect()
}
// ANCHOR_END: floor_anatomy

fn compare(
    what: &'static str,
    a: &Features,
    b: &Features,
    config: &ScoreConfig,
) -> Result<FloorComparison> {
    let images_per_set = a.rows.min(b.rows);
    // Subsets of at most half a set, so that they vary and give a standard error.
    let subset = config.kid_subset_size.min(images_per_set / 2);
    Ok(FloorComparison {
        what,
        images_per_set,
        kid: kernel_inception_distance(a, b, config.kid_subsets, subset, config.seed)?,
        frechet: frechet_distance(a, b)?,
    })
}

/// The comparisons as a Markdown table.
pub fn floor_anatomy_table(rows: &[FloorComparison]) -> String {
    let mut table = String::from("| real sets compared | images per set | KID ×1000 | Fréchet distance |\n|---|---:|---:|---:|\n");
    for r in rows {
        table.push_str(&format!(
            "| {} | {} | {:.2} ± {:.2} | {:.2} |\n",
            r.what,
            r.images_per_set,
            1000.0 * r.kid.mean,
            1000.0 * r.kid.standard_error,
            r.frechet
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::logo_of;

    #[test]
    fn a_variant_names_its_logo() {
        assert_eq!(
            logo_of("simple-icons__github__mirror.png"),
            "simple-icons__github"
        );
        assert_eq!(
            logo_of("simple-icons__github__recolour.png"),
            "simple-icons__github"
        );
        assert_eq!(logo_of("simple-icons__github.png"), "simple-icons__github");
    }
}

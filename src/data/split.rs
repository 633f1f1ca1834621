//! Data hygiene: a seeded split of the clean logos into a *train* side (what the GAN and the
//! judge's feature encoder learn from) and a *held-out* side that no model ever sees.
//!
//! Why: a quality measure needs a floor — how far apart two sets of *real* logos are when
//! neither is a copy of the other. If the floor compared logos the GAN trained on, a generator
//! that copies its training set would look as good as real data, and the encoder that judges
//! would have learnt the floor's own pictures. So chapter 6 compares generated images and
//! held-out logos with the train side, and checks memorisation against the GAN's actual
//! training images.
//!
//! The side of a logo is decided by a hash of its name and the seed alone: the same logo stays
//! on the same side when the data set grows or is rebuilt, and its augmented variants (mirrored,
//! recoloured) follow it, because they are made from it after the split.

use std::path::Path;

use crate::error::{Error, Result};
use crate::fsutil::{sha256_hex, write_csv};

/// Settings of the train / held-out split.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitConfig {
    /// Share of the clean logos kept out of training (≈; each logo is decided on its own).
    pub held_out_fraction: f64,
    pub seed: u64,
}

impl Default for SplitConfig {
    fn default() -> Self {
        Self {
            held_out_fraction: 0.15,
            seed: 0,
        }
    }
}

/// The side of the split a logo is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    Train,
    HeldOut,
}

impl SplitConfig {
    pub fn validate(&self) -> Result<()> {
        if !(self.held_out_fraction > 0.0 && self.held_out_fraction < 0.5) {
            return Err(Error::config(
                "split.held_out_fraction",
                format!(
                    "{} is not in (0, 0.5): the held-out side must exist and be the smaller one",
                    self.held_out_fraction
                ),
            ));
        }
        Ok(())
    }

    /// The draw of the clean logo named `stem` (its path under `clean/` without extension): a
    /// number in [0, 1) from the first 8 bytes of SHA-256 of the seed and the name. Uniform, and
    /// independent of every other logo, so adding logos never moves an existing one.
    fn draw(&self, stem: &str) -> f64 {
        let hash = sha256_hex(format!("split:{}:{stem}", self.seed).as_bytes());
        u64::from_str_radix(&hash[..16], 16).expect("hex") as f64 / 2f64.powi(64)
    }

    /// The side of the clean logo named `stem`: held out when its draw is below the fraction.
    pub fn side(&self, stem: &str) -> Side {
        if self.draw(stem) < self.held_out_fraction {
            Side::HeldOut
        } else {
            Side::Train
        }
    }

    /// The side of each of `stems`, as [`SplitConfig::side`] says, except that a set of at least
    /// two logos always has one on each side (a tiny set could otherwise hold none out): the
    /// lowest draw is then held out, or the highest kept for training.
    pub fn assign(&self, stems: &[&str]) -> Vec<Side> {
        let mut sides: Vec<Side> = stems.iter().map(|s| self.side(s)).collect();
        if stems.len() >= 2 {
            let draws: Vec<f64> = stems.iter().map(|s| self.draw(s)).collect();
            let by_draw = |a: &usize, b: &usize| draws[*a].total_cmp(&draws[*b]);
            let all = 0..stems.len();
            if !sides.contains(&Side::HeldOut) {
                sides[all.clone().min_by(by_draw).expect("non-empty")] = Side::HeldOut;
            }
            if !sides.contains(&Side::Train) {
                sides[all.max_by(by_draw).expect("non-empty")] = Side::Train;
            }
        }
        sides
    }
}

/// One row of `split.csv`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitRow {
    pub name: String,
    pub side: Side,
}

/// Record the side of every clean logo in `path` (CSV: name, side), written atomically.
pub fn write_split(path: &Path, rows: &[SplitRow]) -> Result<()> {
    write_csv(path, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn about_the_asked_share_is_held_out_and_the_choice_is_stable() {
        let cfg = SplitConfig::default();
        let names: Vec<String> = (0..4000).map(|i| format!("src/logo-{i}")).collect();
        let held = names
            .iter()
            .filter(|n| cfg.side(n) == Side::HeldOut)
            .count();
        let share = held as f64 / names.len() as f64;
        assert!((0.13..0.17).contains(&share), "{share}");
        // Same name, same side; another seed, another split.
        assert!(names.iter().all(|n| cfg.side(n) == cfg.side(n)));
        let other = SplitConfig {
            seed: 1,
            ..cfg.clone()
        };
        assert!(names.iter().any(|n| cfg.side(n) != other.side(n)));
        // A large set is split logo by logo.
        let stems: Vec<&str> = names.iter().map(String::as_str).collect();
        let sides = cfg.assign(&stems);
        assert!(stems.iter().zip(&sides).all(|(n, s)| cfg.side(n) == *s));
    }

    #[test]
    fn a_tiny_set_has_one_logo_on_each_side() {
        for n in 2..8 {
            let names: Vec<String> = (0..n).map(|i| format!("tiny-{i}")).collect();
            let stems: Vec<&str> = names.iter().map(String::as_str).collect();
            let sides = SplitConfig::default().assign(&stems);
            assert!(
                sides.contains(&Side::Train) && sides.contains(&Side::HeldOut),
                "{n}"
            );
        }
        assert_eq!(SplitConfig::default().assign(&["alone"]).len(), 1);
    }

    #[test]
    fn impossible_fractions_are_refused() {
        for f in [0.0, 0.5, -1.0, f64::NAN] {
            let err = SplitConfig {
                held_out_fraction: f,
                seed: 0,
            }
            .validate()
            .unwrap_err();
            assert!(err.to_string().contains("held_out_fraction"), "{err}");
        }
    }
}

//! How far apart two sets of images are, measured on their feature vectors (one row per image):
//! Fréchet distance, kernel inception distance (KID), precision and recall, density and coverage,
//! and a memorisation check. The feature extractor is separate ([`super`]); these functions only see numbers.
//!
//! All arithmetic is in f64. Every function takes features as a [`Features`] matrix.

use nalgebra::{DMatrix, DVector, SymmetricEigen};
use rand::seq::index::sample;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// A set of feature vectors: `rows` images × `dim` numbers, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub rows: usize,
    pub dim: usize,
    pub data: Vec<f64>,
}

impl Features {
    pub fn new(rows: usize, dim: usize, data: Vec<f64>) -> Result<Self> {
        if data.len() != rows * dim {
            return Err(Error::Metric(format!(
                "features: {} numbers do not make {rows} rows of {dim}",
                data.len()
            )));
        }
        Ok(Self { rows, dim, data })
    }

    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Self {
        let mut data = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            data.extend_from_slice(self.row(i));
        }
        Self {
            rows: indices.len(),
            dim: self.dim,
            data,
        }
    }

    fn matrix(&self) -> DMatrix<f64> {
        DMatrix::from_row_slice(self.rows, self.dim, &self.data)
    }
}

fn same_dim(a: &Features, b: &Features) -> Result<()> {
    if a.dim != b.dim {
        return Err(Error::Metric(format!(
            "feature sizes differ: {} and {}",
            a.dim, b.dim
        )));
    }
    Ok(())
}

/// Mean vector and unbiased covariance matrix of the rows.
fn mean_and_covariance(f: &Features) -> Result<(DVector<f64>, DMatrix<f64>)> {
    if f.rows < 2 {
        return Err(Error::Metric(
            "a covariance needs at least 2 feature vectors".into(),
        ));
    }
    let x = f.matrix();
    let mean = x.row_mean().transpose();
    let centred = DMatrix::from_fn(f.rows, f.dim, |i, j| x[(i, j)] - mean[j]);
    let cov = centred.transpose() * &centred / (f.rows as f64 - 1.0);
    Ok((mean, cov))
}

/// Eigenvalues of a symmetric matrix (made exactly symmetric first).
fn symmetric_eigen(m: DMatrix<f64>) -> SymmetricEigen<f64, nalgebra::Dyn> {
    let sym = (&m + m.transpose()) * 0.5;
    SymmetricEigen::new(sym)
}

/// Fréchet distance between Gaussians fitted to `a` and `b`:
/// `|μa − μb|² + tr(Σa) + tr(Σb) − 2·tr((Σa^½ Σb Σa^½)^½)`.
///
/// The matrix square roots come from symmetric eigendecompositions (covariances are positive
/// semi-definite; rounding's tiny negative eigenvalues are clamped to 0), so no complex numbers
/// appear, unlike the `scipy.linalg.sqrtm` route of the reference FID code.
// ANCHOR: frechet_distance
pub fn frechet_distance(a: &Features, b: &Features) -> Result<f64> {
    same_dim(a, b)?;
    let (mu_a, cov_a) = mean_and_covariance(a)?;
    let (mu_b, cov_b) = mean_and_covariance(b)?;
    let eigen_a = symmetric_eigen(cov_a.clone());
    let sqrt_values = eigen_a.eigenvalues.map(|v| v.max(0.0).sqrt());
    let sqrt_a = &eigen_a.eigenvectors
        * DMatrix::from_diagonal(&sqrt_values)
        * eigen_a.eigenvectors.transpose(); // Σa^½
    let middle = &sqrt_a * &cov_b * &sqrt_a; // Σa^½ Σb Σa^½, symmetric PSD
    let trace_sqrt: f64 = symmetric_eigen(middle)
        .eigenvalues
        .iter()
        .map(|v| v.max(0.0).sqrt())
        .sum();
    let distance =
        (&mu_a - &mu_b).norm_squared() + cov_a.trace() + cov_b.trace() - 2.0 * trace_sqrt;
    Ok(distance.max(0.0))
}
// ANCHOR_END: frechet_distance

/// A KID estimate: the mean of the unbiased MMD² over random subsets, and its standard error.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Kid {
    pub mean: f64,
    pub standard_error: f64,
}

/// Kernel inception distance (Bińkowski et al. 2018): the squared maximum mean discrepancy
/// between `a` and `b` with the cubic polynomial kernel `k(x, y) = (x·y / d + 1)³`, estimated
/// without bias on `subsets` random subsets of `subset_size` rows from each set (seeded).
/// Unlike the Fréchet distance, its expectation does not depend on the sample size, and it can
/// be slightly negative when the two sets come from one distribution.
// ANCHOR: kid
pub fn kernel_inception_distance(
    a: &Features,
    b: &Features,
    subsets: usize,
    subset_size: usize,
    seed: u64,
) -> Result<Kid> {
    same_dim(a, b)?;
    let m = subset_size.min(a.rows).min(b.rows);
    if m < 2 || subsets == 0 {
        return Err(Error::Metric(format!(
            "KID needs at least 2 rows per subset and 1 subset (got {m} rows, {subsets} subsets)"
        )));
    }
    let d = a.dim as f64;
    let kernel = |x: &[f64], y: &[f64]| {
        let dot: f64 = x.iter().zip(y).map(|(p, q)| p * q).sum();
        (dot / d + 1.0).powi(3)
    };
    // The subsets are drawn first, in order, so the result does not depend on thread timing.
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draws: Vec<(Vec<usize>, Vec<usize>)> = (0..subsets)
        .map(|_| {
            (
                sample(&mut rng, a.rows, m).into_vec(),
                sample(&mut rng, b.rows, m).into_vec(),
            )
        })
        .collect();
    use rayon::prelude::*;
    let estimates: Vec<f64> = draws
        .par_iter()
        .map(|(ia, ib)| {
            let (x, y) = (a.select(ia), b.select(ib));
            let (mut kxx, mut kyy, mut kxy) = (0.0, 0.0, 0.0);
            for i in 0..m {
                for j in 0..m {
                    if i != j {
                        kxx += kernel(x.row(i), x.row(j));
                        kyy += kernel(y.row(i), y.row(j));
                    }
                    kxy += kernel(x.row(i), y.row(j));
                }
            }
            let mf = m as f64;
            (kxx + kyy) / (mf * (mf - 1.0)) - 2.0 * kxy / (mf * mf)
        })
        .collect();
    let n = estimates.len() as f64;
    let mean = estimates.iter().sum::<f64>() / n;
    let variance = if estimates.len() > 1 {
        estimates.iter().map(|e| (e - mean).powi(2)).sum::<f64>() / (n - 1.0)
    } else {
        0.0
    };
    Ok(Kid {
        mean,
        standard_error: (variance / n).sqrt(),
    })
}
// ANCHOR_END: kid

fn squared_distance(x: &[f64], y: &[f64]) -> f64 {
    x.iter().zip(y).map(|(p, q)| (p - q).powi(2)).sum()
}

/// For every row of `a`, the squared distance to its nearest row of `b` (skipping the row itself
/// when `a` and `b` are the same set).
fn nearest_squared(a: &Features, b: &Features, same_set: bool) -> Vec<f64> {
    use rayon::prelude::*;
    (0..a.rows)
        .into_par_iter()
        .map(|i| {
            (0..b.rows)
                .filter(|&j| !(same_set && i == j))
                .map(|j| squared_distance(a.row(i), b.row(j)))
                .fold(f64::INFINITY, f64::min)
        })
        .collect()
}

/// Squared distance from every row to its k-th nearest other row of the same set: the radius of
/// the ball around it that, with all the others, estimates the set's manifold.
fn knn_radii(f: &Features, k: usize) -> Vec<f64> {
    use rayon::prelude::*;
    (0..f.rows)
        .into_par_iter()
        .map(|i| {
            let mut d: Vec<f64> = (0..f.rows)
                .filter(|&j| j != i)
                .map(|j| squared_distance(f.row(i), f.row(j)))
                .collect();
            let k = k.min(d.len()).max(1) - 1;
            d.select_nth_unstable_by(k, f64::total_cmp);
            d[k]
        })
        .collect()
}

/// Fraction of the rows of `points` inside at least one ball (centre row of `centres`, squared
/// radius `radii`).
fn coverage(points: &Features, centres: &Features, radii: &[f64]) -> f64 {
    use rayon::prelude::*;
    let inside = (0..points.rows)
        .into_par_iter()
        .filter(|&i| {
            (0..centres.rows).any(|j| squared_distance(points.row(i), centres.row(j)) <= radii[j])
        })
        .count();
    inside as f64 / points.rows as f64
}

/// Improved precision and recall (Kynkäänniemi et al. 2019).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct PrecisionRecall {
    /// Share of generated images that fall on the real images' manifold: are the samples
    /// realistic?
    pub precision: f64,
    /// Share of real images that fall on the generated images' manifold: does the generator
    /// cover the variety of the data (no mode collapse)?
    pub recall: f64,
}

/// Precision and recall of `fake` against `real`, each manifold estimated by balls reaching each
/// point's `k`-th nearest neighbour (the paper uses k = 3).
// ANCHOR: precision_recall
pub fn precision_recall(real: &Features, fake: &Features, k: usize) -> Result<PrecisionRecall> {
    same_dim(real, fake)?;
    if real.rows <= k || fake.rows <= k {
        return Err(Error::Metric(format!(
            "precision/recall with k = {k} needs more than {k} real and generated images"
        )));
    }
    let real_radii = knn_radii(real, k);
    let fake_radii = knn_radii(fake, k);
    Ok(PrecisionRecall {
        precision: coverage(fake, real, &real_radii),
        recall: coverage(real, fake, &fake_radii),
    })
}
// ANCHOR_END: precision_recall

/// Density and coverage (Naeem et al. 2020): precision and recall made robust to outliers.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DensityCoverage {
    /// How many real neighbourhoods a generated image falls into, on average, divided by k:
    /// about 1 for a sample of the real distribution, above 1 when samples crowd where real
    /// images are densest, near 0 when they fall outside the real images' neighbourhoods.
    pub density: f64,
    /// Share of real images whose neighbourhood holds at least one generated image: the
    /// variety of the real data the samples reach (about 1 − (1 − 1/(k+1))^k-ish for real data).
    pub coverage: f64,
}

/// Density and coverage of `fake` against `real`, with neighbourhoods reaching each real image's
/// `k`-th nearest real neighbour (the paper uses k = 5). Unlike improved precision, one real
/// outlier with a huge ball cannot make a cloud of bad samples look realistic, and the
/// neighbourhoods are only ever the real images', so fakes that bunch up cannot inflate recall.
// ANCHOR: density_coverage
pub fn density_coverage(real: &Features, fake: &Features, k: usize) -> Result<DensityCoverage> {
    use rayon::prelude::*;
    same_dim(real, fake)?;
    if real.rows <= k || fake.rows == 0 || k == 0 {
        return Err(Error::Metric(format!(
            "density/coverage with k = {k} needs more than {k} real images and 1 generated"
        )));
    }
    let radii = knn_radii(real, k);
    // For every generated image: in how many real neighbourhoods does it fall?
    let hits: usize = (0..fake.rows)
        .into_par_iter()
        .map(|j| {
            (0..real.rows)
                .filter(|&i| squared_distance(fake.row(j), real.row(i)) <= radii[i])
                .count()
        })
        .sum();
    // For every real image: is its nearest generated image inside its neighbourhood?
    let nearest = nearest_squared(real, fake, false);
    let covered = nearest.iter().zip(&radii).filter(|(d, r)| d <= r).count();
    Ok(DensityCoverage {
        density: hits as f64 / (k * fake.rows) as f64,
        coverage: covered as f64 / real.rows as f64,
    })
}
// ANCHOR_END: density_coverage

/// Does the generator copy its training images? (Meehan et al. 2020, in spirit.) Compares how
/// close generated images come to the GAN's training images with how close *held-out* real
/// logos — which no model trained on — come to them: the natural distance of a new logo from
/// the training set.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Memorisation {
    /// Median distance from a generated image to its nearest training image.
    pub generated_median: f64,
    /// Median distance from a held-out logo to its nearest training image.
    pub held_out_median: f64,
    /// `generated_median / held_out_median`: about 1 is healthy; well below 1 means samples sit
    /// closer to training images than new real logos do, i.e. near-copies.
    pub ratio: f64,
    /// Share of generated images closer to a training image than the closest 5% of held-out
    /// logos are: near-copies (5% for held-out logos, by construction).
    pub near_copies: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        0.5 * (v[n / 2 - 1] + v[n / 2])
    }
}

/// Nearest-neighbour distances of `generated` to `train`, against those of `held_out` to `train`.
// ANCHOR: memorisation
pub fn memorisation(
    train: &Features,
    generated: &Features,
    held_out: &Features,
) -> Result<Memorisation> {
    same_dim(train, generated)?;
    same_dim(train, held_out)?;
    if train.rows == 0 || generated.rows == 0 || held_out.rows < 20 {
        return Err(Error::Metric(
            "memorisation needs training images, generated images and at least 20 held-out \
             logos"
                .into(),
        ));
    }
    let sqrt = |v: Vec<f64>| v.into_iter().map(f64::sqrt).collect::<Vec<_>>();
    let held = sqrt(nearest_squared(held_out, train, false));
    let generated = sqrt(nearest_squared(generated, train, false));
    let mut sorted = held.clone();
    sorted.sort_by(f64::total_cmp);
    let threshold = sorted[sorted.len() / 20];
    let near = generated.iter().filter(|&&d| d < threshold).count() as f64 / generated.len() as f64;
    let (g, h) = (median(generated), median(held));
    Ok(Memorisation {
        generated_median: g,
        held_out_median: h,
        ratio: if h > 0.0 { g / h } else { f64::INFINITY },
        near_copies: near,
    })
}
// ANCHOR_END: memorisation

#[cfg(test)]
mod tests {
    use super::*;
    use rand_distr::{Distribution, Normal};

    /// `rows` × `dim` samples of N(mean, std²) per coordinate.
    fn gaussian(rows: usize, dim: usize, mean: f64, std: f64, seed: u64) -> Features {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let n = Normal::new(mean, std).unwrap();
        Features::new(
            rows,
            dim,
            (0..rows * dim).map(|_| n.sample(&mut rng)).collect(),
        )
        .unwrap()
    }

    #[test]
    fn frechet_distance_of_a_set_with_itself_is_zero() {
        let a = gaussian(200, 8, 0.0, 1.0, 1);
        let fd = frechet_distance(&a, &a).unwrap();
        assert!(fd < 1e-8, "{fd}");
    }

    #[test]
    fn frechet_distance_matches_the_closed_form_and_grows_with_the_shift() {
        // Two Gaussians with equal covariance: FD = |μa − μb|² exactly (up to sampling noise
        // in the fitted covariances, which cancels because b is a shifted copy of a).
        let a = gaussian(300, 6, 0.0, 1.0, 2);
        let mut previous = -1.0;
        for shift in [0.5, 1.0, 2.0] {
            let b =
                Features::new(a.rows, a.dim, a.data.iter().map(|v| v + shift).collect()).unwrap();
            let fd = frechet_distance(&a, &b).unwrap();
            let expected = 6.0 * shift * shift;
            assert!(
                (fd - expected).abs() < 1e-6 * expected,
                "shift {shift}: {fd} vs {expected}"
            );
            assert!(fd > previous);
            previous = fd;
        }
        // Scaling (a "blur" that shrinks the spread) raises it too: tr terms no longer cancel.
        let narrow =
            Features::new(a.rows, a.dim, a.data.iter().map(|v| v * 0.5).collect()).unwrap();
        let fd = frechet_distance(&a, &narrow).unwrap();
        // For isotropic covariances σa² I and σb² I: FD ≈ d (σa − σb)² = 6 · 0.25 (sampled).
        assert!((fd - 1.5).abs() < 0.3, "{fd}");
    }

    #[test]
    fn kid_is_unbiased_on_small_samples() {
        // Two samples of one distribution: the estimates average to 0 (they can be negative),
        // while the Fréchet distance of small samples is biased upwards.
        let mut total = 0.0;
        let trials = 40;
        for t in 0..trials {
            let a = gaussian(30, 4, 0.0, 1.0, 100 + t);
            let b = gaussian(30, 4, 0.0, 1.0, 200 + t);
            total += kernel_inception_distance(&a, &b, 1, 30, t).unwrap().mean;
        }
        let mean = total / trials as f64;
        let shifted = kernel_inception_distance(
            &gaussian(30, 4, 0.0, 1.0, 7),
            &gaussian(30, 4, 1.0, 1.0, 8),
            10,
            30,
            0,
        )
        .unwrap();
        assert!(
            mean.abs() < 0.1 * shifted.mean,
            "same distribution {mean}, shifted {shifted:?}"
        );
        assert!(shifted.mean > 5.0 * shifted.standard_error);
        let fd = frechet_distance(
            &gaussian(30, 4, 0.0, 1.0, 9),
            &gaussian(30, 4, 0.0, 1.0, 10),
        )
        .unwrap();
        assert!(fd > 0.0);
    }

    #[test]
    fn precision_and_recall_of_identical_sets_are_one() {
        let a = gaussian(100, 5, 0.0, 1.0, 3);
        let pr = precision_recall(&a, &a, 3).unwrap();
        assert_eq!(
            pr,
            PrecisionRecall {
                precision: 1.0,
                recall: 1.0
            }
        );
    }

    #[test]
    fn collapse_keeps_precision_and_loses_recall() {
        // A generator that makes only the neighbourhood of one real image: realistic (high
        // precision) but without variety (low recall).
        let real = gaussian(200, 3, 0.0, 1.0, 4);
        let centre = real.row(0).to_vec();
        let fake = Features::new(
            100,
            3,
            gaussian(100, 3, 0.0, 0.01, 5)
                .data
                .iter()
                .enumerate()
                .map(|(i, v)| centre[i % 3] + v)
                .collect(),
        )
        .unwrap();
        let pr = precision_recall(&real, &fake, 3).unwrap();
        assert!(pr.precision > 0.9, "{pr:?}");
        assert!(pr.recall < 0.1, "{pr:?}");
        // Far-away fakes: neither.
        let far = gaussian(100, 3, 10.0, 1.0, 6);
        let pr = precision_recall(&real, &far, 3).unwrap();
        assert!(pr.precision < 0.05 && pr.recall < 0.05, "{pr:?}");
    }

    #[test]
    fn memorisation_flags_copies() {
        let train = gaussian(200, 4, 0.0, 1.0, 11);
        let held_out = gaussian(60, 4, 0.0, 1.0, 12);
        let fresh = gaussian(50, 4, 0.0, 1.0, 13);
        let healthy = memorisation(&train, &fresh, &held_out).unwrap();
        assert!(
            healthy.ratio > 0.7 && healthy.ratio < 1.4 && healthy.near_copies < 0.2,
            "{healthy:?}"
        );
        let copies = train.select(&(0..50).collect::<Vec<_>>());
        let copied = memorisation(&train, &copies, &held_out).unwrap();
        assert!(
            copied.ratio < 0.01 && copied.near_copies == 1.0,
            "{copied:?}"
        );
    }

    #[test]
    fn density_and_coverage_tell_a_real_sample_from_a_collapsed_or_distant_one() {
        let real = gaussian(300, 4, 0.0, 1.0, 20);
        let fresh = gaussian(300, 4, 0.0, 1.0, 21);
        let dc = density_coverage(&real, &fresh, 5).unwrap();
        assert!((0.7..1.3).contains(&dc.density), "{dc:?}");
        assert!(dc.coverage > 0.8, "{dc:?}");
        // All samples near one real point: dense there, covering almost nothing.
        let centre = real.row(0).to_vec();
        let collapsed = Features::new(
            300,
            4,
            gaussian(300, 4, 0.0, 0.01, 22)
                .data
                .iter()
                .enumerate()
                .map(|(i, v)| centre[i % 4] + v)
                .collect(),
        )
        .unwrap();
        let dc = density_coverage(&real, &collapsed, 5).unwrap();
        assert!(dc.coverage < 0.05, "{dc:?}");
        // Far away: neither.
        let far = gaussian(300, 4, 6.0, 1.0, 23);
        let dc = density_coverage(&real, &far, 5).unwrap();
        assert!(dc.density < 0.05 && dc.coverage < 0.05, "{dc:?}");
    }
}

//! Logo families without labels (chapter 7): the training images clustered by k-means in the
//! judge's feature space, so that a conditional GAN can be asked for one family.
//!
//! Nobody labelled the logos. Sage et al. (CVPR 2018) found on 548 000 favicons that clusters
//! of the data serve a GAN as well as labels would: they split a varied set into families that
//! are each easier to learn, and give the reader a handle ("one of these"). The features are
//! the judge's encoder's ([`crate::metrics::FeatureEncoder`]): images it places close together
//! look alike in shape and colour, so a cluster there is a family of look-alikes.
//!
//! * [`kmeans`]: Lloyd's algorithm from k-means++ starts, the best of several restarts;
//! * [`silhouette`]: how well each image sits in its cluster rather than the next one, the
//!   measure [`choose_k`] uses to argue for a number of families from the data;
//! * [`FamilyRow`], [`save_families`], [`load_families`]: the labels beside the images.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::Device;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::distances::Features;
use super::encoder::{EncoderConfig, FeatureEncoder};
use super::score::Standardiser;
use crate::data::dataset::ImageDataset;
use crate::data::pipeline::ensure_dataset;
use crate::error::{Error, Result};
use crate::fsutil::save_png;
use crate::paths::DataLayout;
use crate::viz::image_grid;

/// The most families a clustering may ask for: more would leave a few dozen images per family.
pub const MAX_FAMILIES: usize = 64;

/// Settings of [`kmeans`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KMeansConfig {
    /// Number of clusters.
    pub k: usize,
    /// Independent k-means++ starts; the one with the least inertia is kept (Lloyd's algorithm
    /// finds a local optimum only).
    pub restarts: usize,
    /// Most assignment / update rounds per start (it usually settles in a few dozen).
    pub max_iterations: usize,
    pub seed: u64,
}

impl Default for KMeansConfig {
    fn default() -> Self {
        Self {
            k: 6,
            restarts: 4,
            max_iterations: 100,
            seed: 0,
        }
    }
}

impl KMeansConfig {
    /// Refuse settings that cannot run, naming the field.
    pub fn validate(&self) -> Result<()> {
        if !(1..=MAX_FAMILIES).contains(&self.k) {
            return Err(Error::config(
                "k",
                format!("{} is not in 1..={MAX_FAMILIES}", self.k),
            ));
        }
        if !(1..=100).contains(&self.restarts) {
            return Err(Error::config("restarts", "must be in 1..=100"));
        }
        if !(1..=10_000).contains(&self.max_iterations) {
            return Err(Error::config("max_iterations", "must be in 1..=10000"));
        }
        Ok(())
    }
}

/// The outcome of [`kmeans`].
#[derive(Debug, Clone, PartialEq)]
pub struct Clustering {
    pub k: usize,
    /// The cluster of each row, in `0..k`; cluster 0 is the largest, then by falling size.
    pub labels: Vec<u32>,
    /// The centres, `(k, dim)` row-major.
    pub centres: Vec<f64>,
    /// Sum over the rows of the squared distance to their centre: what k-means minimises.
    pub inertia: f64,
}

impl Clustering {
    /// How many rows each cluster holds, in cluster order (falling).
    pub fn sizes(&self) -> Vec<usize> {
        let mut sizes = vec![0; self.k];
        for &label in &self.labels {
            sizes[label as usize] += 1;
        }
        sizes
    }
}

fn squared_distance(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The nearest of `centres` (`(k, dim)`) to `row`, and its squared distance.
fn nearest(row: &[f64], centres: &[f64], dim: usize) -> (usize, f64) {
    centres
        .chunks_exact(dim)
        .map(|c| squared_distance(row, c))
        .enumerate()
        .fold(
            (0, f64::INFINITY),
            |best, (i, d)| {
                if d < best.1 {
                    (i, d)
                } else {
                    best
                }
            },
        )
}

// ANCHOR: kmeans
/// k-means of the rows of `features`: `config.restarts` runs of Lloyd's algorithm, each from a
/// k-means++ start, keeping the run with the least inertia. Deterministic for a seed.
pub fn kmeans(features: &Features, config: &KMeansConfig) -> Result<Clustering> {
    config.validate()?;
    let (n, dim) = (features.rows, features.dim);
    if n < config.k {
        return Err(Error::config(
            "k",
            format!("{} clusters of {n} images: ask for fewer", config.k),
        ));
    }
    let row = |i: usize| &features.data[i * dim..(i + 1) * dim];
    let mut best: Option<Clustering> = None;
    for restart in 0..config.restarts {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed.wrapping_add(restart as u64));
        // k-means++: the first centre at random, each next one drawn with probability
        // proportional to the squared distance to the nearest centre chosen so far.
        let mut centres = row(rng.random_range(0..n)).to_vec();
        let mut closest: Vec<f64> = (0..n).map(|i| squared_distance(row(i), &centres)).collect();
        while centres.len() < config.k * dim {
            let total: f64 = closest.iter().sum();
            let pick = if total > 0.0 {
                let mut target = rng.random_range(0.0..total);
                closest
                    .iter()
                    .position(|&d| {
                        target -= d;
                        target < 0.0
                    })
                    .unwrap_or(n - 1)
            } else {
                rng.random_range(0..n) // every row sits on a centre already
            };
            let centre = row(pick).to_vec();
            for (i, d) in closest.iter_mut().enumerate() {
                *d = d.min(squared_distance(row(i), &centre));
            }
            centres.extend(centre);
        }
        // Lloyd: assign every row to its nearest centre, move every centre to its rows' mean.
        let mut labels = vec![u32::MAX; n];
        for _ in 0..config.max_iterations {
            let mut changed = false;
            for (i, label) in labels.iter_mut().enumerate() {
                let (c, _) = nearest(row(i), &centres, dim);
                changed |= *label != c as u32;
                *label = c as u32;
            }
            if !changed {
                break;
            }
            let mut sums = vec![0.0; config.k * dim];
            let mut counts = vec![0usize; config.k];
            for (i, &label) in labels.iter().enumerate() {
                counts[label as usize] += 1;
                let sum = &mut sums[label as usize * dim..(label as usize + 1) * dim];
                sum.iter_mut().zip(row(i)).for_each(|(s, x)| *s += x);
            }
            for (c, &count) in counts.iter().enumerate() {
                let centre = &mut centres[c * dim..(c + 1) * dim];
                if count == 0 {
                    // An empty cluster restarts on the row farthest from its centre.
                    let far = (0..n)
                        .max_by(|&a, &b| {
                            let d = |i: usize| nearest(row(i), &sums, dim).1;
                            d(a).total_cmp(&d(b))
                        })
                        .expect("n ≥ k ≥ 1");
                    centre.copy_from_slice(row(far));
                } else {
                    let sum = &sums[c * dim..(c + 1) * dim];
                    centre
                        .iter_mut()
                        .zip(sum)
                        .for_each(|(m, s)| *m = s / count as f64);
                }
            }
        }
        let inertia = (0..n)
            .map(|i| squared_distance(row(i), &centres[labels[i] as usize * dim..][..dim]))
            .sum();
        if best.as_ref().is_none_or(|b| inertia < b.inertia) {
            best = Some(Clustering {
                k: config.k,
                labels,
                centres,
                inertia,
            });
        }
    }
    Ok(largest_first(best.expect("at least one restart")))
}
// ANCHOR_END: kmeans

/// The same clustering with its clusters renumbered by falling size (ties by first row), so
/// that family 0 is always the largest whatever order the centres were found in.
fn largest_first(clustering: Clustering) -> Clustering {
    let k = clustering.k;
    let dim = clustering.centres.len() / k;
    let sizes = clustering.sizes();
    let first = |c: usize| clustering.labels.iter().position(|&l| l as usize == c);
    let mut order: Vec<usize> = (0..k).collect();
    order.sort_by_key(|&c| (std::cmp::Reverse(sizes[c]), first(c)));
    let mut new_label = vec![0u32; k];
    for (new, &old) in order.iter().enumerate() {
        new_label[old] = new as u32;
    }
    Clustering {
        k,
        labels: clustering
            .labels
            .iter()
            .map(|&l| new_label[l as usize])
            .collect(),
        centres: order
            .iter()
            .flat_map(|&c| clustering.centres[c * dim..(c + 1) * dim].to_vec())
            .collect(),
        inertia: clustering.inertia,
    }
}

/// The mean silhouette of a clustering: for each row, with `a` its mean distance to the other
/// rows of its cluster and `b` the least mean distance to another cluster's rows,
/// `(b − a) / max(a, b)`; 1 when clusters are tight and far apart, 0 when rows sit between two,
/// negative when they sit in the wrong one. A row alone in its cluster counts 0. At most
/// `max_rows` rows (an even spread over the set) are used: the measure costs rows².
pub fn silhouette(features: &Features, labels: &[u32], k: usize, max_rows: usize) -> Result<f64> {
    let (n, dim) = (features.rows, features.dim);
    if labels.len() != n || n == 0 || k == 0 {
        return Err(Error::Metric(format!(
            "silhouette: {} labels for {n} rows and {k} clusters",
            labels.len()
        )));
    }
    let stride = n.div_ceil(max_rows.max(1));
    let picked: Vec<usize> = (0..n).step_by(stride).collect();
    let row = |i: usize| &features.data[i * dim..(i + 1) * dim];
    let total: f64 = picked
        .iter()
        .map(|&i| {
            let mut sums = vec![0.0; k];
            let mut counts = vec![0usize; k];
            for &j in picked.iter().filter(|&&j| j != i) {
                let c = labels[j] as usize;
                sums[c] += squared_distance(row(i), row(j)).sqrt();
                counts[c] += 1;
            }
            let own = labels[i] as usize;
            if counts[own] == 0 {
                return 0.0;
            }
            let a = sums[own] / counts[own] as f64;
            let b = (0..k)
                .filter(|&c| c != own && counts[c] > 0)
                .map(|c| sums[c] / counts[c] as f64)
                .fold(f64::INFINITY, f64::min);
            if !b.is_finite() || a.max(b) == 0.0 {
                0.0
            } else {
                (b - a) / a.max(b)
            }
        })
        .sum();
    Ok(total / picked.len() as f64)
}

/// One candidate number of families and how well the data splits into that many.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FamilyCount {
    pub k: usize,
    pub silhouette: f64,
    pub inertia: f64,
    /// Images per family, largest first.
    pub sizes: Vec<usize>,
}

/// Cluster `features` for every k in `ks` and return the candidates, with the index of the one
/// whose silhouette is highest: the number of families the data itself argues for.
pub fn choose_k(
    features: &Features,
    ks: std::ops::RangeInclusive<usize>,
    config: &KMeansConfig,
) -> Result<(usize, Vec<FamilyCount>)> {
    let mut candidates = Vec::new();
    for k in ks {
        let clustering = kmeans(
            features,
            &KMeansConfig {
                k,
                ..config.clone()
            },
        )?;
        candidates.push(FamilyCount {
            k,
            silhouette: silhouette(features, &clustering.labels, k, 2000)?,
            inertia: clustering.inertia,
            sizes: clustering.sizes(),
        });
    }
    let best = (0..candidates.len())
        .max_by(|&a, &b| {
            candidates[a]
                .silhouette
                .total_cmp(&candidates[b].silhouette)
        })
        .ok_or_else(|| Error::config("k", "no candidate numbers of families"))?;
    Ok((best, candidates))
}

/// One line of `families.csv`: an image of the training folder and its family.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FamilyRow {
    pub name: String,
    pub family: u32,
}

/// Write `names[i]`'s family `labels[i]` to `path` as CSV (atomically).
pub fn save_families(path: &Path, names: &[String], labels: &[u32]) -> Result<()> {
    if names.len() != labels.len() {
        return Err(Error::Metric(format!(
            "{} names but {} family labels",
            names.len(),
            labels.len()
        )));
    }
    let rows: Vec<FamilyRow> = names
        .iter()
        .zip(labels)
        .map(|(name, &family)| FamilyRow {
            name: name.clone(),
            family,
        })
        .collect();
    crate::fsutil::write_csv(path, &rows)
}

/// The family of each of `names` read from `path`, and the number of families. Refused, naming
/// the file, when a name has no row, a name has two, or a family number is out of range.
pub fn load_families(path: &Path, names: &[String]) -> Result<(Vec<u32>, usize)> {
    let rows: Vec<FamilyRow> = crate::fsutil::read_csv(path)?;
    let mut by_name = HashMap::with_capacity(rows.len());
    for row in &rows {
        if row.family as usize >= MAX_FAMILIES {
            return Err(Error::bad_input(
                path,
                format!(
                    "`{}` has family {}, more than the {MAX_FAMILIES} allowed",
                    row.name, row.family
                ),
            ));
        }
        if by_name.insert(row.name.as_str(), row.family).is_some() {
            return Err(Error::bad_input(
                path,
                format!("`{}` appears twice", row.name),
            ));
        }
    }
    let labels = names
        .iter()
        .map(|name| {
            by_name.get(name.as_str()).copied().ok_or_else(|| {
                Error::bad_input(
                    path,
                    format!("has no family for `{name}`: cluster the training images again"),
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    let k = labels.iter().max().map_or(0, |&m| m as usize + 1);
    Ok((labels, k))
}

/// The numbers of families chapter 7 weighs with [`choose_k`].
pub const CANDIDATE_FAMILIES: std::ops::RangeInclusive<usize> = 2..=8;

/// The course's number of logo families. On its logos the silhouette is low for every k from 2
/// to 8 (0.21 at 2 falling to 0.15 at 8): the logos form a continuum, not islands, so no k is
/// the data's own and the number is a choice of granularity. Six keeps every family above a
/// thousand images (over thirty batches of 32) while its families differ at a glance (round
/// dark badges, orange swirls, angular glyphs, outlined circles, line art, wordmarks).
pub const DEFAULT_FAMILIES: usize = 6;

/// Where the families of `layout`'s training logos in `k` clusters are kept: beside the
/// judge's encoder, at its image size (file names are the same at every size).
pub fn families_path(layout: &DataLayout, k: usize) -> PathBuf {
    let size = EncoderConfig::default().image_size as u32;
    layout.processed(size).join(format!("families-k{k}.csv"))
}

/// The training logos of `layout` (at the judge's image size, built if missing) and their
/// features through the judge's encoder, each dimension standardised as the judge does, so
/// that no dimension dominates the distances.
pub fn family_features(layout: &DataLayout, device: &Device) -> Result<(ImageDataset, Features)> {
    let config = EncoderConfig::default();
    let size = config.image_size;
    let train_dir = ensure_dataset(layout, size as u32, false)?;
    let train = ImageDataset::load(&train_dir, size, device)?;
    let encoder = FeatureEncoder::load_or_train(
        &layout.processed(size as u32),
        &config,
        &train,
        &mut |_, _| (),
    )?;
    let features = encoder.dataset_features(&train)?;
    Ok((train, Standardiser::fit(&features).apply(&features)))
}

/// What [`cluster_training_logos`] found and wrote.
#[derive(Debug, Clone)]
pub struct FamilyReport {
    pub k: usize,
    /// Images per family, largest first.
    pub sizes: Vec<usize>,
    pub silhouette: f64,
    /// The family of every training image (`families-k<k>.csv`).
    pub path: PathBuf,
    /// One row per family: its images nearest the family's centre (`families-k<k>.png`).
    pub grid: PathBuf,
}

/// Cluster the training logos of `layout` into `k` families in the judge's feature space,
/// write each image's family (`families-k<k>.csv`) and a grid of each family's `per_row`
/// most typical images (nearest its centre; `families-k<k>.png`).
pub fn cluster_training_logos(
    layout: &DataLayout,
    k: usize,
    per_row: usize,
    device: &Device,
) -> Result<FamilyReport> {
    let (train, features) = family_features(layout, device)?;
    cluster_and_save(&train, &features, k, per_row, &families_path(layout, k))
}

/// [`cluster_training_logos`] on images and features already at hand.
pub fn cluster_and_save(
    train: &ImageDataset,
    features: &Features,
    k: usize,
    per_row: usize,
    path: &Path,
) -> Result<FamilyReport> {
    let clustering = kmeans(
        features,
        &KMeansConfig {
            k,
            ..KMeansConfig::default()
        },
    )?;
    let images = train.to_images()?;
    let dim = features.dim;
    let mut rows = Vec::with_capacity(k * per_row);
    for family in 0..k {
        let centre = &clustering.centres[family * dim..(family + 1) * dim];
        let mut members: Vec<(f64, usize)> = (0..features.rows)
            .filter(|&i| clustering.labels[i] as usize == family)
            .map(|i| (squared_distance(features.row(i), centre), i))
            .collect();
        members.sort_by(|a, b| a.0.total_cmp(&b.0));
        let blank = image::RgbImage::from_pixel(
            train.image_size as u32,
            train.image_size as u32,
            image::Rgb([255; 3]),
        );
        rows.extend((0..per_row).map(|j| {
            members
                .get(j)
                .map_or(blank.clone(), |&(_, i)| images[i].clone())
        }));
    }
    save_families(path, &train.names, &clustering.labels)?;
    let grid = path.with_extension("png");
    save_png(&grid, &image_grid(&rows, per_row, 2))?;
    Ok(FamilyReport {
        k,
        sizes: clustering.sizes(),
        silhouette: silhouette(features, &clustering.labels, k, 2000)?,
        path: path.to_path_buf(),
        grid,
    })
}

/// The families of `data`'s images in `k` clusters of `layout`'s training logos, clustered
/// first if `families-k<k>.csv` is missing; returns `data` with them.
pub fn with_families(
    layout: &DataLayout,
    k: usize,
    data: ImageDataset,
    device: &Device,
) -> Result<ImageDataset> {
    let path = families_path(layout, k);
    if !path.is_file() {
        cluster_training_logos(layout, k, 8, device)?;
    }
    let (families, _) = load_families(&path, &data.names)?;
    data.with_families(families)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `per` points around each of `centres` (2-D), jittered by ±`spread`.
    fn blobs(centres: &[(f64, f64)], per: usize, spread: f64, seed: u64) -> Features {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut data = Vec::new();
        for &(x, y) in centres {
            for _ in 0..per {
                data.push(x + rng.random_range(-spread..spread));
                data.push(y + rng.random_range(-spread..spread));
            }
        }
        Features::new(centres.len() * per, 2, data).unwrap()
    }

    #[test]
    fn kmeans_finds_separated_blobs_largest_first() {
        // Three blobs of 30, 20 and 10 points, far apart, given smallest first.
        let mut data = blobs(&[(10.0, 0.0)], 10, 1.0, 1).data;
        data.extend(blobs(&[(0.0, 10.0)], 20, 1.0, 2).data);
        data.extend(blobs(&[(0.0, 0.0)], 30, 1.0, 3).data);
        let features = Features::new(60, 2, data).unwrap();
        let clustering = kmeans(
            &features,
            &KMeansConfig {
                k: 3,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(clustering.sizes(), vec![30, 20, 10]);
        assert!(clustering.labels[..10].iter().all(|&l| l == 2));
        assert!(clustering.labels[10..30].iter().all(|&l| l == 1));
        assert!(clustering.labels[30..].iter().all(|&l| l == 0));
        // Family 0's centre is the blob at the origin.
        assert!(clustering.centres[0].abs() < 1.0 && clustering.centres[1].abs() < 1.0);
        // The same seed gives the same clustering.
        let again = kmeans(
            &features,
            &KMeansConfig {
                k: 3,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(again, clustering);
    }

    #[test]
    fn the_silhouette_argues_for_the_true_number_of_blobs() {
        let features = blobs(
            &[(0.0, 0.0), (20.0, 0.0), (0.0, 20.0), (20.0, 20.0)],
            25,
            2.0,
            7,
        );
        let (best, candidates) = choose_k(&features, 2..=6, &KMeansConfig::default()).unwrap();
        assert_eq!(candidates[best].k, 4, "{candidates:?}");
        assert!(candidates[best].silhouette > 0.8);
        // Inertia only falls with k: it cannot choose k by itself.
        assert!(candidates
            .windows(2)
            .all(|w| w[1].inertia <= w[0].inertia + 1e-9));
        // One blob split in two scores lower than the blobs as they are.
        let one = blobs(&[(0.0, 0.0)], 50, 2.0, 8);
        let split = kmeans(
            &one,
            &KMeansConfig {
                k: 2,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(silhouette(&one, &split.labels, 2, 1000).unwrap() < 0.6);
    }

    #[test]
    fn impossible_requests_are_refused() {
        let features = blobs(&[(0.0, 0.0)], 3, 1.0, 0);
        let err = kmeans(
            &features,
            &KMeansConfig {
                k: 4,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("`k`"), "{err}");
        let err = kmeans(
            &features,
            &KMeansConfig {
                k: 0,
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("`k`"), "{err}");
    }

    #[test]
    fn families_round_trip_and_bad_files_name_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("families.csv");
        let names: Vec<String> = ["a.png", "b.png", "c.png"].map(String::from).to_vec();
        save_families(&path, &names, &[1, 0, 1]).unwrap();
        // Read back in another order: labels follow the names, not the rows.
        let reordered = vec![names[2].clone(), names[0].clone(), names[1].clone()];
        assert_eq!(
            load_families(&path, &reordered).unwrap(),
            (vec![1, 1, 0], 2)
        );
        let missing = vec!["d.png".to_string()];
        let err = load_families(&path, &missing).unwrap_err().to_string();
        assert!(
            err.contains("families.csv") && err.contains("d.png"),
            "{err}"
        );
        std::fs::write(&path, "name,family\na.png,0\na.png,1\n").unwrap();
        let err = load_families(&path, &names[..1]).unwrap_err().to_string();
        assert!(err.contains("twice"), "{err}");
        std::fs::write(&path, "name,family\na.png,640\n").unwrap();
        let err = load_families(&path, &names[..1]).unwrap_err().to_string();
        assert!(err.contains("640"), "{err}");
    }
}

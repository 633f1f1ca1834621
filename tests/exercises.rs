//! Solutions to the book's "write it yourself" exercises, one module per chapter. Each solution
//! is checked against the library's own code or against values worked out by hand, so a
//! solution that is wrong fails here. The chapters' exercises say what to write and give hints;
//! their answers point to this file: `cargo test --test exercises`.

/// Chapter 1: the value of the game on one batch.
mod ch01 {
    /// V(D, G) estimated on one batch from D's probabilities: the mean of log D(x) over the real
    /// images plus the mean of log(1 − D(G(z))) over the fakes. D plays to raise it (towards 0),
    /// G to lower it.
    pub fn game_value(d_real: &[f64], d_fake: &[f64]) -> f64 {
        let mean_of = |values: &[f64], f: fn(f64) -> f64| {
            values.iter().map(|&p| f(p)).sum::<f64>() / values.len() as f64
        };
        mean_of(d_real, f64::ln) + mean_of(d_fake, |p| (1.0 - p).ln())
    }

    #[cfg(test)]
    mod tests {
        use super::game_value;
        use candle_core::{Device, Tensor};
        use logogan::train::loss::bce_with_logits;

        #[test]
        fn a_coin_flipping_d_gives_minus_two_ln_two() {
            let v = game_value(&[0.5; 8], &[0.5; 8]);
            assert!((v + 2.0 * 2f64.ln()).abs() < 1e-12, "{v}");
        }

        #[test]
        fn the_value_is_minus_d_loss() {
            // D's loss is BCE(D(x), 1) + BCE(D(G(z)), 0) = −V: the library's loss on the logits
            // of the same probabilities.
            let (real, fake) = ([0.9, 0.7, 0.99, 0.6], [0.2, 0.05, 0.4, 0.3]);
            let logit = |p: f64| (p / (1.0 - p)).ln() as f32;
            let to_tensor = |ps: &[f64]| {
                Tensor::new(
                    ps.iter().map(|&p| logit(p)).collect::<Vec<_>>(),
                    &Device::Cpu,
                )
            };
            let d_loss = bce_with_logits(&to_tensor(&real).unwrap(), 1.0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap()
                + bce_with_logits(&to_tensor(&fake).unwrap(), 0.0)
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
            let v = game_value(&real, &fake);
            assert!((v + d_loss as f64).abs() < 1e-5, "V {v}, D loss {d_loss}");
            // A better D (more sure on both sides) raises V.
            assert!(game_value(&[0.99; 4], &[0.01; 4]) > v);
        }
    }
}

/// Chapter 2: robots.txt, read by hand.
mod ch02 {
    /// Whether `path` may be fetched under the `User-agent: *` group of `robots_txt`: the
    /// longest `Allow` or `Disallow` prefix that matches decides, `Allow` winning a tie, and
    /// a path nothing matches is allowed (RFC 9309, without its `*` and `$` patterns).
    pub fn allowed(robots_txt: &str, path: &str) -> bool {
        let mut in_star_group = false;
        let mut best: Option<(usize, bool)> = None; // (length of the rule, allows?)
        for line in robots_txt.lines() {
            let line = line.split('#').next().unwrap_or("").trim();
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
            match key.as_str() {
                "user-agent" => in_star_group = value == "*",
                "allow" | "disallow" if in_star_group && !value.is_empty() => {
                    let allows = key == "allow";
                    if path.starts_with(value) {
                        let better = match best {
                            None => true,
                            Some((len, was_allow)) => {
                                value.len() > len || (value.len() == len && allows && !was_allow)
                            }
                        };
                        if better {
                            best = Some((value.len(), allows));
                        }
                    }
                }
                _ => {}
            }
        }
        best.is_none_or(|(_, allows)| allows)
    }

    #[cfg(test)]
    mod tests {
        use super::allowed;
        use logogan::data::spider::RobotsRules;

        const ROBOTS: &str = "# a site's rules\n\
            User-agent: *\n\
            Disallow: /private/\n\
            Disallow: /logos/drafts\n\
            Allow: /private/press-kit/\n\
            Disallow:\n\
            \n\
            User-agent: other-bot\n\
            Disallow: /\n";

        #[test]
        fn agrees_with_the_spiders_parser() {
            let library = RobotsRules::from_fetch(Ok(ROBOTS.as_bytes().to_vec()), "logogan");
            for path in [
                "/",
                "/logos/acme.svg",
                "/logos/drafts/acme.svg",
                "/logos/draftsman.svg",
                "/private/",
                "/private/accounts.csv",
                "/private/press-kit/logo.svg",
                "/privately-held.svg",
            ] {
                let url = url::Url::parse(&format!("http://127.0.0.1{path}")).unwrap();
                assert_eq!(allowed(ROBOTS, path), library.allowed(&url), "{path}");
            }
            assert!(!allowed(ROBOTS, "/private/x") && allowed(ROBOTS, "/private/press-kit/x"));
        }
    }
}

/// Chapter 3: a cleaning rule of your own.
mod ch03 {
    use image::RgbImage;
    use logogan::data::rules::{ink_fraction, ink_mask};

    /// Drop "filled tiles": logos whose ink (pixels further than `threshold` from white) covers
    /// more than `max_share` of the square — a coloured square with a small white mark reads to
    /// the generator as a background, not as a logo.
    pub fn is_filled_tile(image: &RgbImage, threshold: u8, max_share: f32) -> bool {
        ink_fraction(&ink_mask(image, threshold)) > max_share
    }

    #[cfg(test)]
    mod tests {
        use super::is_filled_tile;
        use image::{Rgb, RgbImage};

        #[test]
        fn drops_tiles_and_keeps_marks() {
            let white = RgbImage::from_pixel(32, 32, Rgb([255, 255, 255]));
            let tile = RgbImage::from_pixel(32, 32, Rgb([200, 30, 40]));
            // A disc of radius 10 covers π·10²/32² ≈ 31 % of the square.
            let disc = RgbImage::from_fn(32, 32, |x, y| {
                let (dx, dy) = (x as f32 - 15.5, y as f32 - 15.5);
                if dx * dx + dy * dy < 100.0 {
                    Rgb([20, 20, 180])
                } else {
                    Rgb([255, 255, 255])
                }
            });
            assert!(!is_filled_tile(&white, 40, 0.6));
            assert!(is_filled_tile(&tile, 40, 0.6));
            assert!(!is_filled_tile(&disc, 40, 0.6));
            assert!(is_filled_tile(&disc, 40, 0.25));
        }
    }
}

/// Chapter 4: resize, then convolve — an upsampler without the checkerboard.
mod ch04 {
    use candle_core::{Module, Result, Tensor};
    use candle_nn::{conv2d, Conv2d, Conv2dConfig, VarBuilder};

    /// Doubles the picture's side like a stride-2 transposed convolution, but makes every
    /// output pixel the same way: nearest-neighbour enlargement `(B, C, H, W)` →
    /// `(B, C, 2H, 2W)`, then a 3×3 convolution (padding 1) to `out_channels`.
    pub struct ResizeConv {
        conv: Conv2d,
    }

    impl ResizeConv {
        pub fn new(in_channels: usize, out_channels: usize, vb: VarBuilder) -> Result<Self> {
            let config = Conv2dConfig {
                padding: 1,
                ..Default::default()
            };
            Ok(Self {
                conv: conv2d(in_channels, out_channels, 3, config, vb)?,
            })
        }
    }

    impl Module for ResizeConv {
        fn forward(&self, x: &Tensor) -> Result<Tensor> {
            let (_, _, h, w) = x.dims4()?;
            self.conv.forward(&x.upsample_nearest2d(2 * h, 2 * w)?)
        }
    }

    #[cfg(test)]
    mod tests {
        use super::ResizeConv;
        use candle_core::{DType, Device, Module, Tensor};
        use candle_nn::{VarBuilder, VarMap};
        use logogan::model::layers::conv_transpose4;
        use logogan::ops::ConvAlgorithm;

        /// Largest minus smallest value of channel 0 away from the border.
        fn interior_spread(y: &Tensor) -> f32 {
            let (_, _, h, w) = y.dims4().unwrap();
            let inner = y
                .narrow(1, 0, 1)
                .unwrap()
                .narrow(2, 2, h - 4)
                .unwrap()
                .narrow(3, 2, w - 4)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap();
            let max = inner.iter().cloned().fold(f32::MIN, f32::max);
            let min = inner.iter().cloned().fold(f32::MAX, f32::min);
            max - min
        }

        #[test]
        fn doubles_the_side_without_a_checkerboard() {
            let dev = Device::Cpu;
            let varmap = VarMap::new();
            let vb = VarBuilder::from_varmap(&varmap, DType::F32, &dev);
            let upsample = ResizeConv::new(8, 3, vb.pp("resize")).unwrap();
            // The library's layer, with random weights as training would leave them.
            let weight = Tensor::randn(0f32, 0.02, (8, 3, 4, 4), &dev).unwrap();
            let weights = VarBuilder::from_tensors(
                std::collections::HashMap::from([("weight".to_string(), weight)]),
                DType::F32,
                &dev,
            );
            let transposed = conv_transpose4(8, 3, 2, 1, ConvAlgorithm::Composed, weights).unwrap();
            // A flat input: any pattern in the output is made by the layer itself.
            let flat = Tensor::ones((2, 8, 6, 6), DType::F32, &dev).unwrap();
            let a = upsample.forward(&flat).unwrap();
            let b = transposed.forward(&flat).unwrap();
            assert_eq!(a.dims(), &[2, 3, 12, 12]);
            assert_eq!(a.dims(), b.dims());
            // Every interior pixel of the resize-convolution is made the same way: one value.
            assert!(interior_spread(&a) < 1e-5, "{}", interior_spread(&a));
            // The transposed convolution's four sub-kernels give four values: the checkerboard.
            assert!(interior_spread(&b) > 1e-3, "{}", interior_spread(&b));
        }
    }
}

/// Chapter 5: the saturating generator loss of the original minimax game.
mod ch05 {
    use candle_core::{Result, Tensor};

    /// G's loss in the minimax game: the mean of log(1 − D(G(z))) over the fakes' logits ℓ,
    /// which G minimises. Since log(1 − σ(ℓ)) = −softplus(ℓ) = −(max(ℓ, 0) + log(1 + e^−|ℓ|)),
    /// it is finite for every finite logit.
    pub fn saturating_generator_loss(fake_logits: &Tensor) -> Result<Tensor> {
        let softplus = (fake_logits.relu()? + (fake_logits.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
        softplus.neg()?.mean_all()
    }

    #[cfg(test)]
    mod tests {
        use super::saturating_generator_loss;
        use candle_core::{Device, Tensor, Var};
        use logogan::train::loss::bce_with_logits;

        #[test]
        fn is_minus_the_fake_half_of_d_loss_and_saturates() {
            let logits = [-100.0f32, -10.0, -2.0, 0.0, 3.0, 100.0];
            let x = Var::new(&logits, &Device::Cpu).unwrap();
            let loss = saturating_generator_loss(x.as_tensor()).unwrap();
            let value = loss.to_scalar::<f32>().unwrap();
            assert!(value.is_finite());
            let reference = bce_with_logits(&Tensor::new(&logits, &Device::Cpu).unwrap(), 0.0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!((value + reference).abs() < 1e-4, "{value} vs −{reference}");
            // The gradient of each fake is −σ(ℓ)/n: about D(G(z)) in size (Figure 5.1), so it
            // vanishes exactly where D rejects the fake.
            let grad = loss.backward().unwrap();
            let grad = grad.get(&x).unwrap().to_vec1::<f32>().unwrap();
            let n = logits.len() as f32;
            for (g, l) in grad.iter().zip(logits) {
                let sigma = 1.0 / (1.0 + (-l).exp());
                assert!((g + sigma / n).abs() < 1e-5, "logit {l}: gradient {g}");
            }
            assert!(grad[1].abs() < 1e-5 && grad[4].abs() > 0.1);
        }
    }
}

/// Chapter 6: a collapse detector.
mod ch06 {
    use candle_core::{Result, Tensor};

    /// The mean distance between two different rows of `features` `(N, D)`: how spread out a set
    /// is. A collapsed generator's samples sit close together, so the ratio of this number for
    /// generated features to the same for real ones falls well below 1.
    pub fn mean_pairwise_distance(features: &Tensor) -> Result<f64> {
        let n = features.dim(0)?;
        // ‖a − b‖² = ‖a‖² + ‖b‖² − 2 a·b for every pair at once: (N, N).
        let norms = features.sqr()?.sum_keepdim(1)?; // (N, 1)
        let dots = features.matmul(&features.t()?)?; // (N, N)
        let squared = (norms.broadcast_add(&norms.t()?)? - (dots * 2.0)?)?;
        let distances = squared.relu()?.sqrt()?; // rounding can make 0 slightly negative
                                                 // The diagonal (each row with itself) is 0: divide by the number of other pairs.
        let total = distances.sum_all()?.to_scalar::<f32>()? as f64;
        Ok(total / (n * (n - 1)) as f64)
    }

    #[cfg(test)]
    mod tests {
        use super::mean_pairwise_distance;
        use candle_core::{Device, Tensor};
        use rand::SeedableRng;
        use rand_distr::{Distribution, Normal};

        /// `(rows, cols)` Gaussian numbers from a seeded generator: candle's own `randn` cannot be
        /// seeded on the CPU, and with only four "designs" an unlucky draw (two designs close
        /// together) once made the collapsed set look as spread as the varied one.
        fn gaussian(rows: usize, cols: usize, std: f32, seed: u64) -> Tensor {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let normal = Normal::new(0f32, std).unwrap();
            let data: Vec<f32> = (0..rows * cols).map(|_| normal.sample(&mut rng)).collect();
            Tensor::from_vec(data, (rows, cols), &Device::Cpu).unwrap()
        }

        #[test]
        fn a_collapsed_set_is_less_spread() {
            let dev = Device::Cpu;
            // Two rows 3-4-5 apart: distance 5.
            let pair = Tensor::new(&[[0f32, 0.0], [3.0, 4.0]], &dev).unwrap();
            assert!((mean_pairwise_distance(&pair).unwrap() - 5.0).abs() < 1e-5);
            let varied = gaussian(200, 16, 1.0, 1);
            // A "collapsed" set: four designs, each repeated 50 times with small changes.
            let designs = gaussian(4, 16, 1.0, 2);
            let collapsed =
                (designs.repeat((50, 1)).unwrap() + gaussian(200, 16, 0.05, 3)).unwrap();
            let (v, c) = (
                mean_pairwise_distance(&varied).unwrap(),
                mean_pairwise_distance(&collapsed).unwrap(),
            );
            // Random Gaussian rows in 16 dimensions lie about √32 ≈ 5.6 apart.
            assert!((v - 32f64.sqrt()).abs() < 0.5, "{v}");
            assert!(c < 0.9 * v, "collapsed {c} vs varied {v}");
        }
    }
}

/// Chapter 7: families by colour instead of by the judge's features.
mod ch07 {
    use logogan::metrics::Features;
    use logogan::prelude::RgbImage;

    /// Four numbers per logo: the mean red, green and blue of its ink (the pixels that are not
    /// near-white), in [0, 1], and the share of the picture that is ink. A logo with no ink
    /// (all white) counts as white ink covering nothing.
    pub fn colour_features(images: &[RgbImage]) -> Features {
        let mut data = Vec::with_capacity(images.len() * 4);
        for image in images {
            let ink: Vec<[f64; 3]> = image
                .pixels()
                .filter(|p| p.0.iter().any(|&c| c < 230))
                .map(|p| p.0.map(|c| c as f64 / 255.0))
                .collect();
            let mean = |c: usize| {
                if ink.is_empty() {
                    1.0
                } else {
                    ink.iter().map(|p| p[c]).sum::<f64>() / ink.len() as f64
                }
            };
            let share = ink.len() as f64 / (image.width() * image.height()) as f64;
            data.extend([mean(0), mean(1), mean(2), share]);
        }
        Features::new(images.len(), 4, data).expect("four numbers per image")
    }

    #[cfg(test)]
    mod tests {
        use super::colour_features;
        use logogan::metrics::families::{kmeans, KMeansConfig};
        use logogan::prelude::RgbImage;

        /// A white 8×8 picture with a `side`×`side` square of `colour` in its corner.
        fn square(colour: [u8; 3], side: u32) -> RgbImage {
            RgbImage::from_fn(8, 8, |x, y| {
                image::Rgb(if x < side && y < side {
                    colour
                } else {
                    [255; 3]
                })
            })
        }

        #[test]
        fn colour_features_separate_red_logos_from_blue_ones() {
            let red = square([200, 20, 20], 4);
            let f = colour_features(&[
                red.clone(),
                RgbImage::from_pixel(8, 8, image::Rgb([255; 3])),
            ]);
            let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
            assert!(close(f.row(0)[0], 200.0 / 255.0) && close(f.row(0)[2], 20.0 / 255.0));
            assert!(
                close(f.row(0)[3], 16.0 / 64.0),
                "a quarter of the picture is ink"
            );
            assert_eq!(f.row(1), [1.0, 1.0, 1.0, 0.0], "no ink");

            // Six red and four blue squares of different sizes: two colour families.
            let mut images: Vec<RgbImage> = (1..=6).map(|s| square([200, 20, 20], s)).collect();
            images.extend((3..=6).map(|s| square([20, 40, 210], s)));
            let families = kmeans(
                &colour_features(&images),
                &KMeansConfig {
                    k: 2,
                    ..Default::default()
                },
            )
            .unwrap();
            assert_eq!(families.labels, [0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
        }
    }
}

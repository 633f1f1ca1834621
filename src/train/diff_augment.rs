//! Differentiable augmentation (DiffAugment, Zhao et al. 2020): every image the discriminator
//! sees, real or generated, is randomly recoloured, shifted and has a square cut out, with fresh
//! random settings for every image and every look, and the generator's gradients flow back
//! through the same operations.
//!
//! Why: with a few thousand logos, D can memorise the real set and then tells real from fake by
//! memory, not by quality; its gradients stop helping G. The original LogoGan fought this with a
//! ×3 augmented copy of the data (chapter 3), which D can still memorise. Augmenting *both* real
//! and fake images on the fly, and differentiably, keeps D from learning the augmentations as a
//! "real" signal (fakes get them too) and from memorising (it never sees the same image twice).
//! The three transforms and their ranges follow the paper's "color,translation,cutout" policy.
//! A fourth, from ADA's list (Karras et al. 2020), can be drawn on top: a mirror or quarter turn
//! ([`AugmentDraw::flip_and_turn`]).

use candle_core::{DType, Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::Result;
use crate::ops::augment::{augment_images, orient, ImageAugment};

/// Random settings of one augmentation of a batch of `B` images of side `S`.
#[derive(Debug, Clone, PartialEq)]
pub struct AugmentDraw {
    /// Per image: brightness shift in [−0.5, 0.5), saturation factor in [0, 2), contrast factor
    /// in [0.5, 1.5).
    pub brightness: Vec<f32>,
    pub saturation: Vec<f32>,
    pub contrast: Vec<f32>,
    /// Per image: one of the square's eight symmetries (mirrors and quarter turns, see
    /// [`orient`]); 0, the identity, unless [`Self::flip_and_turn`] drew them.
    pub orientation: Vec<u8>,
    /// Per image: shift (rows, columns) in [−S/8, S/8].
    pub shift: Vec<(i64, i64)>,
    /// Per image: top-left corner of the S/2 × S/2 square cut out (may hang over the edge).
    pub cutout: Vec<(i64, i64)>,
    pub size: usize,
}

impl AugmentDraw {
    /// Settings for `batch` images of side `size`, from `seed` and `stream` (so a resumed run
    /// draws the same ones).
    pub fn new(seed: u64, stream: u64, batch: usize, size: usize) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let shift_max = (size / 8) as i64;
        let half = (size / 2) as i64;
        let mut d = Self {
            brightness: Vec::with_capacity(batch),
            saturation: Vec::with_capacity(batch),
            contrast: Vec::with_capacity(batch),
            orientation: vec![0; batch],
            shift: Vec::with_capacity(batch),
            cutout: Vec::with_capacity(batch),
            size,
        };
        for _ in 0..batch {
            d.brightness.push(rng.random::<f32>() - 0.5);
            d.saturation.push(rng.random::<f32>() * 2.0);
            d.contrast.push(rng.random::<f32>() + 0.5);
            d.shift.push((
                rng.random_range(-shift_max..=shift_max),
                rng.random_range(-shift_max..=shift_max),
            ));
            // The square's centre is anywhere in the image, as in the paper.
            let (cy, cx) = (
                rng.random_range(0..size as i64),
                rng.random_range(0..size as i64),
            );
            d.cutout.push((cy - half / 2, cx - half / 2));
        }
        d
    }

    /// Adaptive strength (ADA, [`super::ada`]): keep each of an image's three transforms
    /// (colour, translation, cutout) with probability `p` and make the others the identity. The
    /// choices come from their own random stream (`seed`, `stream`), so the settings drawn by
    /// [`Self::new`] are the same whatever `p` is, and `p` = 1 keeps them all.
    pub fn keep_with_probability(mut self, p: f64, seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        let outside = -2 * self.size as i64; // a cut-out square wholly above and left of the image
        for i in 0..self.brightness.len() {
            // Three draws per image whatever p is, so image i's choices do not depend on p.
            let [colour, translation, cutout] = [0; 3].map(|_| rng.random::<f64>() < p);
            if !colour {
                (self.brightness[i], self.saturation[i], self.contrast[i]) = (0.0, 1.0, 1.0);
            }
            if !translation {
                self.shift[i] = (0, 0);
            }
            if !cutout {
                self.cutout[i] = (outside, outside);
            }
        }
        self
    }

    // ANCHOR: flip_and_turn
    /// Mirrors and quarter turns (ADA's "xflip" and "rot90", as one draw): with probability `p`
    /// an image is turned by one of the square's eight symmetries, drawn uniformly (the identity
    /// among them), else left as it is. From their own random stream (`seed`, `stream`), so the
    /// other settings are the same whether this is drawn or not.
    ///
    /// Why: logos survive being mirrored or turned (a turned logo is still a logo), and these
    /// transforms give D's memory far more to learn than the other three. But at `p` = 1 every
    /// orientation is equally likely among the augmented real images, and G can no longer tell
    /// which way up logos are: the augmentation leaks into the samples. Below 1 the identity is
    /// the likeliest orientation and G is pushed towards it; ADA keeps `p` there as long as D
    /// lets it.
    pub fn flip_and_turn(mut self, p: f64, seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        for orientation in self.orientation.iter_mut() {
            // Two draws per image whatever p is, so image i's symmetry does not depend on p.
            let (turned, element) = (rng.random::<f64>() < p, rng.random_range(0..8u8));
            *orientation = if turned { element } else { 0 };
        }
        self
    }
    // ANCHOR_END: flip_and_turn

    fn per_image(values: &[f32], device: &Device) -> Result<Tensor> {
        Ok(Tensor::from_slice(values, (values.len(), 1, 1, 1), device)?)
    }

    // ANCHOR: diff_augment
    /// Apply to `x` (B, 3, S, S): colour, then orientation and translation, then cutout. Every
    /// step is a tensor operation, so gradients flow through to whatever made `x`.
    pub fn apply(&self, x: &Tensor) -> Result<Tensor> {
        let dev = x.device();
        // Colour: brightness, saturation (around each pixel's grey), contrast (around the mean).
        let x = x.broadcast_add(&Self::per_image(&self.brightness, dev)?)?;
        let grey = x.mean_keepdim(1)?;
        let x = x
            .broadcast_sub(&grey)?
            .broadcast_mul(&Self::per_image(&self.saturation, dev)?)?
            .broadcast_add(&grey)?;
        let mean = x.mean_keepdim(1)?.mean_keepdim(2)?.mean_keepdim(3)?;
        let x = x
            .broadcast_sub(&mean)?
            .broadcast_mul(&Self::per_image(&self.contrast, dev)?)?
            .broadcast_add(&mean)?;
        // Mirror or turn (if drawn) and translation with zero fill: one gather from the
        // zero-padded images.
        let x = self.move_pixels(&x)?;
        // Cutout: zero a square.
        x.broadcast_mul(&self.cutout_mask(dev)?).map_err(Into::into)
    }
    // ANCHOR_END: diff_augment

    /// [`Self::apply`] as one fused kernel with its own backward pass where that runs (the CPU,
    /// f32; `ops::augment`), else `apply` itself. The same map (tested below); the kernel is
    /// how the trainer runs it, because composed from tensor ops it costs fifteen graph nodes.
    pub fn apply_fused(&self, x: &Tensor) -> Result<Tensor> {
        let side = (self.size / 2) as i64;
        let settings: Vec<ImageAugment> = (0..self.brightness.len())
            .map(|i| ImageAugment {
                brightness: self.brightness[i],
                saturation: self.saturation[i],
                contrast: self.contrast[i],
                orientation: self.orientation[i],
                shift: self.shift[i],
                cut: self.cutout[i],
                cut_side: side,
            })
            .collect();
        match augment_images(x, &settings)? {
            Some(y) => Ok(y),
            None => self.apply(x),
        }
    }

    fn move_pixels(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, s, _) = x.dims4()?;
        let p = (s / 8) as i64;
        let side = s as i64 + 2 * p;
        let padded = x
            .pad_with_zeros(2, p as usize, p as usize)?
            .pad_with_zeros(3, p as usize, p as usize)?;
        let mut index = Vec::with_capacity(b * s * s);
        for (&(dy, dx), &element) in self.shift.iter().zip(&self.orientation) {
            for i in 0..s as i64 {
                for j in 0..s as i64 {
                    // Output (i, j) shows the oriented image's (i − dy, j − dx), which is the
                    // input's (y, x) = orient(i − dy, j − dx): padded (y + p, x + p). Outside the
                    // image that lands in the padding, whose zeros every symmetry keeps.
                    let (y, x) = orient(element, i - dy, j - dx, s as i64);
                    index.push(((y + p) * side + (x + p)) as u32);
                }
            }
        }
        let index = Tensor::from_vec(index, (b, 1, s * s), x.device())?
            .broadcast_as((b, c, s * s))?
            .contiguous()?;
        Ok(padded
            .reshape((b, c, (side * side) as usize))?
            .gather(&index, 2)?
            .reshape((b, c, s, s))?)
    }

    fn cutout_mask(&self, device: &Device) -> Result<Tensor> {
        let s = self.size as i64;
        let half = s / 2;
        let mut mask = Vec::with_capacity(self.cutout.len() * (s * s) as usize);
        for &(y0, x0) in &self.cutout {
            for i in 0..s {
                for j in 0..s {
                    let inside = (y0..y0 + half).contains(&i) && (x0..x0 + half).contains(&j);
                    mask.push(if inside { 0f32 } else { 1.0 });
                }
            }
        }
        Ok(
            Tensor::from_vec(mask, (self.cutout.len(), 1, self.size, self.size), device)?
                .to_dtype(DType::F32)?,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Var;

    use crate::ops::test_support::max_rel;

    #[test]
    fn each_transform_does_what_it_says() {
        let dev = Device::Cpu;
        let (b, s) = (2, 16);
        let x = Tensor::randn(0f32, 0.5, (b, 3, s, s), &dev).unwrap();
        // Identity settings: no colour change, no shift, cutout entirely outside the image.
        let mut d = AugmentDraw::new(0, 0, b, s);
        d.brightness = vec![0.0; b];
        d.saturation = vec![1.0; b];
        d.contrast = vec![1.0; b];
        d.shift = vec![(0, 0); b];
        d.cutout = vec![(-100, -100); b];
        let same = d.apply(&x).unwrap();
        let diff = (&same - &x)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-6, "{diff}");
        // A shift of one row down: row i of the output is row i − 1 of the input, row 0 is zero.
        d.shift = vec![(1, 0); b];
        let shifted = d.apply(&x).unwrap();
        let top = shifted
            .narrow(2, 0, 1)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap();
        assert_eq!(top.to_scalar::<f32>().unwrap(), 0.0);
        let moved = (shifted.narrow(2, 1, s - 1).unwrap() - x.narrow(2, 0, s - 1).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(moved < 1e-6);
        // Cutout of the top-left quarter zeroes exactly s/2 × s/2 pixels per channel.
        d.shift = vec![(0, 0); b];
        d.cutout = vec![(0, 0); b];
        let cut = d.apply(&(x.ones_like().unwrap())).unwrap();
        let zeros = cut
            .eq(0f32)
            .unwrap()
            .to_dtype(DType::F32)
            .unwrap()
            .sum_all()
            .unwrap();
        assert_eq!(
            zeros.to_scalar::<f32>().unwrap(),
            (b * 3 * (s / 2) * (s / 2)) as f32
        );
    }

    #[test]
    fn the_fused_kernel_is_the_same_map_forward_and_backward() {
        let dev = Device::Cpu;
        for (b, s, seed) in [(5, 16, 1), (4, 32, 2), (3, 8, 3)] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (b, 3, s, s), &dev).unwrap()).unwrap();
            let up = Tensor::randn(0f32, 1.0, (b, 3, s, s), &dev).unwrap();
            // Every image mirrored or turned (one of the eight at random, the identity among
            // them), shifts at both extremes and a cut hanging over the corner.
            let mut d = AugmentDraw::new(seed, 0, b, s).flip_and_turn(1.0, seed, 1);
            d.shift[0] = ((s / 8) as i64, -((s / 8) as i64));
            d.cutout[1] = (-((s / 4) as i64), (s as i64) - 2);
            let run = |f: &dyn Fn(&Tensor) -> Result<Tensor>| {
                let y = f(&x).unwrap();
                let grads = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
                (y, grads.get(&x).unwrap().clone())
            };
            let (y_ref, g_ref) = run(&|x| d.apply(x));
            let (y, g) = run(&|x| d.apply_fused(x));
            assert!(
                max_rel(&y, &y_ref) < 1e-5,
                "forward b {b} s {s}: {}",
                max_rel(&y, &y_ref)
            );
            assert!(
                max_rel(&g, &g_ref) < 1e-5,
                "backward b {b} s {s}: {}",
                max_rel(&g, &g_ref)
            );
        }
    }

    #[test]
    fn flips_and_turns_are_the_eight_symmetries_of_the_square() {
        let dev = Device::Cpu;
        let (b, s) = (2, 8);
        let x = Tensor::randn(0f32, 1.0, (b, 3, s, s), &dev).unwrap();
        let turned = |element: u8, x: &Tensor| {
            let mut d = AugmentDraw::new(0, 0, b, s);
            (d.brightness, d.saturation, d.contrast) = (vec![0.0; b], vec![1.0; b], vec![1.0; b]);
            d.shift = vec![(0, 0); b];
            d.cutout = vec![(-100, -100); b];
            d.orientation = vec![element; b];
            let y = d.apply(x).unwrap();
            let fused = d.apply_fused(x).unwrap();
            assert!(max_rel(&fused, &y) < 1e-6, "element {element}");
            y
        };
        // Built independently of `orient`: mirrors by reversed indices, a transpose.
        let reversed = Tensor::from_vec((0..s as u32).rev().collect(), s, &dev).unwrap();
        let mirror_columns = x.index_select(&reversed, 3).unwrap();
        let mirror_rows = x.index_select(&reversed, 2).unwrap();
        let transpose = x.transpose(2, 3).unwrap().contiguous().unwrap();
        let same = |a: &Tensor, b: &Tensor| max_rel(a, b) < 1e-6;
        assert!(same(&turned(0, &x), &x));
        assert!(same(&turned(1, &x), &mirror_columns));
        assert!(same(&turned(2, &x), &mirror_rows));
        assert!(same(&turned(4, &x), &transpose));
        // A quarter turn (6) twice is the half turn (3), four times the identity.
        let half = turned(6, &turned(6, &x));
        assert!(same(&half, &turned(3, &x)));
        assert!(same(&turned(6, &turned(6, &half)), &x));
        // The eight are eight different images.
        let all: Vec<Tensor> = (0..8).map(|e| turned(e, &x)).collect();
        for i in 0..8 {
            for j in 0..i {
                assert!(!same(&all[i], &all[j]), "{i} and {j} are the same map");
            }
        }
        // With probability p: about p·7/8 of the images come out changed; p = 0 leaves them
        // all, a larger p turns a superset, and every element is drawn.
        let draw = AugmentDraw::new(5, 0, 800, s);
        assert_eq!(draw.clone().flip_and_turn(0.0, 9, 0), draw);
        let some = draw.clone().flip_and_turn(0.4, 9, 0).orientation;
        let more = draw.clone().flip_and_turn(0.8, 9, 0).orientation;
        let share = some.iter().filter(|&&e| e != 0).count() as f64 / 800.0;
        assert!((0.29..0.41).contains(&share), "0.35 expected, {share}");
        assert!(some.iter().zip(&more).all(|(a, b)| *a == 0 || a == b));
        assert!((1..8).all(|e| more.contains(&e)));
    }

    #[test]
    fn gradients_flow_through_and_draws_are_reproducible() {
        let dev = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 3, 16, 16), &dev).unwrap()).unwrap();
        let d = AugmentDraw::new(7, 3, 3, 16);
        assert_eq!(d, AugmentDraw::new(7, 3, 3, 16));
        assert_ne!(d, AugmentDraw::new(7, 4, 3, 16));
        let grads = d
            .apply(&x)
            .unwrap()
            .sqr()
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let g = grads
            .get(&x)
            .unwrap()
            .abs()
            .unwrap()
            .sum_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(g > 0.0 && g.is_finite());
    }

    #[test]
    fn adaptive_strength_keeps_each_transform_with_probability_p() {
        let dev = Device::Cpu;
        let (b, s) = (400, 16);
        let draw = AugmentDraw::new(5, 0, b, s);
        // p = 1 keeps every setting; p = 0 makes the map the identity, here with the fused kernel
        // the trainer runs (a cut-out square wholly outside the image included).
        assert_eq!(draw.clone().keep_with_probability(1.0, 9, 0), draw);
        let x = Tensor::randn(0f32, 1.0, (b, 3, s, s), &dev).unwrap();
        let none = draw.clone().keep_with_probability(0.0, 9, 0);
        let same = none.apply_fused(&x).unwrap();
        assert!(max_rel(&same, &x) < 1e-5, "{}", max_rel(&same, &x));
        // p = 0.3: each transform of each image kept about 30 % of the time, independently of
        // the others; and a larger p keeps a superset (the same uniform draws decide).
        let some = draw.clone().keep_with_probability(0.3, 9, 0);
        let more = draw.clone().keep_with_probability(0.6, 9, 0);
        let kept = |d: &AugmentDraw, i: usize| {
            [
                d.saturation[i] == draw.saturation[i] && d.contrast[i] == draw.contrast[i],
                d.shift[i] == draw.shift[i],
                d.cutout[i] == draw.cutout[i],
            ]
        };
        for transform in 0..3 {
            let share = (0..b).filter(|&i| kept(&some, i)[transform]).count() as f64 / b as f64;
            assert!(
                (0.24..0.36).contains(&share),
                "transform {transform}: {share}"
            );
            for i in 0..b {
                assert!(!kept(&some, i)[transform] || kept(&more, i)[transform]);
            }
        }
        let all_three = (0..b).filter(|&i| kept(&some, i) == [true; 3]).count() as f64 / b as f64;
        assert!(all_three < 0.08, "0.3³ = 0.027 expected, {all_three}");
    }
}

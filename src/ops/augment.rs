//! Per-image recolouring, flip or quarter turn, shift and cut-out of a batch `(B, 3, S, S)` as
//! one CPU custom op with an exact backward pass: the speed form of the course's differentiable
//! augmentation (`train::diff_augment`, where the readable definition and the test of equality
//! live).
//!
//! Why: composed from candle's tensor ops, the augmentation is about fifteen graph nodes per
//! look (three looks a step), each a pass over the batch on one thread, plus reductions and a
//! gather, and on the way back a zero-filled gradient and an addition per node; on the course's
//! CPU preset (32×32 images, small networks) that was a tenth of the step. The map is affine in
//! the pixels, so forward and backward are each one pass per image, images in parallel.

use std::sync::Arc;

use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::cpu::cpu_slice;

/// One image's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageAugment {
    /// Added to every value.
    pub brightness: f32,
    /// Spread around each pixel's grey (the mean of its channels) is multiplied by this.
    pub saturation: f32,
    /// Spread around the image's mean is multiplied by this.
    pub contrast: f32,
    /// One of the square's eight symmetries ([`orient`]), applied after the colour and before
    /// the shift; 0 is the identity.
    pub orientation: u8,
    /// Output (i, j) shows the recoloured, oriented input (i − dy, j − dx); zero where that is
    /// outside.
    pub shift: (i64, i64),
    /// The `cut_side × cut_side` square from this (row, column) on is zeroed (it may hang over
    /// the edge).
    pub cut: (i64, i64),
    pub cut_side: i64,
}

/// Where pixel (y, x) of an image of side `side`, turned by `element` (0–7) of the square's
/// symmetry group, is read from: bit 0 mirrors the columns, bit 1 the rows, bit 2 swaps rows and
/// columns (a transpose). The eight combinations are the four quarter turns, each with and
/// without a mirror; each maps the square onto itself, so the map is a permutation of the pixels
/// and its adjoint a permutation back. Positions just outside the square (in the zero padding of
/// a shift) map to positions just outside it.
#[inline]
pub fn orient(element: u8, y: i64, x: i64, side: i64) -> (i64, i64) {
    let x = if element & 1 != 0 { side - 1 - x } else { x };
    let y = if element & 2 != 0 { side - 1 - y } else { y };
    if element & 4 != 0 {
        (x, y)
    } else {
        (y, x)
    }
}

impl ImageAugment {
    /// The recoloured, oriented, shifted image's pixel (i, j) reads the input pixel that
    /// position (i − dy, j − dx) of the oriented image came from, if it is inside the image and
    /// (i, j) is outside the cut.
    #[inline]
    fn source(&self, i: i64, j: i64, side: i64) -> Option<usize> {
        let in_cut = (self.cut.0..self.cut.0 + self.cut_side).contains(&i)
            && (self.cut.1..self.cut.1 + self.cut_side).contains(&j);
        let (y, x) = (i - self.shift.0, j - self.shift.1);
        (!in_cut && (0..side).contains(&y) && (0..side).contains(&x)).then(|| {
            let (y, x) = orient(self.orientation, y, x, side);
            (y * side + x) as usize
        })
    }
}

/// The augmentation of `x` (B, C, S, S) with one [`ImageAugment`] per image, as one node with
/// its backward; `None` where the kernel does not run (not the CPU, not f32): the caller then
/// composes the same map from tensor ops.
pub fn augment_images(x: &Tensor, settings: &[ImageAugment]) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    let (b, _, h, w) = x.dims4()?;
    if settings.len() != b || h != w {
        candle_core::bail!(
            "augment: {} settings for a batch of {b}, images {h}×{w} (square ones expected)",
            settings.len()
        )
    }
    let op = Augment {
        settings: Arc::new(settings.to_vec()),
        adjoint: false,
    };
    Ok(Some(x.contiguous()?.apply_op1(op)?))
}

/// The map (`adjoint: false`) or its adjoint, which carries an output gradient back to the
/// input (`adjoint: true`).
#[derive(Clone)]
struct Augment {
    settings: Arc<Vec<ImageAugment>>,
    adjoint: bool,
}

impl CustomOp1 for Augment {
    fn name(&self) -> &'static str {
        if self.adjoint {
            "logogan-augment-adjoint"
        } else {
            "logogan-augment"
        }
    }

    fn cpu_fwd(&self, x: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        if !l.is_contiguous() {
            candle_core::bail!("augment: expected a contiguous input")
        }
        let (b, c, s, _) = l.shape().dims4()?;
        let per_image = c * s * s;
        let x = &cpu_slice::<f32>(x, "augment")?[l.start_offset()..][..b * per_image];
        let mut out = vec![0f32; b * per_image];
        out.par_chunks_mut(per_image)
            .zip(x.par_chunks(per_image))
            .zip(self.settings.par_iter())
            .for_each(|((out, x), a)| {
                if self.adjoint {
                    backward_image(out, x, a, c, s)
                } else {
                    forward_image(out, x, a, c, s)
                }
            });
        Ok((CpuStorage::F32(out), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, _y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        if self.adjoint {
            candle_core::bail!("augment: no second derivative")
        }
        let adjoint = Self {
            settings: self.settings.clone(),
            adjoint: true,
        };
        Ok(Some(grad.contiguous()?.apply_op1(adjoint)?))
    }
}

/// One image `x` (C, S, S) → `out`: brightness, saturation, contrast, then orientation, shift
/// and cut.
fn forward_image(out: &mut [f32], x: &[f32], a: &ImageAugment, c: usize, s: usize) {
    let plane = s * s;
    let mut colour = vec![0f32; c * plane];
    // Brightness, then saturation around each pixel's grey.
    for p in 0..plane {
        let mut grey = 0f32;
        for ch in 0..c {
            grey += x[ch * plane + p] + a.brightness;
        }
        grey /= c as f32;
        for ch in 0..c {
            let v = x[ch * plane + p] + a.brightness;
            colour[ch * plane + p] = (v - grey) * a.saturation + grey;
        }
    }
    // Contrast around the image's mean (summed in f64: 3·S² values).
    let mean = (colour.iter().map(|&v| v as f64).sum::<f64>() / colour.len() as f64) as f32;
    for v in colour.iter_mut() {
        *v = (*v - mean) * a.contrast + mean;
    }
    // Orientation, shift and cut: a gather, zero where the source is outside or cut.
    for i in 0..s as i64 {
        for j in 0..s as i64 {
            let at = (i * s as i64 + j) as usize;
            let source = a.source(i, j, s as i64);
            for ch in 0..c {
                out[ch * plane + at] = source.map_or(0.0, |q| colour[ch * plane + q]);
            }
        }
    }
}

/// The adjoint of [`forward_image`]'s linear part: an output gradient `g` (C, S, S) → the
/// input's gradient `out`.
fn backward_image(out: &mut [f32], g: &[f32], a: &ImageAugment, c: usize, s: usize) {
    let plane = s * s;
    // Orientation, shift and cut: scatter each output gradient back to the pixel it was read
    // from.
    out.fill(0.0);
    for i in 0..s as i64 {
        for j in 0..s as i64 {
            if let Some(q) = a.source(i, j, s as i64) {
                let at = (i * s as i64 + j) as usize;
                for ch in 0..c {
                    out[ch * plane + q] += g[ch * plane + at];
                }
            }
        }
    }
    // Contrast: y = k·v + (1 − k)·mean(v) ⇒ dv = k·dy + (1 − k)·mean(dy).
    let mean = (out.iter().map(|&v| v as f64).sum::<f64>() / out.len() as f64) as f32;
    for v in out.iter_mut() {
        *v = a.contrast * *v + (1.0 - a.contrast) * mean;
    }
    // Saturation: y_c = k·v_c + (1 − k)·grey(v) ⇒ dv_c = k·dy_c + (1 − k)·mean over c of dy.
    // Brightness adds a constant: its gradient passes through.
    for p in 0..plane {
        let grey = (0..c).map(|ch| out[ch * plane + p]).sum::<f32>() / c as f32;
        for ch in 0..c {
            let v = &mut out[ch * plane + p];
            *v = a.saturation * *v + (1.0 - a.saturation) * grey;
        }
    }
}

//! The CPU leaf of the convolution engine: im2col and its adjoint col2im on plain slices,
//! multi-threaded with rayon (one row of the patch matrix, or one channel of the image, per
//! task). The custom ops that call them (and their CUDA twins) are in [`super::patches`].

use std::mem::MaybeUninit;

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, Result, WithDType};
use rayon::prelude::*;

use super::geometry::ConvGeometry;
use super::simd;

pub fn cpu_slice<'a, T: WithDType>(storage: &'a CpuStorage, what: &str) -> Result<&'a [T]> {
    storage.as_slice::<T>().map_err(|_| {
        candle_core::Error::Msg(format!("{what}: unsupported dtype {:?}", storage.dtype()))
    })
}

/// Patch matrix of `x`: row `(c, ki, kj)`, column `(b, i, j)` holds
/// `x[b, c, s·i + ki − p, s·j + kj − p]` (zero outside the image).
pub fn im2col<T: WithDType>(
    x: &[T],
    (sb, sc, off): (usize, usize, usize),
    g: ConvGeometry,
) -> Vec<T> {
    let (ho, wo, k) = (g.out_height(), g.out_width(), g.kernel);
    let (h, w, s, p) = (
        g.height as isize,
        g.width as isize,
        g.stride as isize,
        g.padding as isize,
    );
    // Every element is written below (copied, or zero where the window reads padding), so the
    // matrix is not zero-filled first: that was a pass over the largest tensor of the step, on
    // the calling thread.
    let len = g.rows() * g.columns();
    let mut out: Vec<T> = Vec::with_capacity(len);
    out.spare_capacity_mut()
        .par_chunks_mut(g.columns())
        .enumerate()
        .for_each(|(row, out)| {
            let (c, ki, kj) = (row / (k * k), (row / k) % k, row % k);
            // Output columns j whose source column s·j + kj − p lies inside the image; the rest
            // read padding. Splitting them off keeps the copy loop branch-free.
            let (j0, j1) = inside(wo, s, kj as isize - p, w);
            let first = (s * j0 as isize + kj as isize - p).max(0) as usize;
            let zero = MaybeUninit::new(T::zero());
            for b in 0..g.batch {
                let base = off + b * sb + c * sc;
                for i in 0..ho {
                    let dst = &mut out[(b * ho + i) * wo..][..wo];
                    let y = s * i as isize + ki as isize - p;
                    if y < 0 || y >= h || j0 >= j1 {
                        dst.fill(zero); // a row of padding
                        continue;
                    }
                    dst[..j0].fill(zero);
                    dst[j1..].fill(zero);
                    let src = &x[base + y as usize * g.width + first..];
                    simd::copy_strided(&mut dst[j0..j1], src, g.stride);
                }
            }
        });
    // SAFETY: the rows cover all `len` elements (`rows` chunks of `columns`), and each row's
    // loop writes every one of its columns for every (b, i): zeros outside [j0, j1), copies
    // inside.
    unsafe { out.set_len(len) };
    out
}

/// The range `j0..j1` of `0..n` for which `s·j + shift` lies in `0..size`.
fn inside(n: usize, s: isize, shift: isize, size: isize) -> (usize, usize) {
    // s·j + shift ≥ 0  ⇔  j ≥ ceil(−shift / s);   s·j + shift ≤ size − 1  ⇔  j ≤ floor((size − 1 − shift) / s).
    let lo = if shift >= 0 { 0 } else { (-shift + s - 1) / s };
    let hi = if size - 1 - shift < 0 {
        -1
    } else {
        (size - 1 - shift) / s
    };
    let (lo, hi) = (lo.max(0) as usize, (hi + 1).max(0) as usize);
    (lo.min(n), hi.min(n).max(lo.min(n)))
}

/// The adjoint of [`im2col`]: adds every patch entry back onto the pixel it came from. Returns
/// the image channel-major, `(C, B, H, W)`.
pub fn col2im<T: WithDType>(cols: &[T], g: ConvGeometry) -> Vec<T> {
    let (ho, wo, k) = (g.out_height(), g.out_width(), g.kernel);
    let (h, w, s, p) = (
        g.height as isize,
        g.width as isize,
        g.stride as isize,
        g.padding as isize,
    );
    let n = g.columns();
    let mut out = vec![T::zero(); g.channels * g.batch * g.height * g.width];
    out.par_chunks_mut(g.batch * g.height * g.width)
        .enumerate()
        .for_each(|(c, out)| {
            for ki in 0..k {
                for kj in 0..k {
                    let row = &cols[((c * k + ki) * k + kj) * n..((c * k + ki) * k + kj + 1) * n];
                    let (j0, j1) = inside(wo, s, kj as isize - p, w);
                    if j0 >= j1 {
                        continue;
                    }
                    let first = (s * j0 as isize + kj as isize - p) as usize;
                    for b in 0..g.batch {
                        for i in 0..ho {
                            let y = s * i as isize + ki as isize - p;
                            if y < 0 || y >= h {
                                continue;
                            }
                            let dst = &mut out[(b * g.height + y as usize) * g.width + first..]
                                [..(j1 - j0 - 1) * g.stride + 1];
                            let src = &row[(b * ho + i) * wo..][j0..j1];
                            simd::add_strided(dst, src, g.stride);
                        }
                    }
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_is_the_range_of_in_image_columns() {
        for n in 0..9usize {
            for s in 1..4isize {
                for shift in -5..5isize {
                    for size in 0..9isize {
                        let want: Vec<usize> = (0..n)
                            .filter(|&j| (0..size).contains(&(s * j as isize + shift)))
                            .collect();
                        let (lo, hi) = inside(n, s, shift, size);
                        assert_eq!(
                            (lo..hi).collect::<Vec<_>>(),
                            want,
                            "n {n} s {s} shift {shift} size {size}"
                        );
                    }
                }
            }
        }
    }
}

//! The CPU leaf of the convolution engine: im2col and its adjoint col2im on plain slices,
//! multi-threaded with rayon (one row of the patch matrix, or one channel of the image, per
//! task). The custom ops that call them (and their CUDA twins) are in [`super::patches`].
//!
//! Two ways to build the patch matrix, the same numbers (tests below):
//!
//! * **phase planes**, for the convolutions that divide the image exactly by their stride
//!   (H = s·Ho, W = s·Wo: every 4×4 stride-2 layer of the course). The image is split once into
//!   its s² *phase planes* — plane (r, t) holds the pixels (s·u + r, s·v + t), an Ho×Wo grid,
//!   the output's own shape. Patch row (c, ki, kj) reads pixel (s·i + ki − p, s·j + kj − p):
//!   with ki − p = s·q + r, that is plane (r, t) at (i + q, j + q'), so **every patch row is one
//!   phase plane shifted by a constant** (q·Wo + q' in memory), with zeros where the shift
//!   leaves the grid. A row is then one long vectorised copy instead of B·Ho strided pieces of
//!   Wo elements (4–16 on the 32×32 laptop model, where the pieces' overhead made im2col and
//!   col2im a third of a step). col2im is the adjoint: shifted additions into the planes, then
//!   the planes interleaved back into the image.
//! * **row by row** for every other geometry (the 1×1 ↔ 4×4 layers at the ends of the networks,
//!   odd sizes): each output row of each patch row copied from its image row with stride s.

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
pub fn im2col<T: WithDType>(x: &[T], strides: (usize, usize, usize), g: ConvGeometry) -> Vec<T> {
    if tiles_exactly(&g) {
        im2col_phased(x, strides, g)
    } else {
        im2col_by_rows(x, strides, g)
    }
}

/// [`im2col`] for any geometry, one output row of one patch row at a time.
pub fn im2col_by_rows<T: WithDType>(
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
                    if wo == 1 {
                        // One output column (the 4×4 → 1×1 layers): one element, no row copy.
                        dst[0] = MaybeUninit::new(x[base + y as usize * g.width + first]);
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

/// True when the image is exactly s×s blocks of the output grid (H = s·Ho and W = s·Wo), the
/// geometry of the phase-plane kernels.
pub fn tiles_exactly(g: &ConvGeometry) -> bool {
    g.stride >= 1
        && g.batch * g.channels > 0
        && g.height + 2 * g.padding >= g.kernel
        && g.width + 2 * g.padding >= g.kernel
        && g.height == g.stride * g.out_height()
        && g.width == g.stride * g.out_width()
}

/// Kernel offset `ki` of a patch as (shift q, phase r): image row s·i + ki − p = s·(i + q) + r.
fn phase_of(ki: usize, g: &ConvGeometry) -> (isize, usize) {
    let (d, s) = (ki as isize - g.padding as isize, g.stride as isize);
    (d.div_euclid(s), d.rem_euclid(s) as usize)
}

/// How many whole images one shifted copy or addition covers: enough for a few hundred
/// elements (a call per 4×4 image would be all overhead), at most the batch.
fn images_per_piece(g: &ConvGeometry) -> usize {
    (512 / (g.out_height() * g.out_width()).max(1)).clamp(1, g.batch.max(1))
}

/// For every kernel offset (ki, kj): which entries of a few consecutive Ho×Wo grids
/// ([`images_per_piece`]) read inside the image, and the shift `q·Wo + q'` of the phase plane
/// they read; and the length of those pieces.
fn shifted_windows(g: &ConvGeometry) -> (Vec<(Vec<bool>, isize)>, usize) {
    let (ho, wo, k) = (g.out_height(), g.out_width(), g.kernel);
    let images = images_per_piece(g);
    let inside = |q: isize, i: usize, n: usize| (0..n as isize).contains(&(i as isize + q));
    let windows = (0..k * k)
        .map(|t| {
            let ((qi, _), (qj, _)) = (phase_of(t / k, g), phase_of(t % k, g));
            let valid = (0..images * ho * wo)
                .map(|l| l % (ho * wo))
                .map(|l| inside(qi, l / wo, ho) && inside(qj, l % wo, wo))
                .collect();
            (valid, qi * wo as isize + qj)
        })
        .collect();
    (windows, images * ho * wo)
}

/// Runs `f` on `len` elements of scratch memory kept by this thread from call to call (a small
/// pool: a task that waits inside `f` may run another task, which takes another buffer).
///
/// Why not a fresh `Vec` per task: a step frees and reallocates patch matrices of over a
/// hundred megabytes, and small allocations made in between, on whichever thread runs a task,
/// can land inside that freed memory. Kept buffers are allocated once, in the first steps.
fn with_scratch<T: WithDType, R>(len: usize, f: impl FnOnce(&mut [MaybeUninit<T>]) -> R) -> R {
    use std::cell::RefCell;
    thread_local! {
        static POOL: RefCell<Vec<Vec<u64>>> = const { RefCell::new(Vec::new()) };
    }
    assert!(std::mem::align_of::<T>() <= std::mem::align_of::<u64>());
    let words = (len * std::mem::size_of::<T>()).div_ceil(std::mem::size_of::<u64>());
    let mut buffer = POOL
        .with(|pool| pool.borrow_mut().pop())
        .unwrap_or_default();
    if buffer.len() < words {
        buffer.resize(words, 0);
    }
    // SAFETY: the buffer holds at least `len` elements of T (its bytes counted above), u64's
    // alignment is at least T's (asserted), and `MaybeUninit<T>` may hold any bytes. The slice
    // lives only inside this call, while the buffer is out of the pool.
    let scratch = unsafe {
        std::slice::from_raw_parts_mut(buffer.as_mut_ptr().cast::<MaybeUninit<T>>(), len)
    };
    let result = f(scratch);
    POOL.with(|pool| pool.borrow_mut().push(buffer));
    result
}

/// The elements of `s`, every one of them written.
///
/// # Safety
/// Every element of `s` must have been written.
unsafe fn assume_init<T>(s: &mut [MaybeUninit<T>]) -> &[T] {
    std::slice::from_raw_parts(s.as_ptr().cast::<T>(), s.len())
}

/// [`assume_init`], mutable.
///
/// # Safety
/// Every element of `s` must have been written.
unsafe fn assume_init_mut<T>(s: &mut [MaybeUninit<T>]) -> &mut [T] {
    std::slice::from_raw_parts_mut(s.as_mut_ptr().cast::<T>(), s.len())
}

/// Whether the phase-plane kernels share channels among the threads (each channel's work on
/// one thread) or do the channels one after the other, each shared among the threads: the
/// first when there are enough channels to go round. Never both, so that a thread holds one
/// scratch buffer at a time.
fn channels_in_parallel(g: &ConvGeometry) -> bool {
    g.channels >= 4 * rayon::current_num_threads()
}

/// `f(i, chunk)` for every `chunk`-sized piece of `items`, on rayon's threads or on this one.
fn each_chunk<T: Send>(
    items: &mut [T],
    chunk: usize,
    parallel: bool,
    f: impl Fn(usize, &mut [T]) + Send + Sync,
) {
    if parallel {
        items
            .par_chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    } else {
        items
            .chunks_mut(chunk)
            .enumerate()
            .for_each(|(i, c)| f(i, c));
    }
}

/// [`im2col`] through phase planes (see the module's documentation); needs [`tiles_exactly`].
pub fn im2col_phased<T: WithDType>(
    x: &[T],
    (sb, sc, off): (usize, usize, usize),
    g: ConvGeometry,
) -> Vec<T> {
    let (ho, wo, k, s, n) = (
        g.out_height(),
        g.out_width(),
        g.kernel,
        g.stride,
        g.columns(),
    );
    let (windows, piece) = shifted_windows(&g);
    let len = g.rows() * n;
    let mut out: Vec<T> = Vec::with_capacity(len);
    // One channel at a time, so that the planes are a scratch of one channel (B·H·W), not a
    // second copy of the whole input next to the patch matrix.
    let by_channel = channels_in_parallel(&g);
    each_chunk(
        out.spare_capacity_mut(),
        k * k * n,
        by_channel,
        |c, rows| {
            with_scratch(s * s * n, |planes: &mut [MaybeUninit<T>]| {
                // 1. The channel's phase planes, (s, s, B, Ho, Wo): every pixel copied once.
                each_chunk(planes, n, !by_channel, |phase, plane| {
                    let (r, t) = (phase / s, phase % s);
                    for (row, dst) in plane.chunks_exact_mut(wo).enumerate() {
                        let (b, u) = (row / ho, row % ho);
                        let src = &x[off + b * sb + c * sc + (s * u + r) * g.width + t..];
                        simd::copy_strided(dst, src, s);
                    }
                });
                // SAFETY: s²·B·Ho rows of Wo elements, all written above.
                let planes = unsafe { assume_init(planes) };
                // 2. Each patch row: its phase plane shifted, a few images at a time.
                each_chunk(rows, n, !by_channel, |kernel_offset, dst| {
                    let (ki, kj) = (kernel_offset / k, kernel_offset % k);
                    let (r, t) = (phase_of(ki, &g).1, phase_of(kj, &g).1);
                    let (valid, shift) = &windows[kernel_offset];
                    let plane = &planes[(r * s + t) * n..][..n];
                    for (dst, src) in dst.chunks_mut(piece).zip(plane.chunks(piece)) {
                        simd::shifted_copy(dst, src, *shift, &valid[..dst.len()]);
                    }
                });
            })
        },
    );
    // SAFETY: C chunks of k² rows of `columns`, each row written whole, piece by piece, by
    // `shifted_copy`.
    unsafe { out.set_len(len) };
    out
}

/// [`col2im`] through phase planes, the adjoint of [`im2col_phased`]; needs [`tiles_exactly`].
pub fn col2im_phased<T: WithDType>(cols: &[T], g: ConvGeometry) -> Vec<T> {
    let (ho, wo, k, s, n) = (
        g.out_height(),
        g.out_width(),
        g.kernel,
        g.stride,
        g.columns(),
    );
    let (windows, piece) = shifted_windows(&g);
    let per_channel = g.batch * g.height * g.width;
    let mut out: Vec<T> = Vec::with_capacity(g.channels * per_channel);
    // One channel at a time, its planes a scratch of one channel.
    let by_channel = channels_in_parallel(&g);
    each_chunk(
        out.spare_capacity_mut(),
        per_channel,
        by_channel,
        |c, dst| {
            with_scratch(s * s * n, |planes: &mut [MaybeUninit<T>]| {
                // 1. The channel's phase planes (s, s, B, Ho, Wo), each the sum of the patch rows
                //    that read it, shifted back.
                planes.fill(MaybeUninit::new(T::zero()));
                // SAFETY: every element was set to zero just above.
                let planes = unsafe { assume_init_mut(planes) };
                each_chunk(planes, n, !by_channel, |phase, plane| {
                    let reads = |r: usize| (0..k).filter(move |&ki| phase_of(ki, &g).1 == r);
                    for ki in reads(phase / s) {
                        for kj in reads(phase % s) {
                            let (valid, shift) = &windows[ki * k + kj];
                            let row = &cols[((c * k + ki) * k + kj) * n..][..n];
                            for (plane, src) in plane.chunks_mut(piece).zip(row.chunks(piece)) {
                                simd::shifted_add(plane, src, *shift, &valid[..plane.len()]);
                            }
                        }
                    }
                });
                // 2. The planes interleaved into the channel's images, (B, H, W).
                let planes: &[T] = planes;
                each_chunk(dst, g.height * g.width, !by_channel, |b, image| {
                    for (y, row) in image.chunks_exact_mut(g.width).enumerate() {
                        let (u, r) = (y / s, y % s);
                        let phases = &planes[r * s * n..][..s * n];
                        simd::interleave(row, phases, ((b * ho + u) * wo, n), s);
                    }
                });
            })
        },
    );
    // SAFETY: every pixel (s·u + r, s·v + t) of every image is written once by `interleave`.
    unsafe { out.set_len(g.channels * per_channel) };
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
    if tiles_exactly(&g) {
        col2im_phased(cols, g)
    } else {
        col2im_by_rows(cols, g)
    }
}

/// [`col2im`] for any geometry, one output row of one patch row at a time.
pub fn col2im_by_rows<T: WithDType>(cols: &[T], g: ConvGeometry) -> Vec<T> {
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
                            let at = (b * g.height + y as usize) * g.width + first;
                            if wo == 1 {
                                // One output column (the 1×1 ↔ 4×4 layers): one addition.
                                out[at] += row[b * ho + i];
                                continue;
                            }
                            let dst = &mut out[at..][..(j1 - j0 - 1) * g.stride + 1];
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

    /// Every geometry of the phase-plane kernels: the course's 4×4 stride-2 layers on even sides
    /// (square or not), and other kernels, strides and paddings with H = s·Ho, including shifts
    /// that leave the grid entirely (5×5 kernel on a 1×1 image).
    const TILED: [(usize, usize, usize, usize, usize); 12] = [
        // (height, width, kernel, stride, padding)
        (2, 2, 4, 2, 1),
        (4, 4, 4, 2, 1),
        (6, 6, 4, 2, 1),
        (8, 8, 4, 2, 1),
        (4, 8, 4, 2, 1),
        (5, 5, 3, 1, 1),
        (6, 4, 2, 2, 0),
        (6, 6, 6, 2, 2),
        (1, 1, 5, 1, 2),
        (8, 8, 4, 4, 0),
        (3, 3, 1, 1, 0),
        (6, 9, 3, 3, 0),
    ];

    #[test]
    fn phase_planes_apply_exactly_where_the_stride_tiles_the_image() {
        for (h, w, kernel, stride, padding) in TILED {
            let g = geometry((2, 3, h, w), (kernel, stride, padding));
            assert!(tiles_exactly(&g), "{g:?}");
        }
        // The ends of the networks (4×4 ↔ 1×1) and odd sides take the row-by-row kernels.
        for (h, kernel, stride, padding) in [(4, 4, 1, 0), (5, 4, 2, 1), (7, 4, 2, 1), (8, 4, 2, 0)]
        {
            assert!(!tiles_exactly(&geometry(
                (2, 3, h, h),
                (kernel, stride, padding)
            )));
        }
    }

    fn geometry(
        (batch, channels, height, width): (usize, usize, usize, usize),
        (kernel, stride, padding): (usize, usize, usize),
    ) -> ConvGeometry {
        ConvGeometry {
            batch,
            channels,
            height,
            width,
            kernel,
            stride,
            padding,
        }
    }

    #[test]
    fn phase_planes_give_the_row_by_row_patches_and_sums_exactly() {
        for (h, w, kernel, stride, padding) in TILED {
            for (batch, channels) in [(1, 1), (3, 2), (2, 5)] {
                let g = geometry((batch, channels, h, w), (kernel, stride, padding));
                // Small integers: every sum is exact, so any order of addition gives the same bits.
                let len = batch * channels * h * w;
                let x: Vec<f64> = (0..len + 5).map(|i| ((i * 7) % 23) as f64 - 11.0).collect();
                // Plain (B, C, H, W) after 5 leading elements, and channel-major (C, B, H, W).
                for strides in [(channels * h * w, h * w, 5), (h * w, batch * h * w, 0)] {
                    assert_eq!(
                        im2col_phased(&x, strides, g),
                        im2col_by_rows(&x, strides, g),
                        "im2col {g:?} strides {strides:?}"
                    );
                }
                let cols: Vec<f64> = (0..g.rows() * g.columns())
                    .map(|i| ((i * 5) % 19) as f64 - 9.0)
                    .collect();
                assert_eq!(
                    col2im_phased(&cols, g),
                    col2im_by_rows(&cols, g),
                    "col2im {g:?}"
                );
            }
        }
    }

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

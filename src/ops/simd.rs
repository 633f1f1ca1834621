//! The element-wise loops of the CPU kernels (batch-norm, LeakyReLU), written so the compiler
//! turns them into SIMD code, and compiled several times: for AVX-512, for AVX2 + FMA, and for
//! the baseline of the target (SSE2 on x86-64, NEON on ARM); the first the CPU supports is
//! chosen at run time ([`multiversion`]). A learner's laptop without AVX-512 takes the AVX2
//! copy; one without AVX2 the baseline; Apple silicon the NEON baseline.
//!
//! Why: written with iterator chains over four slices and a branch on the activation's sign,
//! these loops compiled to one scalar element at a time with a mispredicted branch on half of
//! them (`perf annotate`: `movss`/`ucomiss`/`ja`), and batch-norm's backward pass alone took
//! 5 % of a training step's CPU time. Here each loop indexes equal-length slices (no bounds
//! checks inside) and picks with a select instead of a branch.
//!
//! Every copy computes the same bits: no fused multiply-adds are formed (Rust does not contract
//! `a·b + c`), and the sums keep the same fixed number of partial sums on every target, so a
//! training run does not depend on the CPU it ran on.

use std::mem::MaybeUninit;

use candle_core::WithDType;
use multiversion::multiversion;

/// Partial sums per reduction, the same on every target (see the module's documentation).
pub const LANES: usize = 8;

/// `n` f32s, each written by `write`, which is handed the vector's memory (not yet written) in
/// place: a kernel's output without first zero-filling it as `vec![0.0; n]` does, a pass over
/// the largest tensors of a step on the calling thread (the kernels below write every element
/// of the slices they are given).
///
/// # Safety
/// `write` must write every one of the `n` elements.
pub unsafe fn written_by(n: usize, write: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut out: Vec<f32> = Vec::with_capacity(n);
    write(&mut out.spare_capacity_mut()[..n]);
    // SAFETY: the caller promises that `write` wrote all `n` elements.
    unsafe { out.set_len(n) };
    out
}

/// The activation's gradient: `g` where the output is positive, `g · slope` elsewhere (the
/// sign of the output is the sign of the input).
#[inline(always)]
fn act_grad(y: f32, g: f32, slope: f32) -> f32 {
    if y > 0.0 {
        g
    } else {
        g * slope
    }
}

/// LeakyReLU: `y = x` where x > 0, `x · slope` elsewhere.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
pub fn leaky_relu(y: &mut [MaybeUninit<f32>], x: &[f32], slope: f32) {
    let x = &x[..y.len()];
    for i in 0..y.len() {
        y[i] = MaybeUninit::new(if x[i] > 0.0 { x[i] } else { x[i] * slope });
    }
}

/// LeakyReLU's backward pass: `dx = g` where y > 0, `g · slope` elsewhere.
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
pub fn leaky_relu_grad(dx: &mut [MaybeUninit<f32>], y: &[f32], g: &[f32], slope: f32) {
    let n = dx.len();
    let (y, g) = (&y[..n], &g[..n]);
    for i in 0..n {
        dx[i] = MaybeUninit::new(act_grad(y[i], g[i], slope));
    }
}

/// tanh's backward pass: `dx = g · (1 − y²)`, y = tanh(x).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
pub fn tanh_grad(dx: &mut [MaybeUninit<f32>], y: &[f32], g: &[f32]) {
    let n = dx.len();
    let (y, g) = (&y[..n], &g[..n]);
    for i in 0..n {
        dx[i] = MaybeUninit::new(g[i] * (1.0 - y[i] * y[i]));
    }
}

/// Σx and Σx² of one channel in f64, [`LANES`] partial sums each.
pub fn sum_and_squares(x: &[f32]) -> (f64, f64) {
    let whole = x.len() / LANES * LANES;
    let (s, q) = lanes::sum_and_squares(&x[..whole]);
    let (mut s, mut q) = (s.iter().sum::<f64>(), q.iter().sum::<f64>());
    for &v in &x[whole..] {
        s += v as f64;
        q += v as f64 * v as f64;
    }
    (s, q)
}

/// Batch-norm then activation of one channel: `y = act(((x − hi) − lo) · scale + shift)`,
/// where `hi + lo` is the channel's mean split in two f32s (so that centring stays exact when
/// the mean dwarfs the spread).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
pub fn normalize_act(
    y: &mut [MaybeUninit<f32>],
    x: &[f32],
    (hi, lo): (f32, f32),
    (scale, shift): (f32, f32),
    slope: f32,
) {
    let x = &x[..y.len()];
    for i in 0..y.len() {
        let z = ((x[i] - hi) - lo) * scale + shift;
        y[i] = MaybeUninit::new(if z > 0.0 { z } else { z * slope });
    }
}

/// Σdz and Σdz·x of one channel in f64 ([`LANES`] partial sums each), where dz = g · act'(y)
/// is the gradient reaching the batch-norm's output.
pub fn grad_sums(x: &[f32], y: &[f32], g: &[f32], slope: f32) -> (f64, f64) {
    let n = x.len();
    let (y, g) = (&y[..n], &g[..n]);
    let whole = n / LANES * LANES;
    let (s, sx) = lanes::grad_sums(&x[..whole], &y[..whole], &g[..whole], slope);
    let (mut s, mut sx) = (s.iter().sum::<f64>(), sx.iter().sum::<f64>());
    for i in whole..n {
        let d = act_grad(y[i], g[i], slope) as f64;
        s += d;
        sx += d * x[i] as f64;
    }
    (s, sx)
}

/// The [`LANES`] partial sums of the two reductions above, over whole groups of lanes.
///
/// Written with intrinsics because the compiler does not vectorise the f32 → f64 conversions
/// of the plain loops: `perf annotate` showed them one scalar `vcvtss2sd` at a time, and
/// batch-norm's two reductions took 9 % of a laptop-preset step's CPU time. Lane j of a
/// register is partial sum j, added in the same order as the plain loop (kept as the fallback
/// and as the tests' reference): the same bits on every path.
mod lanes {
    #[cfg(target_arch = "x86_64")]
    use super::X86Path;
    use super::{act_grad, LANES};

    pub fn sum_and_squares(x: &[f32]) -> ([f64; LANES], [f64; LANES]) {
        #[cfg(target_arch = "x86_64")]
        {
            if super::x86_path() >= X86Path::Avx512 {
                // SAFETY: the CPU has AVX-512F (x86_path checks it for Avx512).
                return unsafe { x86::sum_and_squares_avx512(x) };
            }
            if super::x86_path() >= X86Path::Avx2 {
                // SAFETY: the CPU has AVX (x86_path checks it for Avx2).
                return unsafe { x86::sum_and_squares_avx(x) };
            }
        }
        sum_and_squares_plain(x)
    }

    pub fn grad_sums(x: &[f32], y: &[f32], g: &[f32], slope: f32) -> ([f64; LANES], [f64; LANES]) {
        #[cfg(target_arch = "x86_64")]
        {
            if super::x86_path() >= X86Path::Avx512 {
                // SAFETY: the CPU has AVX-512F (x86_path checks it for Avx512).
                return unsafe { x86::grad_sums_avx512(x, y, g, slope) };
            }
            if super::x86_path() >= X86Path::Avx2 {
                // SAFETY: the CPU has AVX (x86_path checks it for Avx2).
                return unsafe { x86::grad_sums_avx(x, y, g, slope) };
            }
        }
        grad_sums_plain(x, y, g, slope)
    }

    /// The plain loop: partial sum j takes elements j, j + LANES, j + 2·LANES, …
    pub fn sum_and_squares_plain(x: &[f32]) -> ([f64; LANES], [f64; LANES]) {
        let (mut s, mut q) = ([0f64; LANES], [0f64; LANES]);
        for c in x.chunks_exact(LANES) {
            for j in 0..LANES {
                let v = c[j] as f64;
                s[j] += v;
                q[j] += v * v;
            }
        }
        (s, q)
    }

    pub fn grad_sums_plain(
        x: &[f32],
        y: &[f32],
        g: &[f32],
        slope: f32,
    ) -> ([f64; LANES], [f64; LANES]) {
        let (mut s, mut sx) = ([0f64; LANES], [0f64; LANES]);
        let groups = x.chunks_exact(LANES).zip(y.chunks_exact(LANES));
        for ((xc, yc), gc) in groups.zip(g.chunks_exact(LANES)) {
            for j in 0..LANES {
                let d = act_grad(yc[j], gc[j], slope) as f64;
                s[j] += d;
                sx[j] += d * xc[j] as f64;
            }
        }
        (s, sx)
    }

    #[cfg(target_arch = "x86_64")]
    pub mod x86 {
        //! Products and sums as separate instructions (no fused multiply-add, which rounds once
        //! instead of twice), as in the plain loop.
        use std::arch::x86_64::*;

        use super::LANES;

        const _: () = assert!(
            LANES == 8,
            "one register of 8 f64 lanes (two of 4 with AVX)"
        );

        /// AVX-512: the 8 lanes are one register of f64s.
        #[target_feature(enable = "avx,avx512f")]
        pub unsafe fn sum_and_squares_avx512(x: &[f32]) -> ([f64; LANES], [f64; LANES]) {
            let (mut s, mut q) = (_mm512_setzero_pd(), _mm512_setzero_pd());
            for c in x.chunks_exact(LANES) {
                let v = _mm512_cvtps_pd(_mm256_loadu_ps(c.as_ptr())); // 8 × f32 → 8 × f64
                s = _mm512_add_pd(s, v);
                q = _mm512_add_pd(q, _mm512_mul_pd(v, v));
            }
            let (mut so, mut qo) = ([0f64; LANES], [0f64; LANES]);
            _mm512_storeu_pd(so.as_mut_ptr(), s);
            _mm512_storeu_pd(qo.as_mut_ptr(), q);
            (so, qo)
        }

        /// AVX: lanes 0–3 in one register of f64s, lanes 4–7 in another.
        #[target_feature(enable = "avx")]
        pub unsafe fn sum_and_squares_avx(x: &[f32]) -> ([f64; LANES], [f64; LANES]) {
            let (mut s0, mut s1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            let (mut q0, mut q1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            for c in x.chunks_exact(LANES) {
                let lo = _mm256_cvtps_pd(_mm_loadu_ps(c.as_ptr()));
                let hi = _mm256_cvtps_pd(_mm_loadu_ps(c.as_ptr().add(4)));
                s0 = _mm256_add_pd(s0, lo);
                s1 = _mm256_add_pd(s1, hi);
                q0 = _mm256_add_pd(q0, _mm256_mul_pd(lo, lo));
                q1 = _mm256_add_pd(q1, _mm256_mul_pd(hi, hi));
            }
            let (mut so, mut qo) = ([0f64; LANES], [0f64; LANES]);
            _mm256_storeu_pd(so.as_mut_ptr(), s0);
            _mm256_storeu_pd(so.as_mut_ptr().add(4), s1);
            _mm256_storeu_pd(qo.as_mut_ptr(), q0);
            _mm256_storeu_pd(qo.as_mut_ptr().add(4), q1);
            (so, qo)
        }

        /// The activation's gradient of 8 lanes: `g` where `y > 0`, `g · slope` elsewhere (NaN
        /// compares false, as in the plain loop).
        #[inline]
        #[target_feature(enable = "avx")]
        unsafe fn act_grad8(y: *const f32, g: *const f32, slope: __m256) -> __m256 {
            let (y, g) = (_mm256_loadu_ps(y), _mm256_loadu_ps(g));
            let positive = _mm256_cmp_ps::<_CMP_GT_OQ>(y, _mm256_setzero_ps());
            _mm256_blendv_ps(_mm256_mul_ps(g, slope), g, positive)
        }

        #[target_feature(enable = "avx,avx512f")]
        pub unsafe fn grad_sums_avx512(
            x: &[f32],
            y: &[f32],
            g: &[f32],
            slope: f32,
        ) -> ([f64; LANES], [f64; LANES]) {
            let slope = _mm256_set1_ps(slope);
            let (mut s, mut sx) = (_mm512_setzero_pd(), _mm512_setzero_pd());
            for i in (0..x.len().min(y.len()).min(g.len()) / LANES).map(|k| k * LANES) {
                let d = _mm512_cvtps_pd(act_grad8(y.as_ptr().add(i), g.as_ptr().add(i), slope));
                let v = _mm512_cvtps_pd(_mm256_loadu_ps(x.as_ptr().add(i)));
                s = _mm512_add_pd(s, d);
                sx = _mm512_add_pd(sx, _mm512_mul_pd(d, v));
            }
            let (mut so, mut sxo) = ([0f64; LANES], [0f64; LANES]);
            _mm512_storeu_pd(so.as_mut_ptr(), s);
            _mm512_storeu_pd(sxo.as_mut_ptr(), sx);
            (so, sxo)
        }

        #[target_feature(enable = "avx")]
        pub unsafe fn grad_sums_avx(
            x: &[f32],
            y: &[f32],
            g: &[f32],
            slope: f32,
        ) -> ([f64; LANES], [f64; LANES]) {
            let slope = _mm256_set1_ps(slope);
            let (mut s0, mut s1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            let (mut sx0, mut sx1) = (_mm256_setzero_pd(), _mm256_setzero_pd());
            for i in (0..x.len().min(y.len()).min(g.len()) / LANES).map(|k| k * LANES) {
                let d = act_grad8(y.as_ptr().add(i), g.as_ptr().add(i), slope);
                let (d0, d1) = (
                    _mm256_cvtps_pd(_mm256_castps256_ps128(d)),
                    _mm256_cvtps_pd(_mm256_extractf128_ps::<1>(d)),
                );
                let v0 = _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(i)));
                let v1 = _mm256_cvtps_pd(_mm_loadu_ps(x.as_ptr().add(i + 4)));
                s0 = _mm256_add_pd(s0, d0);
                s1 = _mm256_add_pd(s1, d1);
                sx0 = _mm256_add_pd(sx0, _mm256_mul_pd(d0, v0));
                sx1 = _mm256_add_pd(sx1, _mm256_mul_pd(d1, v1));
            }
            let (mut so, mut sxo) = ([0f64; LANES], [0f64; LANES]);
            _mm256_storeu_pd(so.as_mut_ptr(), s0);
            _mm256_storeu_pd(so.as_mut_ptr().add(4), s1);
            _mm256_storeu_pd(sxo.as_mut_ptr(), sx0);
            _mm256_storeu_pd(sxo.as_mut_ptr().add(4), sx1);
            (so, sxo)
        }
    }
}

/// Batch-norm's input gradient for one channel, an affine function of (dz, x):
/// `dx = a · dz + b · ((x − hi) − lo) + c` with dz = g · act'(y).
#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
#[allow(clippy::too_many_arguments)]
pub fn batch_norm_input_grad(
    dx: &mut [MaybeUninit<f32>],
    x: &[f32],
    y: &[f32],
    g: &[f32],
    (a, b, c): (f32, f32, f32),
    (hi, lo): (f32, f32),
    slope: f32,
) {
    let n = dx.len();
    let (x, y, g) = (&x[..n], &y[..n], &g[..n]);
    for i in 0..n {
        dx[i] = MaybeUninit::new(a * act_grad(y[i], g[i], slope) + b * ((x[i] - hi) - lo) + c);
    }
}

/// `dst[j] = src[s·j]` for every j: a row of the patch matrix read from an image row with
/// stride `s` (im2col), into memory not yet written. Strides 1 and 2 (every convolution of the
/// course) get loops the compiler vectorises (a strided `step_by` does not); others a plain one.
pub fn copy_strided<T: WithDType>(dst: &mut [MaybeUninit<T>], src: &[T], s: usize) {
    match s {
        1 => copy_stride1(dst, src),
        2 => copy_stride2(dst, src),
        _ => {
            for (d, v) in dst.iter_mut().zip(src.iter().step_by(s)) {
                *d = MaybeUninit::new(*v);
            }
        }
    }
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
fn copy_stride1<T: Copy + Send + Sync>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    let src = &src[..dst.len()];
    for j in 0..dst.len() {
        dst[j] = MaybeUninit::new(src[j]);
    }
}

/// [`copy_strided`] with stride 2. The rows of the course's phase planes are short (4 to 16
/// elements), where the compiler's vector loop never starts and every element went through the
/// scalar tail (`perf annotate`: `vmovss` pairs, 3.4 % of a laptop-preset step): with AVX-512,
/// masked loads and stores do a whole short row in one step.
fn copy_stride2<T: WithDType>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let src = &src[..2 * n - 1];
    #[cfg(target_arch = "x86_64")]
    if four_bytes::<T>() && x86_path() >= X86Path::Avx512 {
        // SAFETY: AVX-512F is there (checked); T is 4 bytes with 4-byte alignment (checked),
        // so both slices are f32-sized elements, copied bit for bit; `dst` has n elements and
        // `src` 2n − 1, as `copy_stride2_32` reads and writes.
        unsafe { x86_copies::copy_stride2_32(dst.as_mut_ptr().cast(), src.as_ptr().cast(), n) };
        return;
    }
    copy_stride2_plain(dst, src)
}

/// The widest x86 instructions the intrinsic loops of this module may use: what the CPU has,
/// capped by `LOGOGAN_SIMD` (`avx2`, `portable`) as the matrix products are
/// ([`super::cpu_gemm::simd_path`]), so that a run with AVX2 forced measures AVX2 here too.
/// (The `multiversion` loops pick by the CPU alone; every path gives the same bits.)
#[cfg(target_arch = "x86_64")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum X86Path {
    Plain,
    /// AVX with AVX2 and FMA: 256-bit registers (AVX alone would do; the cap names AVX2).
    Avx2,
    Avx512,
}

#[cfg(target_arch = "x86_64")]
fn x86_path() -> X86Path {
    static PATH: std::sync::OnceLock<X86Path> = std::sync::OnceLock::new();
    *PATH.get_or_init(|| match super::cpu_gemm::simd_path() {
        "AVX-512" => X86Path::Avx512,
        // simd_path says AVX2 where the CPU has FMA; the 256-bit loops need AVX itself.
        "AVX2" if std::arch::is_x86_feature_detected!("avx") => X86Path::Avx2,
        _ => X86Path::Plain,
    })
}

/// True when T can be moved as an f32 (4 bytes, 4-byte aligned): the course's tensors. Only
/// for candle's element types (`WithDType`: numbers without padding bytes), whose every byte is
/// initialised.
#[cfg(target_arch = "x86_64")]
fn four_bytes<T>() -> bool {
    std::mem::size_of::<T>() == 4 && std::mem::align_of::<T>() == 4
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
fn copy_stride2_plain<T: Copy + Send + Sync>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    let n = dst.len();
    if n == 0 {
        return;
    }
    let src = &src[..2 * n - 1];
    for j in 0..n {
        dst[j] = MaybeUninit::new(src[2 * j]);
    }
}

/// `dst[s·j] += src[j]` for every j: a row of the patch matrix added back onto an image row
/// (col2im); stride 1 vectorised. (For stride 2 the compiler's vector code scattered element by
/// element, and blocks of 16 were no faster on these short rows: the plain loop stays.)
pub fn add_strided<T: WithDType>(dst: &mut [T], src: &[T], s: usize) {
    match s {
        1 => add_stride1(dst, src),
        _ => {
            for (d, v) in dst.iter_mut().step_by(s).zip(src) {
                *d += *v;
            }
        }
    }
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
fn add_stride1<T: WithDType>(dst: &mut [T], src: &[T]) {
    let dst = &mut dst[..src.len()];
    for j in 0..src.len() {
        dst[j] += src[j];
    }
}

/// The part `lo..hi` of `0..len` where `t + shift` lies in `0..len`.
fn overlap(len: usize, shift: isize) -> (usize, usize) {
    let lo = shift.min(0).unsigned_abs().min(len);
    let hi = len.saturating_sub(shift.max(0) as usize).max(lo);
    (lo, hi)
}

/// `dst[t] = src[t + shift]` where `valid[t]`, zero elsewhere (and wherever `t + shift` falls
/// outside `src`): a patch row read from its phase plane (im2col), into memory not yet written.
/// The three slices have the same length.
pub fn shifted_copy<T: WithDType>(
    dst: &mut [MaybeUninit<T>],
    src: &[T],
    shift: isize,
    valid: &[bool],
) {
    let len = dst.len();
    let (lo, hi) = overlap(len, shift);
    let zero = MaybeUninit::new(T::zero());
    dst[..lo].fill(zero);
    dst[hi..].fill(zero);
    if lo == hi {
        return;
    }
    let from = (lo as isize + shift) as usize;
    select_copy(&mut dst[lo..hi], &src[from..from + hi - lo], &valid[lo..hi]);
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
fn select_copy<T: WithDType>(dst: &mut [MaybeUninit<T>], src: &[T], valid: &[bool]) {
    let n = dst.len();
    let (src, valid) = (&src[..n], &valid[..n]);
    for i in 0..n {
        dst[i] = MaybeUninit::new(if valid[i] { src[i] } else { T::zero() });
    }
}

/// `dst[t + shift] += src[t]` where `valid[t]`: the adjoint of [`shifted_copy`] (col2im). The
/// three slices have the same length.
pub fn shifted_add<T: WithDType>(dst: &mut [T], src: &[T], shift: isize, valid: &[bool]) {
    let len = dst.len();
    let (lo, hi) = overlap(len, shift);
    if lo == hi {
        return;
    }
    let to = (lo as isize + shift) as usize;
    select_add(&mut dst[to..to + hi - lo], &src[lo..hi], &valid[lo..hi]);
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
fn select_add<T: WithDType>(dst: &mut [T], src: &[T], valid: &[bool]) {
    let n = dst.len();
    let (src, valid) = (&src[..n], &valid[..n]);
    for i in 0..n {
        dst[i] += if valid[i] { src[i] } else { T::zero() };
    }
}

/// `row[s·v + t] = phases[t·stride + start + v]` for every t < s and v < row.len() / s: one
/// image row put together from its s phase rows (col2im), into memory not yet written.
pub fn interleave<T: WithDType>(
    row: &mut [MaybeUninit<T>],
    phases: &[T],
    (start, stride): (usize, usize),
    s: usize,
) {
    let n = row.len() / s;
    if s == 2 {
        interleave2(row, &phases[start..][..n], &phases[stride + start..][..n]);
        return;
    }
    for t in 0..s {
        let phase = &phases[t * stride + start..][..n];
        for (v, &value) in phase.iter().enumerate() {
            row[s * v + t] = MaybeUninit::new(value);
        }
    }
}

/// `row[2v] = even[v]`, `row[2v + 1] = odd[v]`: [`interleave`] for s = 2, with AVX-512 where the
/// CPU has it (the rows are short, as in [`copy_stride2`]).
fn interleave2<T: WithDType>(row: &mut [MaybeUninit<T>], even: &[T], odd: &[T]) {
    let n = even.len();
    let (row, odd) = (&mut row[..2 * n], &odd[..n]);
    #[cfg(target_arch = "x86_64")]
    if four_bytes::<T>() && x86_path() >= X86Path::Avx512 {
        // SAFETY: AVX-512F is there (checked); T is 4 bytes with 4-byte alignment (checked),
        // moved bit for bit; `even` and `odd` have n elements, `row` 2n.
        unsafe {
            x86_copies::interleave2_32(
                row.as_mut_ptr().cast(),
                even.as_ptr().cast(),
                odd.as_ptr().cast(),
                n,
            )
        };
        return;
    }
    interleave2_plain(row, even, odd)
}

#[multiversion(targets("x86_64+avx512f+avx512bw+avx512dq+avx512vl", "x86_64+avx2+fma",))]
fn interleave2_plain<T: WithDType>(row: &mut [MaybeUninit<T>], even: &[T], odd: &[T]) {
    let n = even.len();
    let (row, odd) = (&mut row[..2 * n], &odd[..n]);
    for v in 0..n {
        row[2 * v] = MaybeUninit::new(even[v]);
        row[2 * v + 1] = MaybeUninit::new(odd[v]);
    }
}

/// The AVX-512 copies of [`copy_stride2`] and [`interleave2`], on 4-byte elements moved as f32
/// bits (permutes and masked moves: no arithmetic, so every bit pattern is kept).
#[cfg(target_arch = "x86_64")]
mod x86_copies {
    use std::arch::x86_64::*;

    /// The lowest `k` of 16 lanes (k ≤ 16).
    fn lanes(k: usize) -> __mmask16 {
        debug_assert!(k <= 16);
        ((1u32 << k) - 1) as __mmask16
    }

    /// `dst[j] = src[2j]` for j < n, reading exactly `src[..2n − 1]`.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn copy_stride2_32(dst: *mut f32, src: *const f32, n: usize) {
        // Even lanes of (a, b): a's 0, 2, …, 14, then b's 0, 2, …, 14 (indices 16–31).
        let evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let mut j = 0;
        while j < n {
            let m = (n - j).min(16); // outputs this round
            let reads = if j + m < n { 2 * m } else { 2 * m - 1 }; // the last odd one is not ours
            let (ra, rb) = (reads.min(16), reads.saturating_sub(16));
            let a = _mm512_maskz_loadu_ps(lanes(ra), src.add(2 * j));
            // No address past the source is formed, even for a load that would read nothing.
            let b = if rb > 0 {
                _mm512_maskz_loadu_ps(lanes(rb), src.add(2 * j + 16))
            } else {
                _mm512_setzero_ps()
            };
            let v = _mm512_permutex2var_ps(a, evens, b);
            _mm512_mask_storeu_ps(dst.add(j), lanes(m), v);
            j += m;
        }
    }

    /// `row[2v] = even[v]`, `row[2v + 1] = odd[v]` for v < n.
    #[target_feature(enable = "avx512f")]
    pub unsafe fn interleave2_32(row: *mut f32, even: *const f32, odd: *const f32, n: usize) {
        // Lanes 0–15 of the output take e0 o0 e1 o1 … e7 o7; lanes 16–31 e8 o8 … e15 o15.
        let low = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        let high = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        let mut v = 0;
        while v < n {
            let m = (n - v).min(16);
            let e = _mm512_maskz_loadu_ps(lanes(m), even.add(v));
            let o = _mm512_maskz_loadu_ps(lanes(m), odd.add(v));
            let (out_low, out_high) = ((2 * m).min(16), (2 * m).saturating_sub(16));
            let dst = row.add(2 * v);
            _mm512_mask_storeu_ps(dst, lanes(out_low), _mm512_permutex2var_ps(e, low, o));
            if out_high > 0 {
                // Formed only when inside the row.
                let high_half = _mm512_permutex2var_ps(e, high, o);
                _mm512_mask_storeu_ps(dst.add(16), lanes(out_high), high_half);
            }
            v += m;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Values of both signs, zeros, and a remainder past the last whole group of lanes.
    fn data(n: usize, seed: usize) -> Vec<f32> {
        (0..n)
            .map(|i| match (i * 7 + seed) % 11 {
                0 => 0.0,
                r => (r as f32 - 5.5) * 0.37 + (i as f32) * 1e-3,
            })
            .collect()
    }

    #[test]
    fn strided_copies_and_additions_touch_exactly_their_elements() {
        for s in 1..4 {
            for n in [0, 1, 2, 7, 8, 9, 16, 17, 33] {
                let src: Vec<f32> = (0..s * n + 3).map(|i| i as f32 * 0.5 - 3.0).collect();
                let mut dst = vec![MaybeUninit::new(f32::NAN); n];
                copy_strided(&mut dst, &src, s);
                for j in 0..n {
                    // SAFETY: every element was initialised above.
                    assert_eq!(
                        unsafe { dst[j].assume_init() },
                        src[s * j],
                        "copy s {s} n {n}"
                    );
                }
                let before: Vec<f32> = (0..s * n + 2).map(|i| i as f32).collect();
                let mut after = before.clone();
                add_strided(&mut after, &src[..n], s);
                for (i, (&a, &b)) in after.iter().zip(&before).enumerate() {
                    let want = if i % s == 0 && i / s < n {
                        b + src[i / s]
                    } else {
                        b
                    };
                    assert_eq!(a, want, "add s {s} n {n} at {i}");
                }
            }
        }
    }

    /// The stride-2 copy and the interleave on every row length up to three registers, against
    /// their plain loops, bit for bit (NaN payloads included), touching nothing past the row.
    #[test]
    fn stride2_copies_and_interleaves_match_their_plain_loops() {
        for n in 0..50usize {
            let src: Vec<f32> = (0..2 * n + 5)
                .map(|i| f32::from_bits(0x7fc0_0001 + i as u32 * 977))
                .collect();
            let (mut fast, mut plain) = (
                vec![MaybeUninit::new(-1f32); n + 3],
                vec![MaybeUninit::new(-1f32); n + 3],
            );
            // The source ends where the row's last read is: nothing past it may be touched.
            let exact = &src[..(2 * n).saturating_sub(1)];
            copy_stride2(&mut fast[..n], exact);
            copy_stride2_plain(&mut plain[..n], exact);
            // SAFETY: every element was initialised when the vectors were made.
            let bits = |v: &[MaybeUninit<f32>]| {
                v.iter()
                    .map(|x| unsafe { x.assume_init() }.to_bits())
                    .collect::<Vec<_>>()
            };
            assert_eq!(bits(&fast), bits(&plain), "copy_stride2, n {n}");
            let plain_copy = plain;
            let (even, odd) = (&src[..n], &src[n + 2..2 * n + 2]);
            let (mut fast, mut plain) = (
                vec![MaybeUninit::new(-1f32); 2 * n + 3],
                vec![MaybeUninit::new(-1f32); 2 * n + 3],
            );
            interleave2(&mut fast[..2 * n], even, odd);
            interleave2_plain(&mut plain[..2 * n], even, odd);
            assert_eq!(bits(&fast), bits(&plain), "interleave2, n {n}");
            assert!(bits(&fast)[2 * n..].iter().all(|&b| b == (-1f32).to_bits()));
            // The AVX-512 kernels themselves, whatever LOGOGAN_SIMD lets the dispatch take.
            #[cfg(target_arch = "x86_64")]
            if std::arch::is_x86_feature_detected!("avx512f") {
                let mut direct = vec![MaybeUninit::new(-1f32); n + 3];
                // SAFETY: AVX-512F is there; `exact` has 2n − 1 elements, `direct` n + 3.
                unsafe {
                    x86_copies::copy_stride2_32(direct.as_mut_ptr().cast(), exact.as_ptr(), n)
                };
                assert_eq!(bits(&direct), bits(&plain_copy), "copy_stride2_32, n {n}");
                let mut direct = vec![MaybeUninit::new(-1f32); 2 * n + 3];
                // SAFETY: AVX-512F is there; `even` and `odd` have n elements, `direct` 2n + 3.
                unsafe {
                    x86_copies::interleave2_32(
                        direct.as_mut_ptr().cast(),
                        even.as_ptr(),
                        odd.as_ptr(),
                        n,
                    )
                };
                assert_eq!(bits(&direct), bits(&plain), "interleave2_32, n {n}");
            }
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // the definitions, written element by element
    fn shifted_copies_and_additions_follow_their_definitions() {
        let n = 11;
        let src: Vec<f32> = (0..n).map(|i| i as f32 + 0.5).collect();
        let valid: Vec<bool> = (0..n).map(|i| i % 3 != 1).collect();
        for shift in -(n as isize + 1)..=(n as isize + 1) {
            let reads = |t: usize| {
                let from = t as isize + shift;
                (valid[t] && (0..n as isize).contains(&from)).then_some(from as usize)
            };
            let mut dst = vec![MaybeUninit::new(f32::NAN); n];
            shifted_copy(&mut dst, &src, shift, &valid);
            for t in 0..n {
                // SAFETY: every element was initialised above.
                let got = unsafe { dst[t].assume_init() };
                assert_eq!(
                    got,
                    reads(t).map_or(0.0, |f| src[f]),
                    "copy shift {shift} at {t}"
                );
            }
            // The adjoint: dst[t + shift] += src[t] exactly where the copy read.
            let mut sums = vec![100f32; n];
            shifted_add(&mut sums, &src, shift, &valid);
            let mut want = vec![100f32; n];
            for t in 0..n {
                if let Some(to) = reads(t) {
                    want[to] += src[t];
                }
            }
            assert_eq!(sums, want, "add shift {shift}");
        }
    }

    #[test]
    fn interleave_puts_each_phase_row_in_its_columns() {
        for s in 1..4 {
            let wo = 5;
            // s phase rows of wo elements, `stride` apart, from `start` on.
            let (start, stride) = (2, 9);
            let phases: Vec<f32> = (0..stride * s + start).map(|i| i as f32).collect();
            let mut row = vec![MaybeUninit::new(f32::NAN); s * wo];
            interleave(&mut row, &phases, (start, stride), s);
            for x in 0..s * wo {
                // SAFETY: every element was initialised above.
                let got = unsafe { row[x].assume_init() };
                assert_eq!(
                    got,
                    phases[(x % s) * stride + start + x / s],
                    "s {s} at {x}"
                );
            }
        }
    }

    #[test]
    #[allow(clippy::needless_range_loop)] // the definitions, written element by element
    fn each_loop_equals_its_scalar_definition_bit_for_bit() {
        let n = 1000 + 3;
        let (x, y, g) = (data(n, 1), data(n, 4), data(n, 9));
        let slope = 0.2;
        let d = |i: usize| if y[i] > 0.0 { g[i] } else { g[i] * slope };

        // Each kernel through `written_by`, as the ops call them: every element is written.
        // SAFETY: each kernel writes all n elements of the slice it is given.
        let run = |kernel: &dyn Fn(&mut [MaybeUninit<f32>])| unsafe { written_by(n, kernel) };
        let out = run(&|out| leaky_relu(out, &x, slope));
        for i in 0..n {
            let want = if x[i] > 0.0 { x[i] } else { x[i] * slope };
            assert_eq!(out[i].to_bits(), want.to_bits(), "leaky_relu at {i}");
        }
        let out = run(&|out| leaky_relu_grad(out, &y, &g, slope));
        for i in 0..n {
            assert_eq!(out[i].to_bits(), d(i).to_bits(), "leaky_relu_grad at {i}");
        }
        let (hi, lo, scale, shift) = (0.3f32, 1e-9f32, 1.7f32, -0.2f32);
        let out = run(&|out| normalize_act(out, &x, (hi, lo), (scale, shift), slope));
        for i in 0..n {
            let z = ((x[i] - hi) - lo) * scale + shift;
            let want = if z > 0.0 { z } else { z * slope };
            assert_eq!(out[i].to_bits(), want.to_bits(), "normalize_act at {i}");
        }
        let (a, b, c) = (0.9f32, -0.4f32, 0.01f32);
        let out = run(&|out| batch_norm_input_grad(out, &x, &y, &g, (a, b, c), (hi, lo), slope));
        for i in 0..n {
            let want = a * d(i) + b * ((x[i] - hi) - lo) + c;
            assert_eq!(
                out[i].to_bits(),
                want.to_bits(),
                "batch_norm_input_grad at {i}"
            );
        }
        // The sums: the same lanes in the same order as written out here.
        let (mut s, mut q, mut ds, mut dsx) =
            ([0f64; LANES], [0f64; LANES], [0f64; LANES], [0f64; LANES]);
        let whole = n / LANES * LANES;
        for i in 0..whole {
            let v = x[i] as f64;
            s[i % LANES] += v;
            q[i % LANES] += v * v;
            ds[i % LANES] += d(i) as f64;
            dsx[i % LANES] += d(i) as f64 * v;
        }
        let (mut s, mut q) = (s.iter().sum::<f64>(), q.iter().sum::<f64>());
        let (mut ds, mut dsx) = (ds.iter().sum::<f64>(), dsx.iter().sum::<f64>());
        for i in whole..n {
            let v = x[i] as f64;
            (s, q, ds, dsx) = (s + v, q + v * v, ds + d(i) as f64, dsx + d(i) as f64 * v);
        }
        assert_eq!(sum_and_squares(&x), (s, q));
        assert_eq!(grad_sums(&x, &y, &g, slope), (ds, dsx));
    }

    /// Every SIMD path this CPU can run gives the plain loop's bits, NaN and zeros included.
    #[test]
    fn the_intrinsic_sums_match_the_plain_loop_bit_for_bit() {
        let bits =
            |(a, b): ([f64; LANES], [f64; LANES])| (a.map(f64::to_bits), b.map(f64::to_bits));
        for n in [0, 8, 64, 1000] {
            let (x, mut y, g) = (data(n, 1), data(n, 2), data(n, 3));
            if n > 9 {
                y[9] = f32::NAN; // compares false: the negative branch
                y[3] = -0.0;
            }
            let slope = 0.2;
            let plain = (
                bits(lanes::sum_and_squares_plain(&x)),
                bits(lanes::grad_sums_plain(&x, &y, &g, slope)),
            );
            let dispatched = (
                bits(lanes::sum_and_squares(&x)),
                bits(lanes::grad_sums(&x, &y, &g, slope)),
            );
            assert_eq!(dispatched, plain, "n = {n}, dispatched path");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("avx") {
                    // SAFETY: the CPU has AVX.
                    let avx = unsafe {
                        (
                            bits(lanes::x86::sum_and_squares_avx(&x)),
                            bits(lanes::x86::grad_sums_avx(&x, &y, &g, slope)),
                        )
                    };
                    assert_eq!(avx, plain, "n = {n}, AVX");
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F.
                    let avx512 = unsafe {
                        (
                            bits(lanes::x86::sum_and_squares_avx512(&x)),
                            bits(lanes::x86::grad_sums_avx512(&x, &y, &g, slope)),
                        )
                    };
                    assert_eq!(avx512, plain, "n = {n}, AVX-512");
                }
            }
            // And the sums are not all zero (the data reach them).
            if n > 0 {
                assert_ne!(plain.0 .1, [0u64; LANES]);
            }
        }
    }
}

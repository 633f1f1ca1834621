//! The CPU leaf's matrix products: the `gemm` crate called directly, with the way of calling
//! it chosen by the product's shape. Imports nothing from the rest of the crate.
//!
//! Why not candle's `matmul`: it zero-fills its output before the product overwrites it (one
//! extra pass over every output, on the calling thread while the others wait), and it always
//! asks `gemm` for one multi-threaded product. That is the fastest call for the forward
//! products and the input gradients, but not for the *weight gradients*, `dW = G·Pᵀ`, whose
//! inner dimension is every pixel of the batch (k = B·H·W, up to 130 000) while the result is
//! small, and whose two operands are both contiguous along k. Measured on two AVX-512 cores
//! (`bench-layers --gemms`), `gemm` then reaches 23–120 GFLOP/s where the other products reach
//! 160–210. Two things restore the speed:
//!
//! * **split-K**: each thread takes half of k and runs a single-threaded product into its own
//!   buffer, and the halves are added: no synchronisation inside the product, which for a
//!   64 × 48 result was most of the time (8.1 → 3.5 ms for 64 × 48 × 32 768);
//! * **the result written column-major**: `gemm` is fast on these operands when the result's
//!   columns are contiguous, so each half writes `dWᵀ` and the sum of the halves is written
//!   back transposed in the same pass (128 × 1024 × 8192: 30 → 12 ms; 256 × 2048 × 2048:
//!   17.7 → 12.3 ms).
//!
//! The split is always in two, whatever the number of threads, so a result does not depend
//! on the machine it was computed on.

use candle_core::WithDType;
use gemm::Parallelism;

/// `Err` with a message naming the variable when `LOGOGAN_SIMD` is set to something other than
/// `auto`, `avx512`, `avx2` or `portable` (the vendored gemm would stop the program at its first
/// product; a binary says it up front instead).
pub fn check_simd_setting() -> Result<(), String> {
    match std::env::var("LOGOGAN_SIMD") {
        Err(std::env::VarError::NotPresent) => Ok(()),
        Ok(v) if ["", "auto", "avx512", "avx2", "portable"].contains(&v.as_str()) => Ok(()),
        Ok(v) => Err(format!(
            "LOGOGAN_SIMD={v:?} is not a SIMD path: use auto, avx512, avx2 or portable (or unset it)"
        )),
        Err(_) => Err("LOGOGAN_SIMD is not valid UTF-8: use auto, avx512, avx2 or portable".into()),
    }
}

/// The SIMD path the f32 matrix products take on this machine: the widest the CPU has, unless
/// the environment variable `LOGOGAN_SIMD` (`avx512`, `avx2`, `portable`) caps it.
///
/// The cap itself lives in the vendored `gemm-f32` (vendor/README.md), so candle's own products
/// obey it too, and this function reads the variable by the same rule. The vendored crate comes
/// in through `[patch.crates-io]` in this repository's Cargo.toml, which applies where this
/// repository is what cargo builds: the chapters' binaries, the tests, the examples, where the
/// judge runs. A crate that depends on the library (the notebooks' kernel) gets the published
/// gemm-f32, which takes the best path whatever the variable says. The engine's element-wise
/// loops (`ops::simd`) give the same bits on every path anyway.
pub fn simd_path() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        let cap = std::env::var("LOGOGAN_SIMD").unwrap_or_default();
        let allows = |path: &str| match cap.as_str() {
            "portable" => false,
            "avx2" => path == "avx2",
            _ => true,
        };
        if allows("avx512") && std::arch::is_x86_feature_detected!("avx512f") {
            return "AVX-512";
        }
        if allows("avx2") && std::arch::is_x86_feature_detected!("fma") {
            return "AVX2";
        }
        "portable"
    }
    #[cfg(target_arch = "aarch64")]
    {
        "NEON"
    }
    #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
    {
        "portable"
    }
}

/// A matrix operand: its elements and the distance between rows and between columns (a
/// row-major `(r, c)` matrix has strides `(c, 1)`; its transposed view `(1, c)`).
#[derive(Clone, Copy)]
pub struct MatRef<'a, T> {
    pub data: &'a [T],
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<T> MatRef<'_, T> {
    /// Whether a `rows × cols` matrix with these strides lies inside `data`.
    fn fits(&self, rows: usize, cols: usize) -> bool {
        rows == 0
            || cols == 0
            || (rows - 1) * self.row_stride + (cols - 1) * self.col_stride < self.data.len()
    }

    /// The operand from row `r` and column `c` on.
    fn at(&self, r: usize, c: usize) -> *const T {
        self.data[r * self.row_stride + c * self.col_stride..].as_ptr()
    }
}

/// How a product is run; chosen by [`strategy`] from the shape and layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// One multi-threaded `gemm` call into the row-major result.
    Plain,
    /// k in two halves, one thread each, results row-major, then added.
    SplitK,
    /// k in two halves, one thread each, results column-major, then added and transposed.
    SplitKTransposed,
}

/// Products with at least this long an inner dimension are split (shorter ones gain nothing
/// from it: 512 × 4096 × 512 ran 7.2–8.2 ms plain against 9.1–9.3 split and transposed).
const SPLIT_MIN_K: usize = 1024;

/// The way to run `(m × k) · (k × n)`, given whether `b` is contiguous along k (as the patch
/// matrix read transposed is in a weight gradient). Measured with both split strategies and the
/// plain call on every weight gradient of the DCGAN at batch 32 and of the laptop model at
/// batch 64 (`examples/bench-layers.rs --gemms`):
///
/// * a result written column-major is what makes these products fast: 32 × 512 × 1024 (the
///   laptop discriminator's third layer) 1.18 ms plain, 0.62 split, 0.15 split and transposed;
///   16 × 48 × 16 384 (its generator's last layer) 1.84, 0.96, 0.25;
/// * except for a result of one full 64-row panel or less, 64 × 48 × 32 768 (the DCGAN's first
///   and last layers): 1.9–2.4 ms split row-major against 2.6–3.0 transposed.
pub fn strategy(m: usize, n: usize, k: usize, b_contiguous_along_k: bool) -> Strategy {
    if k < SPLIT_MIN_K {
        Strategy::Plain
    } else if m >= 64 && m * n <= 64 * 64 {
        // A small result of whole panels: synchronising the threads costs more than the
        // arithmetic, and row-major is as fast.
        Strategy::SplitK
    } else if b_contiguous_along_k {
        Strategy::SplitKTransposed
    } else {
        Strategy::Plain
    }
}

/// `a · b`, `(m × k) · (k × n)` → a new row-major `(m × n)` matrix, with [`strategy`]'s way.
/// Panics if an operand does not fit its slice (the callers check their layouts first).
pub fn matmul<T: WithDType>(
    a: MatRef<T>,
    b: MatRef<T>,
    (m, n, k): (usize, usize, usize),
) -> Vec<T> {
    matmul_with(a, b, (m, n, k), strategy(m, n, k, b.row_stride == 1))
}

/// [`matmul`] with the strategy given (the tests run every strategy on every shape).
pub fn matmul_with<T: WithDType>(
    a: MatRef<T>,
    b: MatRef<T>,
    (m, n, k): (usize, usize, usize),
    how: Strategy,
) -> Vec<T> {
    assert!(
        a.fits(m, k) && b.fits(k, n),
        "matmul: an operand does not fit its slice"
    );
    if m == 0 || n == 0 || k == 0 || how == Strategy::Plain || k < 2 {
        let mut out = Vec::with_capacity(m * n);
        if k == 0 {
            out.resize(m * n, T::zero());
        } else if m * n > 0 {
            let threads = rayon::current_num_threads();
            let par = if threads > 1 {
                Parallelism::Rayon(threads)
            } else {
                Parallelism::None
            };
            // SAFETY: `out` has room for m·n elements; the operands fit their slices
            // (asserted above); `gemm` writes every element of the result (read_dst false).
            unsafe {
                product(out.as_mut_ptr(), (n, 1), a, b, (m, n, k), (0, k), par);
                out.set_len(m * n);
            }
        }
        return out;
    }
    // Two halves of k, the first a multiple of 16 (whole SIMD vectors of the packed panels).
    let half = (k / 2).div_ceil(16) * 16;
    let half = half.min(k - 1);
    let threads = rayon::current_num_threads();
    let par = if threads >= 4 {
        Parallelism::Rayon(threads / 2)
    } else {
        Parallelism::None
    };
    // Each half's result: row-major (m × n), or column-major (physically n × m).
    let dst_strides = match how {
        Strategy::SplitKTransposed => (1, m),
        _ => (n, 1),
    };
    let mut first: Vec<T> = Vec::with_capacity(m * n);
    let mut second: Vec<T> = Vec::with_capacity(m * n);
    let (p1, p2) = (first.as_mut_ptr() as usize, second.as_mut_ptr() as usize);
    rayon::join(
        // SAFETY: as above, each half into its own buffer of m·n elements.
        || unsafe { product(p1 as *mut T, dst_strides, a, b, (m, n, k), (0, half), par) },
        || unsafe { product(p2 as *mut T, dst_strides, a, b, (m, n, k), (half, k), par) },
    );
    // SAFETY: both products wrote all m·n elements.
    unsafe {
        first.set_len(m * n);
        second.set_len(m * n);
    }
    match how {
        Strategy::SplitKTransposed => add_transposed(&first, &second, n, m),
        _ => {
            for (x, y) in first.iter_mut().zip(&second) {
                *x += *y;
            }
            first
        }
    }
}

/// One `gemm` call: `dst = a[:, k0..k1] · b[k0..k1, :]`, dst with (row, column) strides
/// `dst_strides`.
///
/// # Safety
/// `dst` must have room for every (i, j) < (m, n) at `i·rs + j·cs`; a and b must fit their
/// slices for `m × k` and `k × n`.
unsafe fn product<T: WithDType>(
    dst: *mut T,
    (dst_rs, dst_cs): (usize, usize),
    a: MatRef<T>,
    b: MatRef<T>,
    (m, n, _k): (usize, usize, usize),
    (k0, k1): (usize, usize),
    par: Parallelism,
) {
    gemm::gemm(
        m,
        n,
        k1 - k0,
        dst,
        dst_cs as isize,
        dst_rs as isize,
        false,
        a.at(0, k0),
        a.col_stride as isize,
        a.row_stride as isize,
        b.at(k0, 0),
        b.col_stride as isize,
        b.row_stride as isize,
        T::zero(),
        T::one(),
        false,
        false,
        false,
        par,
    )
}

/// `(x + y)ᵀ` of two row-major `(rows × cols)` matrices, as a row-major `(cols × rows)` one:
/// tile by tile, so that both sides stay in cache.
fn add_transposed<T: WithDType>(x: &[T], y: &[T], rows: usize, cols: usize) -> Vec<T> {
    use rayon::prelude::*;
    const TILE: usize = 32;
    let mut out = vec![T::zero(); rows * cols];
    out.par_chunks_mut(TILE * rows)
        .enumerate()
        .for_each(|(tile, out)| {
            let (c0, c1) = (tile * TILE, ((tile + 1) * TILE).min(cols));
            for r0 in (0..rows).step_by(TILE) {
                for c in c0..c1 {
                    for r in r0..(r0 + TILE).min(rows) {
                        out[(c - c0) * rows + r] = x[r * cols + c] + y[r * cols + c];
                    }
                }
            }
        });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product in f64, plainly.
    fn reference(
        a: &[f64],
        (ars, acs): (usize, usize),
        b: &[f64],
        (brs, bcs): (usize, usize),
        (m, n, k): (usize, usize, usize),
    ) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = (0..k)
                    .map(|p| a[i * ars + p * acs] * b[p * brs + j * bcs])
                    .sum();
            }
        }
        out
    }

    /// The largest difference between `how`'s product of `a` and `b` (with these strides) and
    /// the f64 product `want`.
    fn largest_error<T: WithDType>(
        a: &[T],
        b: &[T],
        (a_layout, b_layout): ((usize, usize), (usize, usize)),
        mnk: (usize, usize, usize),
        how: Strategy,
        want: &[f64],
    ) -> f64 {
        let operand = |data, (row_stride, col_stride)| MatRef {
            data,
            row_stride,
            col_stride,
        };
        matmul_with(operand(a, a_layout), operand(b, b_layout), mnk, how)
            .iter()
            .zip(want)
            .map(|(g, w)| (g.to_f64() - w).abs())
            .fold(0f64, f64::max)
    }

    #[test]
    fn every_strategy_equals_the_plain_product_on_every_layout() {
        let shapes = [
            (1, 1, 1),
            (3, 5, 2),
            (7, 3, 2049),
            (17, 33, 100),
            (64, 48, 4099),
            (70, 90, 2600),
            (1, 300, 2048),
        ];
        for (m, n, k) in shapes {
            let a64: Vec<f64> = (0..m * k)
                .map(|i| ((i * 37 % 101) as f64 - 50.0) / 25.0)
                .collect();
            let b64: Vec<f64> = (0..k * n)
                .map(|i| ((i * 53 % 97) as f64 - 48.0) / 24.0)
                .collect();
            let (a32, b32): (Vec<f32>, Vec<f32>) = (
                a64.iter().map(|&v| v as f32).collect(),
                b64.iter().map(|&v| v as f32).collect(),
            );
            // Row-major and column-major storage of each operand.
            for a_layout in [(k, 1), (1, m)] {
                for b_layout in [(n, 1), (1, k)] {
                    let want = reference(&a64, a_layout, &b64, b_layout, (m, n, k));
                    let scale = want.iter().fold(1e-30f64, |s, v| s.max(v.abs()));
                    for how in [
                        Strategy::Plain,
                        Strategy::SplitK,
                        Strategy::SplitKTransposed,
                    ] {
                        let err =
                            largest_error(&a32, &b32, (a_layout, b_layout), (m, n, k), how, &want);
                        assert!(
                            err / scale < 1e-5,
                            "{how:?} {m}×{n}×{k} a {a_layout:?} b {b_layout:?}: error {err} of {scale}"
                        );
                        // f64 too, exactly as the reference up to rounding.
                        let err =
                            largest_error(&a64, &b64, (a_layout, b_layout), (m, n, k), how, &want);
                        assert!(err / scale < 1e-12, "f64 {how:?} {m}×{n}×{k}: {err}");
                    }
                }
            }
        }
    }

    #[test]
    fn the_rule_picks_split_k_only_for_long_products() {
        assert_eq!(strategy(512, 4096, 512, true), Strategy::Plain);
        assert_eq!(strategy(64, 48, 32768, true), Strategy::SplitK);
        assert_eq!(strategy(128, 1024, 8192, true), Strategy::SplitKTransposed);
        // The laptop model's thin weight gradients: a result narrower than a panel, or k 1024.
        assert_eq!(strategy(32, 48, 16384, true), Strategy::SplitKTransposed);
        assert_eq!(strategy(32, 512, 1024, true), Strategy::SplitKTransposed);
        assert_eq!(strategy(100, 1024, 64, true), Strategy::Plain);
        assert_eq!(strategy(1024, 8192, 128, false), Strategy::Plain);
        assert_eq!(strategy(128, 1024, 8192, false), Strategy::Plain);
    }

    #[test]
    #[should_panic(expected = "does not fit")]
    fn an_operand_outside_its_slice_is_refused() {
        let a = [0f32; 5];
        let m = MatRef {
            data: &a[..],
            row_stride: 3,
            col_stride: 1,
        };
        matmul(m, m, (2, 2, 3));
    }
}

//! Convolutions as one matrix product each ("im2col + GEMM"). On the CPU and on CUDA each layer
//! is one custom op (this crate's im2col/col2im kernels around the device's GEMM) whose backward
//! is matrix products too and computes only the gradients that are needed; the *composed* form
//! below builds the same algorithm from candle's differentiable tensor ops, for any device.
//!
//! Why: candle 0.11's `conv_transpose2d` is a direct loop on CPU and on CUDA, and the backward
//! of its `conv2d` computes the weight gradient as a convolution whose kernel is the whole
//! feature map. Both are many times slower than a GEMM doing the same arithmetic (see
//! the measurements in `reference/bench/`: the generator's transposed convolutions are 13–20× PyTorch's).
//! A GEMM is what the CPU (the `gemm` crate) and the GPU (cuBLAS) do fastest.
//!
//! **Convolution** with a k×k kernel, stride s and padding p, where s divides k (k = m·s; the
//! DCGAN layers have k 4, s 2, p 1, so m = 2; the 4×4 → 1×1 layers have s 1, so m = 4):
//!
//! ```text
//! x (B, C, H, W) → zero-pad to (B, C, s·(Ho+m−1), s·(Wo+m−1))
//!   → view as (B, C, Ho+m−1, s, Wo+m−1, s)   "space to depth": pixel (s·P + r, s·Q + t)
//!   → (B, Ho+m−1, Wo+m−1, C, s, s)           one copy, channels next to their s×s block
//!   → m² shifted windows (B, Ho, Wo, C, s, s), stacked: (B, Ho, Wo, C, m·m, s·s) = the patches
//!   → (B·Ho·Wo, C·k·k) × (C·k·k, O)          one GEMM
//!   → (B, O, Ho, Wo)
//! ```
//!
//! The window of output (i, j) covers input rows s·i + ki, ki = s·a + r (a < m, r < s), which
//! is block row P = i + a, offset r: so a stride-s convolution becomes m² *unstrided* shifts,
//! and the patch matrix is made by two copies instead of k² strided gathers. The weight
//! `(O, C, k, k)` is permuted to the same column order `(c, a, a', r, t)`.
//!
//! **Transposed convolution** is the adjoint of the same map: one GEMM
//! `(B·H·W, Cin) × (Cin, Cout·k·k)` gives every input pixel's k×k contribution, and the
//! adjoint of "stack m² shifted windows" (pad each back to its place and add them) sums the
//! overlapping contributions ("col2im"). Its backward is again a shift-and-stack plus GEMMs.

use candle_core::backend::BackendStorage;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor,
};

use super::cpu_gemm::{self, MatRef};
use super::geometry::{blocks_per_kernel, conv_out, has_contiguous_rows, ConvGeometry};
#[cfg(feature = "cuda")]
use super::patches::im2col_cuda_storage;
use super::patches::{col2im_channel_major, im2col_op, im2col_storage, Col2Im};
use super::ChannelMajor;

/// Which implementation the convolution layers use.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Default,
    serde::Serialize,
    serde::Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum ConvAlgorithm {
    /// im2col + one GEMM (col2im for transposed convolutions), with this crate's im2col/col2im
    /// kernels: on the CPU ([`super::cpu`]) and on NVIDIA GPUs (`cuda` builds,
    /// `super::cuda`); on other devices, the composed form.
    #[default]
    Gemm,
    /// The same algorithm built only from candle's tensor ops (pad, reshape, stack, matmul): runs
    /// on any device; kept to compare against and as the portable fallback.
    Composed,
    /// candle's own `conv2d` / `conv_transpose2d` kernels.
    Candle,
}

/// Which way a convolution layer changes the picture's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A strided convolution, weight `(O, C, k, k)`: the side shrinks (the discriminator).
    Down,
    /// A transposed convolution, weight `(C, O, k, k)`: the side grows (the generator).
    Up,
}

/// The convolution (`Down`) or transposed convolution (`Up`) of channel-major activations with
/// weight `w`, stride `stride`, zero padding `padding`, no bias, computed by `algorithm`:
/// `(C, B, H, W)` → `(O, B, H', W')`, one graph node with the GEMM algorithm.
pub fn convolve(
    x: &ChannelMajor,
    w: &Tensor,
    direction: Direction,
    (stride, padding): (usize, usize),
    algorithm: ConvAlgorithm,
) -> Result<ChannelMajor> {
    let (x, s, p) = (x.tensor(), stride, padding);
    let y = match (direction, algorithm) {
        (Direction::Down, ConvAlgorithm::Gemm) => conv2d_channel_major(x, w, s, p)?,
        (Direction::Up, ConvAlgorithm::Gemm) => conv_transpose2d_channel_major(x, w, s, p)?,
        // The other algorithms work on (B, C, H, W).
        _ => {
            convolve_batch(&x.transpose(0, 1)?, w, direction, (s, p), algorithm)?.transpose(0, 1)?
        }
    };
    Ok(ChannelMajor(y))
}

/// [`convolve`] on a batch `(B, C, H, W)` → `(B, O, H', W')`.
pub fn convolve_batch(
    x: &Tensor,
    w: &Tensor,
    direction: Direction,
    (s, p): (usize, usize),
    algorithm: ConvAlgorithm,
) -> Result<Tensor> {
    match (direction, algorithm) {
        (Direction::Down, ConvAlgorithm::Gemm) => conv2d(x, w, s, p),
        (Direction::Up, ConvAlgorithm::Gemm) => conv_transpose2d(x, w, s, p),
        (Direction::Down, ConvAlgorithm::Composed) => conv2d_composed(x, w, s, p),
        (Direction::Up, ConvAlgorithm::Composed) => conv_transpose2d_composed(x, w, s, p),
        (Direction::Down, ConvAlgorithm::Candle) => x.conv2d(w, p, s, 1, 1),
        (Direction::Up, ConvAlgorithm::Candle) => x.conv_transpose2d(w, p, 0, s, 1),
    }
}

/// Pad `x` along `dim` with `left` zeros, then pad or cut its end so the dimension is `total`.
fn pad_to(x: &Tensor, dim: usize, left: usize, total: usize) -> Result<Tensor> {
    let len = x.dim(dim)? + left;
    if total >= len {
        x.pad_with_zeros(dim, left, total - len)
    } else {
        x.pad_with_zeros(dim, left, 0)?.narrow(dim, 0, total)
    }
}

/// The weight `(O, C, k, k)` = `(O, C, m, s, m, s)` as a matrix `(O, C·k·k)` with columns in the
/// patch order `(c, a, a', r, t)`.
fn weight_matrix(w: &Tensor, rows: usize, cols: usize, m: usize, s: usize) -> Result<Tensor> {
    w.reshape((rows, cols, m, s, m, s))?
        .permute((0, 1, 2, 4, 3, 5))?
        .reshape((rows, cols * m * m * s * s))
}

/// 2-D convolution of `x` (B, C, H, W) with `w` (O, C, k, k), stride `stride`, zero padding
/// `padding`, no bias: the same numbers as `x.conv2d(w, padding, stride, 1, 1)`.
///
/// On the CPU and on CUDA: the im2col kernel, then one GEMM; the output `(B, O, Ho, Wo)` is a
/// view of channel-major memory. Elsewhere: the same algorithm composed from candle's tensor ops.
pub fn conv2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    if has_kernels(x) {
        conv2d_kernels(x, w, stride, padding)
    } else {
        conv2d_composed(x, w, stride, padding)
    }
}

/// True where this crate's im2col/col2im kernels run: the CPU, and CUDA in `cuda` builds.
fn has_kernels(x: &Tensor) -> bool {
    x.device().is_cpu() || (cfg!(feature = "cuda") && x.device().is_cuda())
}

/// 2-D transposed convolution of `x` (B, Cin, H, W) with `w` (Cin, Cout, k, k) (PyTorch's and
/// candle's layout), stride `stride`, padding `padding`, no output padding, no bias: the same
/// numbers as `x.conv_transpose2d(w, padding, 0, stride, 1)`.
///
/// On the CPU and on CUDA: one GEMM, then the col2im kernel. Elsewhere: composed from candle's
/// tensor ops.
pub fn conv_transpose2d(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    if has_kernels(x) {
        conv_transpose2d_kernels(x, w, stride, padding)
    } else {
        conv_transpose2d_composed(x, w, stride, padding)
    }
}

/// `x` itself when its rows are contiguous (what im2col reads), else a contiguous copy.
fn rows_contiguous(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    if has_contiguous_rows(x.stride(), h, w) {
        Ok(x.clone())
    } else {
        x.contiguous()
    }
}

/// [`conv2d`] through the kernels, `(B, C, H, W)` in and out.
fn conv2d_kernels(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    conv2d_channel_major(&x.transpose(0, 1)?, w, stride, padding)?.transpose(0, 1)
}

/// [`conv_transpose2d`] through the kernels, `(B, C, H, W)` in and out.
fn conv_transpose2d_kernels(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    conv_transpose2d_channel_major(&x.transpose(0, 1)?, w, stride, padding)?.transpose(0, 1)
}

/// Convolution of a channel-major `x` (C, B, H, W) with `w` (O, C, k, k): the output is
/// channel-major too, `(O, B, Ho, Wo)`, the layout the GEMM writes and the next layer reads.
pub fn conv2d_channel_major(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    conv2d_channel_major_patches(x, w, stride, padding, None)
}

// ANCHOR: conv2d_kernels
/// [`conv2d_channel_major`], keeping the patch matrix for the backward pass or building it again
/// there, as `keep_patches` says (`None`: on the CPU as [`KEEP_PATCHES_UP_TO`] says, elsewhere
/// kept).
fn conv2d_channel_major_patches(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
    keep_patches: Option<bool>,
) -> Result<Tensor> {
    let (c, b, h, width) = x.dims4()?;
    let (o, wc, k, k2) = w.dims4()?;
    if wc != c || k != k2 {
        candle_core::bail!("conv2d: input has {c} channels, weight is {:?}", w.dims())
    }
    conv_out(h.min(width), k, stride, padding)?;
    if !has_kernels(x) {
        return conv2d_composed(&x.transpose(0, 1)?, w, stride, padding)?.transpose(0, 1);
    }
    let g = ConvGeometry {
        batch: b,
        channels: c,
        height: h,
        width,
        kernel: k,
        stride,
        padding,
    };
    let op = ConvGemm { g, out_channels: o };
    let bytes = g.rows() * g.columns() * x.dtype().size_in_bytes();
    // On a GPU the patches are always kept: its memory holds these models many times over,
    // and the step's time is what counts there.
    if keep_patches.unwrap_or(!x.device().is_cpu() || bytes <= KEEP_PATCHES_UP_TO) {
        // Every k×k×C patch of the input as a column, (C·k·k, B·Ho·Wo): the values only, the
        // op below differentiates. Kept until the backward pass, for the weight gradient.
        let patches = im2col_op(&rows_contiguous(&x.detach().transpose(0, 1)?)?, g)?;
        // y = W (O, C·k·k) × patches: one GEMM, one node of the graph.
        x.apply_op3(&w.contiguous()?, &patches, op) // (O, B, Ho, Wo)
    } else {
        // The same product, with patches that live only while it runs and are built again
        // for the weight gradient.
        rows_contiguous(x)?.apply_op2(&w.contiguous()?, op) // (O, B, Ho, Wo)
    }
}

/// The largest patch matrix, in bytes, that a convolution on the CPU keeps from its forward
/// pass to its backward pass. The patches hold every input pixel k²/s² times (4 times for DCGAN's layers):
/// at batch 128 and 64×64, D's four patch matrices are 260 MB per pass, against 63 MB of
/// activations, and a step holds two such passes. A larger one is built again for the weight
/// gradient (one more im2col, a pass over memory): on two AVX-512 cores the DCGAN step's peak
/// memory at batch 128 fell from 2 180 to 1 287 MiB with no time lost (medians of four
/// interleaved rounds, 2 641 ms kept against 2 423 ms rebuilt; the extra pass is paid back by
/// less memory to touch). The small ones of the `laptop` preset (at most 8 MB) are kept, where
/// nothing that matters would be saved.
const KEEP_PATCHES_UP_TO: usize = 16 << 20;
// ANCHOR_END: conv2d_kernels

/// One matrix product on device storage: `(b, m, n, k)` and the two operands' layouts.
struct GemmCall {
    bmnk: (usize, usize, usize, usize),
    lhs: Layout,
    rhs: Layout,
}

impl GemmCall {
    fn run<S: BackendStorage>(&self, lhs: &S, rhs: &S) -> Result<S> {
        lhs.matmul(rhs, self.bmnk, &self.lhs, &self.rhs)
    }

    /// [`Self::run`] on the CPU through this crate's [`cpu_gemm`], which does not zero-fill the
    /// result first.
    fn run_cpu(&self, lhs: &CpuStorage, rhs: &CpuStorage) -> Result<CpuStorage> {
        let (_, m, n, k) = self.bmnk;
        match (lhs, rhs) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => Ok(CpuStorage::F32(cpu_gemm::matmul(
                operand(a, &self.lhs)?,
                operand(b, &self.rhs)?,
                (m, n, k),
            ))),
            (CpuStorage::F64(a), CpuStorage::F64(b)) => Ok(CpuStorage::F64(cpu_gemm::matmul(
                operand(a, &self.lhs)?,
                operand(b, &self.rhs)?,
                (m, n, k),
            ))),
            _ => self.run(lhs, rhs),
        }
    }
}

/// A 2-D layout's elements as a [`MatRef`], checked to lie inside `data`.
fn operand<'a, T>(data: &'a [T], layout: &Layout) -> Result<MatRef<'a, T>> {
    let (dims, strides) = (layout.dims(), layout.stride());
    if dims.len() != 2 {
        candle_core::bail!("matmul: expected a matrix, got dims {dims:?}")
    }
    let last = (dims[0].max(1) - 1) * strides[0] + (dims[1].max(1) - 1) * strides[1];
    let data = data.get(layout.start_offset()..).unwrap_or(&[]);
    if dims[0] * dims[1] > 0 && last >= data.len() {
        candle_core::bail!(
            "matmul: a {dims:?} matrix with strides {strides:?} overruns its storage"
        )
    }
    Ok(MatRef {
        data,
        row_stride: strides[0],
        col_stride: strides[1],
    })
}

/// `a · b` of two matrices (2-D tensors, either may be a transposed view): on the CPU through
/// [`cpu_gemm`] (no zero-fill; split-K for the long weight-gradient products), elsewhere
/// candle's `matmul` (cuBLAS reads every layout at full speed).
fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let ((m, k), (k2, n)) = (a.dims2()?, b.dims2()?);
    if k != k2 {
        candle_core::bail!("matmul: ({m}, {k}) × ({k2}, {n})")
    }
    if !a.device().is_cpu() || !matches!(a.dtype(), DType::F32 | DType::F64) {
        return a.matmul(b);
    }
    let (sa, la) = a.storage_and_layout();
    let (sb, lb) = b.storage_and_layout();
    let call = GemmCall {
        bmnk: (1, m, n, k),
        lhs: la.clone(),
        rhs: lb.clone(),
    };
    let out = match (&*sa, &*sb) {
        (Storage::Cpu(x), Storage::Cpu(y)) => call.run_cpu(x, y)?,
        _ => candle_core::bail!("matmul: CPU tensors without CPU storage"),
    };
    drop((sa, sb));
    match out {
        CpuStorage::F32(v) => Tensor::from_vec(v, (m, n), a.device()),
        CpuStorage::F64(v) => Tensor::from_vec(v, (m, n), a.device()),
        _ => candle_core::bail!("matmul: unexpected result type"),
    }
}

/// Both GEMM ops read their weight as a contiguous `rows × cols` matrix.
fn check_weight(op: &str, wl: &Layout, rows: usize, cols: usize) -> Result<()> {
    if !wl.is_contiguous() || wl.shape().elem_count() != rows * cols {
        candle_core::bail!(
            "{op}: expected a contiguous weight of {rows}×{cols}, got {:?}",
            wl.dims()
        )
    }
    Ok(())
}

/// The convolution's GEMM `W (O, C·k·k) × patches (C·k·k, B·Ho·Wo)` as one custom op of
/// `(x, w, patches)`, so that a layer is one node of candle's graph (the patch matrix, the
/// reshapes and the product would be five, each costing a zero-filled tensor and an addition on
/// the way back), with a backward pass that computes only the gradients someone needs.
struct ConvGemm {
    g: ConvGeometry,
    out_channels: usize,
}

impl ConvGemm {
    /// The GEMM `W × patches`, W and the patches read as matrices.
    fn gemm(&self, wl: &Layout, pl: &Layout) -> Result<GemmCall> {
        let (o, rows, n) = (self.out_channels, self.g.rows(), self.g.columns());
        check_weight("conv2d", wl, o, rows)?;
        if !pl.is_contiguous() || pl.dims() != [rows, n] {
            candle_core::bail!(
                "conv2d: expected contiguous ({rows}, {n}) patches, got {:?}",
                pl.dims()
            )
        }
        Ok(GemmCall {
            bmnk: (1, o, n, rows),
            lhs: Layout::contiguous_with_offset((o, rows), wl.start_offset()),
            rhs: Layout::contiguous_with_offset((rows, n), pl.start_offset()),
        })
    }

    fn out_shape(&self) -> Shape {
        let g = self.g;
        Shape::from((self.out_channels, g.batch, g.out_height(), g.out_width()))
    }
}

impl CustomOp3 for ConvGemm {
    fn name(&self) -> &'static str {
        "logogan-conv2d"
    }

    fn cpu_fwd(
        &self,
        _x: &CpuStorage,
        _xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
        patches: &CpuStorage,
        pl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        Ok((self.gemm(wl, pl)?.run_cpu(w, patches)?, self.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        _x: &candle_core::CudaStorage,
        _xl: &Layout,
        w: &candle_core::CudaStorage,
        wl: &Layout,
        patches: &candle_core::CudaStorage,
        pl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        Ok((self.gemm(wl, pl)?.run(w, patches)?, self.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        patches: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (dx, dw) = self.gradients(x, w, || Ok(patches.clone()), grad)?;
        Ok((dx, dw, None))
    }
}

impl ConvGemm {
    // ANCHOR: conv2d_backward
    /// The gradients of `y = W × patches(x)` for `x` and `w`, each only where it is tracked;
    /// `patches` gives the patch matrix, asked for only for the weight gradient.
    fn gradients(
        &self,
        x: &Tensor,
        w: &Tensor,
        patches: impl FnOnce() -> Result<Tensor>,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (o, rows, n) = (self.out_channels, self.g.rows(), self.g.columns());
        // Only what is needed: no input gradient for real images, no weight gradient for a
        // discriminator held constant during the generator's update.
        let grad = grad.contiguous()?.reshape((o, n))?; // (O, B·Ho·Wo)
        let dx = if x.track_op() {
            let cols = matmul(&w.reshape((o, rows))?.t()?, &grad)?; // Wᵀ·G (C·k·k, B·Ho·Wo)
            Some(col2im_channel_major(&cols, self.g)?) // (C, B, H, W)
        } else {
            None
        };
        let dw = if w.track_op() {
            Some(matmul(&grad, &patches()?.t()?)?.reshape(w.shape())?) // G·Pᵀ (O, C·k·k)
        } else {
            None
        };
        Ok((dx, dw))
    }
    // ANCHOR_END: conv2d_backward
}

/// The same convolution as a custom op of `(x, w)` alone, for patch matrices too large to keep
/// ([`KEEP_PATCHES_UP_TO`]): the forward pass builds them for its GEMM and drops them, the
/// backward pass builds them again from `x` for the weight gradient.
impl CustomOp2 for ConvGemm {
    fn name(&self) -> &'static str {
        "logogan-conv2d-rebuilt-patches"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        // x is channel-major (C, B, H, W); im2col reads it through the (B, C, H, W) view.
        let patches = im2col_storage(x, &xl.transpose(0, 1)?, self.g)?;
        let pl = Layout::contiguous((self.g.rows(), self.g.columns()));
        Ok((self.gemm(wl, &pl)?.run_cpu(w, &patches)?, self.out_shape()))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        xl: &Layout,
        w: &candle_core::CudaStorage,
        wl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let patches = im2col_cuda_storage(x, &xl.transpose(0, 1)?, self.g)?;
        let pl = Layout::contiguous((self.g.rows(), self.g.columns()));
        Ok((self.gemm(wl, &pl)?.run(w, &patches)?, self.out_shape()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let rebuilt = || im2col_op(&x.detach().transpose(0, 1)?, self.g);
        self.gradients(x, w, rebuilt, grad)
    }
}

// ANCHOR: conv_transpose2d_kernels
/// Transposed convolution of a channel-major `x` (Cin, B, H, W) with `w` (Cin, Cout, k, k):
/// output channel-major, `(Cout, B, Ho, Wo)`.
pub fn conv_transpose2d_channel_major(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (cin, b, h, width) = x.dims4()?;
    let (wc, cout, k, k2) = w.dims4()?;
    if wc != cin || k != k2 {
        candle_core::bail!(
            "conv_transpose2d: input has {cin} channels, weight is {:?}",
            w.dims()
        )
    }
    let (ho, wo) = ((h - 1) * stride + k, (width - 1) * stride + k);
    if ho <= 2 * padding || wo <= 2 * padding {
        candle_core::bail!("conv_transpose2d: padding {padding} leaves no output")
    }
    if !has_kernels(x) {
        return conv_transpose2d_composed(&x.transpose(0, 1)?, w, stride, padding)?.transpose(0, 1);
    }
    // The output is the image whose convolution (same k, s, p) has x's size.
    let g = ConvGeometry {
        batch: b,
        channels: cout,
        height: ho - 2 * padding,
        width: wo - 2 * padding,
        kernel: k,
        stride,
        padding,
    };
    // x is read as the matrix (Cin, B·H·W): contiguous already when a layer made it.
    let x = if input_matrix(x.layout()).is_some() {
        x.clone()
    } else {
        x.contiguous()?
    };
    // col2im(Wᵀ (Cout·k·k, Cin) × x): every input pixel's k×k contribution, overlaps added.
    x.apply_op2(
        &w.contiguous()?,
        ConvTransposeGemm {
            g,
            in_channels: cin,
        },
    ) // (Cout, B, Ho, Wo)
}
// ANCHOR_END: conv_transpose2d_kernels

/// The layout of a `(C, B, H, W)` tensor as the matrix `(C, B·H·W)`, when its last three
/// dimensions merge into one and the matrix is row- or column-major (always when the tensor is
/// contiguous; also for the generator's input, `(nz, B, 1, 1)` transposed from `(B, nz, 1, 1)`).
fn input_matrix(layout: &Layout) -> Option<Layout> {
    let (dims, strides) = (layout.dims(), layout.stride());
    if dims.len() != 4 {
        return None;
    }
    // Walk the trailing dimensions from the innermost; size-1 dimensions may have any stride.
    let mut merged: Option<usize> = None; // stride of the merged dimension
    let mut span = 1; // elements the dimensions walked so far cover
    for d in (1..4).rev() {
        if dims[d] == 1 {
            continue;
        }
        match merged {
            None => merged = Some(strides[d]),
            Some(s) if strides[d] == s * span => {}
            Some(_) => return None,
        }
        span *= dims[d];
    }
    let (rows, columns) = (dims[0], dims[1] * dims[2] * dims[3]);
    let (row_stride, column_stride) = (strides[0], merged.unwrap_or(1));
    // Row-major or column-major only: the layouts cuBLAS takes (the CPU's GEMM takes any).
    let row_major = column_stride == 1 && (row_stride == columns || rows == 1);
    let column_major = row_stride == 1 && (column_stride == rows || columns == 1);
    (row_major || column_major).then(|| {
        Layout::new(
            Shape::from((rows, columns)),
            vec![row_stride, column_stride],
            layout.start_offset(),
        )
    })
}

/// The transposed convolution `col2im(Wᵀ × x)` as one custom op of `(x, w)`, with a backward
/// pass that computes only the gradients someone needs.
struct ConvTransposeGemm {
    g: ConvGeometry,
    in_channels: usize,
}

impl ConvTransposeGemm {
    /// The GEMM `Wᵀ × x`, W read transposed and x as the matrix (Cin, B·H·W).
    fn gemm(&self, xl: &Layout, wl: &Layout) -> Result<GemmCall> {
        let (cin, rows, n) = (self.in_channels, self.g.rows(), self.g.columns());
        let x = input_matrix(xl)
            .filter(|m| m.dims() == [cin, n])
            .ok_or_else(|| {
                candle_core::Error::Msg(format!(
                    "conv_transpose2d: expected a ({cin}, B, H, W) input readable as a \
                     ({cin}, {n}) matrix, got dims {:?} strides {:?}",
                    xl.dims(),
                    xl.stride()
                ))
            })?;
        check_weight("conv_transpose2d", wl, cin, rows)?;
        // W (Cin, Cout·k·k) read transposed.
        let wt = Layout::new(Shape::from((rows, cin)), vec![1, rows], wl.start_offset());
        Ok(GemmCall {
            bmnk: (1, rows, n, cin),
            lhs: wt,
            rhs: x,
        })
    }
}

impl CustomOp2 for ConvTransposeGemm {
    fn name(&self) -> &'static str {
        "logogan-conv-transpose2d"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        w: &CpuStorage,
        wl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let cols = self.gemm(xl, wl)?.run_cpu(w, x)?; // (Cout·k·k, B·H·W)
        Col2Im(self.g).cpu_fwd(
            &cols,
            &Layout::contiguous((self.g.rows(), self.g.columns())),
        )
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        x: &candle_core::CudaStorage,
        xl: &Layout,
        w: &candle_core::CudaStorage,
        wl: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let cols = self.gemm(xl, wl)?.run(w, x)?;
        Col2Im(self.g).cuda_fwd(
            &cols,
            &Layout::contiguous((self.g.rows(), self.g.columns())),
        )
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (cin, rows, n) = (self.in_channels, self.g.rows(), self.g.columns());
        // The adjoint of col2im is im2col: the output gradient's k×k patches, (Cout·k·k, B·H·W).
        let grad_cols = im2col_op(&rows_contiguous(&grad.transpose(0, 1)?)?, self.g)?;
        let dx = if x.track_op() {
            Some(matmul(&w.reshape((cin, rows))?, &grad_cols)?.reshape(x.shape())?)
        // (Cin, B, H, W)
        } else {
            None
        };
        let dw = if w.track_op() {
            let x = x.reshape((cin, n))?; // (Cin, B·H·W)
            Some(matmul(&x, &grad_cols.t()?)?.reshape(w.shape())?) // X·Gᵀ (Cin, Cout·k·k)
        } else {
            None
        };
        Ok((dx, dw))
    }
}

pub fn conv2d_composed(x: &Tensor, w: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let (b, c, h, width) = x.dims4()?;
    let (o, wc, k, k2) = w.dims4()?;
    if wc != c || k != k2 {
        candle_core::bail!("conv2d: input has {c} channels, weight is {:?}", w.dims())
    }
    let (s, m) = (stride, blocks_per_kernel(k, stride)?);
    let (ho, wo) = (conv_out(h, k, s, padding)?, conv_out(width, k, s, padding)?);
    let (ph, pw) = (ho + m - 1, wo + m - 1); // block rows and columns that windows touch
    let xp = pad_to(x, 2, padding, s * ph)?; // (B, C, s·ph, W)
    let xp = pad_to(&xp, 3, padding, s * pw)?; // (B, C, s·ph, s·pw)
    let blocks = xp
        .reshape((b, c, ph, s, pw, s))?
        .permute((0, 2, 4, 1, 3, 5))?
        .contiguous()?; // (B, ph, pw, C, s, s)
    let mut windows = Vec::with_capacity(m * m);
    for a in 0..m {
        for a2 in 0..m {
            windows.push(blocks.narrow(1, a, ho)?.narrow(2, a2, wo)?); // (B, Ho, Wo, C, s, s)
        }
    }
    let patches = Tensor::stack(&windows, 4)? // (B, Ho, Wo, C, m·m, s, s)
        .reshape((b * ho * wo, c * k * k))?;
    let w = weight_matrix(w, o, c, m, s)?; // (O, C·k·k)
    patches
        .matmul(&w.t()?)? // (B·Ho·Wo, O)
        .reshape((b, ho, wo, o))?
        .permute((0, 3, 1, 2)) // (B, O, Ho, Wo)
}

pub fn conv_transpose2d_composed(
    x: &Tensor,
    w: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let (b, cin, h, width) = x.dims4()?;
    let (wc, cout, k, k2) = w.dims4()?;
    if wc != cin || k != k2 {
        candle_core::bail!(
            "conv_transpose2d: input has {cin} channels, weight is {:?}",
            w.dims()
        )
    }
    let (s, m) = (stride, blocks_per_kernel(k, stride)?);
    let (ho, wo) = ((h - 1) * s + k, (width - 1) * s + k); // before removing the padding
    if ho <= 2 * padding || wo <= 2 * padding {
        candle_core::bail!("conv_transpose2d: padding {padding} leaves no output")
    }
    // Every input pixel's k×k contribution to the output, in patch order (o, a, a', r, t).
    let rows = x.permute((0, 2, 3, 1))?.reshape((b * h * width, cin))?; // (B·H·W, Cin)
    let w = weight_matrix(w, cin, cout, m, s)?; // (Cin, Cout·k·k)
    let contributions = rows
        .matmul(&w)? // (B·H·W, Cout·k·k)
        .reshape(vec![b, h, width, cout, m * m, s, s])?;
    // col2im: window (a, a') of input pixel (i, j) lands in block (i + a, j + a'): shift each
    // window to its place and add the overlaps.
    let mut blocks: Option<Tensor> = None;
    for a in 0..m {
        for a2 in 0..m {
            let shifted = contributions
                .narrow(4, a * m + a2, 1)?
                .squeeze(4)? // (B, H, W, Cout, s, s)
                .pad_with_zeros(1, a, m - 1 - a)?
                .pad_with_zeros(2, a2, m - 1 - a2)?; // (B, H+m−1, W+m−1, Cout, s, s)
            blocks = Some(match blocks {
                None => shifted,
                Some(sum) => (sum + shifted)?,
            });
        }
    }
    let (ph, pw) = (h + m - 1, width + m - 1);
    blocks
        .expect("m ≥ 1")
        .permute((0, 3, 1, 4, 2, 5))? // (B, Cout, ph, s, pw, s)
        .reshape((b, cout, s * ph, s * pw))? // s·ph = ho
        .narrow(2, padding, ho - 2 * padding)?
        .narrow(3, padding, wo - 2 * padding)
}

#[cfg(test)]
mod tests {
    //! Each op against candle's own convolution kernels computed in float64 on fresh random
    //! inputs, forward and backward (input and weight gradients), at the shapes of the course's
    //! networks and at odd ones.

    use super::*;
    use candle_core::{DType, Device, Var};

    /// Largest |a − b| relative to the largest |b| (a scale-aware relative error).
    fn rel_err(a: &Tensor, b: &Tensor) -> f64 {
        let diff = (a.to_dtype(DType::F64).unwrap() - b.to_dtype(DType::F64).unwrap())
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        let scale = b
            .to_dtype(DType::F64)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap();
        diff / scale.max(1e-30)
    }

    type Op = fn(&Tensor, &Tensor, usize, usize) -> Result<Tensor>;

    /// Forward and both gradients of `ours` (f32) against `reference` (f64), with a random
    /// upstream gradient so every output element matters.
    fn check(
        name: &str,
        ours: Op,
        reference: Op,
        x_shape: &[usize],
        w_shape: &[usize],
        s: usize,
        p: usize,
    ) {
        check_on(&Device::Cpu, name, ours, reference, x_shape, w_shape, s, p)
    }

    /// [`check`] with `ours` computed on `device` (the f64 reference always on the CPU).
    #[allow(clippy::too_many_arguments)]
    fn check_on(
        device: &Device,
        name: &str,
        ours: Op,
        reference: Op,
        x_shape: &[usize],
        w_shape: &[usize],
        s: usize,
        p: usize,
    ) {
        let dev = Device::Cpu;
        let x64 = Tensor::randn(0f64, 1.0, x_shape, &dev).unwrap();
        let w64 = Tensor::randn(0f64, 0.5, w_shape, &dev).unwrap();
        let reference_out = {
            let (x, w) = (
                Var::from_tensor(&x64).unwrap(),
                Var::from_tensor(&w64).unwrap(),
            );
            let y = reference(&x, &w, s, p).unwrap();
            let up = Tensor::randn(0f64, 1.0, y.dims(), &dev).unwrap();
            let grads = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
            let (gx, gw) = (
                grads.get(&x).unwrap().clone(),
                grads.get(&w).unwrap().clone(),
            );
            (y, up, gx, gw)
        };
        let (y64, up, gx64, gw64) = reference_out;
        let on_device = |t: &Tensor| t.to_dtype(DType::F32).unwrap().to_device(device).unwrap();
        let x = Var::from_tensor(&on_device(&x64)).unwrap();
        let w = Var::from_tensor(&on_device(&w64)).unwrap();
        let y = ours(&x, &w, s, p).unwrap();
        assert_eq!(
            y.dims(),
            y64.dims(),
            "output shape for x {x_shape:?} w {w_shape:?}"
        );
        let grads = (&y * &on_device(&up))
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let label = format!("{name} on {device:?}: x {x_shape:?} w {w_shape:?} s {s} p {p}");
        let back = |t: &Tensor| t.to_device(&Device::Cpu).unwrap();
        let e = rel_err(&back(&y), &y64);
        assert!(e <= 1e-5, "forward {label}: relative error {e:e}");
        let e = rel_err(&back(grads.get(&x).unwrap()), &gx64);
        assert!(e <= 1e-5, "input gradient {label}: relative error {e:e}");
        let e = rel_err(&back(grads.get(&w).unwrap()), &gw64);
        assert!(e <= 1e-5, "weight gradient {label}: relative error {e:e}");
    }

    fn candle_conv(x: &Tensor, w: &Tensor, s: usize, p: usize) -> Result<Tensor> {
        x.conv2d(w, p, s, 1, 1)
    }

    fn candle_conv_t(x: &Tensor, w: &Tensor, s: usize, p: usize) -> Result<Tensor> {
        x.conv_transpose2d(w, p, 0, s, 1)
    }

    /// Both implementations of each op: with this crate's im2col/col2im kernels, and composed
    /// from tensor ops; each checked here on the CPU (and on a GPU by the CUDA test below).
    const CONVS: [(&str, Op); 3] = [
        ("kernels", conv2d_kernels),
        ("kernels, patches built again", conv2d_rebuilding_patches),
        ("composed", conv2d_composed),
    ];

    /// [`conv2d_kernels`] with the patch matrix never kept: built again in the backward pass.
    fn conv2d_rebuilding_patches(x: &Tensor, w: &Tensor, s: usize, p: usize) -> Result<Tensor> {
        conv2d_channel_major_patches(&x.transpose(0, 1)?, w, s, p, Some(false))?.transpose(0, 1)
    }

    #[test]
    fn rebuilt_patches_give_the_same_bits_as_kept_ones() {
        // The same im2col and the same GEMMs, only at another time: every number identical,
        // for a layer whose input gradient is wanted and for the first layer (images: none).
        let dev = Device::Cpu;
        let w = Var::randn(0f32, 0.5, (8, 3, 4, 4), &dev).unwrap();
        for x in [
            Var::randn(0f32, 1.0, (3, 5, 12, 10), &dev)
                .unwrap()
                .as_tensor()
                .clone(),
            Tensor::randn(0f32, 1.0, (3, 5, 12, 10), &dev).unwrap(),
        ] {
            let up = Tensor::randn(0f32, 1.0, (8, 5, 6, 5), &dev).unwrap();
            let run = |keep: bool| {
                let y = conv2d_channel_major_patches(&x, &w, 2, 1, Some(keep)).unwrap();
                let grads = (&y * &up).unwrap().sum_all().unwrap().backward().unwrap();
                let bits = |t: Option<&Tensor>| {
                    t.map(|t| {
                        let v = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                        v.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
                    })
                };
                (bits(Some(&y)), bits(grads.get(&x)), bits(grads.get(&w)))
            };
            let (kept, rebuilt) = (run(true), run(false));
            assert!(kept.2.is_some(), "no weight gradient");
            assert_eq!(kept.1.is_some(), x.track_op(), "input gradient");
            assert_eq!(kept, rebuilt);
        }
    }
    const CONV_TS: [(&str, Op); 2] = [
        ("kernels", conv_transpose2d_kernels),
        ("composed", conv_transpose2d_composed),
    ];

    #[test]
    fn conv2d_matches_candle_in_f64() {
        for (name, imp) in CONVS {
            // D's layers: 4×4 s2 p1 halving, and the 4×4 → 1×1 output layer.
            check(name, imp, candle_conv, &[3, 3, 16, 16], &[8, 3, 4, 4], 2, 1);
            check(name, imp, candle_conv, &[2, 8, 8, 8], &[5, 8, 4, 4], 2, 1);
            check(name, imp, candle_conv, &[4, 6, 4, 4], &[1, 6, 4, 4], 1, 0);
            // Odd sides, other strides and paddings, non-square input.
            check(name, imp, candle_conv, &[2, 3, 9, 7], &[4, 3, 4, 4], 2, 1);
            check(name, imp, candle_conv, &[2, 3, 7, 6], &[4, 3, 3, 3], 1, 1);
            check(name, imp, candle_conv, &[1, 2, 11, 11], &[3, 2, 6, 6], 3, 2);
            check(name, imp, candle_conv, &[2, 2, 8, 8], &[3, 2, 4, 4], 2, 0);
            // B·Ho·Wo = 2048: the weight gradient's product is split in two along it (a thin
            // result, then a wide one written transposed; see `cpu_gemm`).
            check(name, imp, candle_conv, &[8, 3, 32, 32], &[8, 3, 4, 4], 2, 1);
            check(
                name,
                imp,
                candle_conv,
                &[2, 8, 64, 64],
                &[70, 8, 4, 4],
                2,
                1,
            );
        }
    }

    #[test]
    fn conv_transpose2d_matches_candle_in_f64() {
        for (name, imp) in CONV_TS {
            // G's layers: 1×1 → 4×4 (s1 p0), then doubling (4×4 s2 p1).
            check(
                name,
                imp,
                candle_conv_t,
                &[3, 10, 1, 1],
                &[10, 8, 4, 4],
                1,
                0,
            );
            check(name, imp, candle_conv_t, &[2, 8, 4, 4], &[8, 6, 4, 4], 2, 1);
            check(name, imp, candle_conv_t, &[2, 4, 8, 8], &[4, 3, 4, 4], 2, 1);
            // Non-square, other strides and paddings.
            check(name, imp, candle_conv_t, &[2, 3, 5, 3], &[3, 4, 4, 4], 2, 1);
            // B·H·W = 2048: the weight gradient's split products (thin, then wide).
            check(
                name,
                imp,
                candle_conv_t,
                &[8, 8, 16, 16],
                &[8, 3, 4, 4],
                2,
                1,
            );
            check(
                name,
                imp,
                candle_conv_t,
                &[2, 70, 32, 32],
                &[70, 8, 4, 4],
                2,
                1,
            );
            check(name, imp, candle_conv_t, &[1, 2, 4, 4], &[2, 3, 3, 3], 1, 1);
            check(name, imp, candle_conv_t, &[2, 2, 3, 4], &[2, 2, 6, 6], 3, 2);
            check(name, imp, candle_conv_t, &[2, 2, 3, 3], &[2, 2, 4, 4], 2, 0);
        }
    }

    /// What a GPU runs: both implementations (the CUDA im2col/col2im kernels, and the composed
    /// tensor ops) on CUDA device 0, against the f64 CPU reference, at the shapes of the course's
    /// layers (batch 8, 64×64 model, ngf = ndf = 64) and odd ones. Exists only in CUDA builds,
    /// and needs a GPU there: `build-cuda.sh --release --features cuda --lib --tests`, then the
    /// test binary on the GPU machine (`scripts/gpu-session.sh tests`).
    #[cfg(feature = "cuda")]
    #[test]
    fn both_paths_on_the_gpu_match_f64() {
        let gpu = Device::new_cuda(0).expect("this test needs a CUDA GPU");
        for (name, imp) in CONVS {
            let conv =
                |x: &[usize], w: &[usize], s, p| check_on(&gpu, name, imp, candle_conv, x, w, s, p);
            conv(&[8, 3, 64, 64], &[64, 3, 4, 4], 2, 1);
            conv(&[8, 64, 32, 32], &[128, 64, 4, 4], 2, 1);
            conv(&[8, 512, 4, 4], &[1, 512, 4, 4], 1, 0);
            conv(&[2, 3, 9, 7], &[4, 3, 4, 4], 2, 1);
            conv(&[1, 2, 11, 11], &[3, 2, 6, 6], 3, 2);
        }
        for (name, imp) in CONV_TS {
            let conv_t = |x: &[usize], w: &[usize], s, p| {
                check_on(&gpu, name, imp, candle_conv_t, x, w, s, p)
            };
            conv_t(&[8, 100, 1, 1], &[100, 512, 4, 4], 1, 0);
            conv_t(&[8, 256, 8, 8], &[256, 128, 4, 4], 2, 1);
            conv_t(&[8, 64, 32, 32], &[64, 3, 4, 4], 2, 1);
            conv_t(&[2, 3, 5, 3], &[3, 4, 4, 4], 2, 1);
            conv_t(&[2, 2, 3, 4], &[2, 2, 6, 6], 3, 2);
        }
    }

    #[test]
    fn cpu_kernels_take_any_stride() {
        let name = "kernels";
        check(
            name,
            conv2d_kernels,
            candle_conv,
            &[2, 3, 7, 7],
            &[4, 3, 3, 3],
            2,
            1,
        );
        check(
            name,
            conv_transpose2d_kernels,
            candle_conv_t,
            &[2, 3, 4, 4],
            &[3, 2, 3, 3],
            2,
            1,
        );
    }

    /// The ops compute only the gradients someone needs: a constant input (real images) gets
    /// no gradient, a constant weight (D in G's update) neither, and what is computed is the
    /// same, bit for bit, as when both are learnt.
    #[test]
    fn constants_get_no_gradient_and_change_nothing() {
        let dev = Device::Cpu;
        let cases: [(&str, Op, [usize; 4], [usize; 4]); 2] = [
            ("conv2d", conv2d, [2, 3, 8, 8], [4, 3, 4, 4]),
            (
                "conv_transpose2d",
                conv_transpose2d,
                [2, 3, 4, 4],
                [3, 4, 4, 4],
            ),
        ];
        for (name, op, x_shape, w_shape) in cases {
            let x = Var::randn(0f32, 1.0, &x_shape[..], &dev).unwrap();
            let w = Var::randn(0f32, 0.5, &w_shape[..], &dev).unwrap();
            let y = op(&x, &w, 2, 1).unwrap();
            let up = Tensor::randn(0f32, 1.0, y.dims(), &dev).unwrap();
            let grads = |x: &Tensor, w: &Tensor| {
                (op(x, w, 2, 1).unwrap() * &up)
                    .unwrap()
                    .sum_all()
                    .unwrap()
                    .backward()
                    .unwrap()
            };
            let both = grads(&x, &w);
            let bits = |t: &Tensor| {
                t.flatten_all()
                    .unwrap()
                    .to_vec1::<f32>()
                    .unwrap()
                    .iter()
                    .map(|v| v.to_bits())
                    .collect::<Vec<_>>()
            };
            let (x_const, w_const) = (x.detach(), w.detach());
            let only_w = grads(&x_const, &w);
            assert!(
                only_w.get(&x_const).is_none(),
                "{name}: constant input got a gradient"
            );
            assert_eq!(
                bits(only_w.get(&w).unwrap()),
                bits(both.get(&w).unwrap()),
                "{name}"
            );
            let only_x = grads(&x, &w_const);
            assert!(
                only_x.get(&w_const).is_none(),
                "{name}: constant weight got a gradient"
            );
            assert_eq!(
                bits(only_x.get(&x).unwrap()),
                bits(both.get(&x).unwrap()),
                "{name}"
            );
        }
    }

    #[test]
    fn refuses_strides_that_do_not_divide_the_kernel() {
        let x = Tensor::zeros((1, 1, 8, 8), DType::F32, &Device::Cpu).unwrap();
        let w = Tensor::zeros((1, 1, 3, 3), DType::F32, &Device::Cpu).unwrap();
        let err = conv2d_composed(&x, &w, 2, 1).unwrap_err().to_string();
        assert!(err.contains("stride (2) to divide the kernel (3)"), "{err}");
    }
}

//! The engine's one neutral place: the geometry of a convolution and the layout checks that the
//! CPU kernels ([`super::cpu`]), the CUDA kernels (`super::cuda`) and the ops around them share.
//! It imports nothing from the engine, so the device leaves never import each other.

use candle_core::{Layout, Result};

/// Geometry of a convolution with a k×k kernel, stride s, padding p on B×C×H×W inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeometry {
    pub batch: usize,
    pub channels: usize,
    pub height: usize,
    pub width: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
}

impl ConvGeometry {
    pub fn out_height(&self) -> usize {
        (self.height + 2 * self.padding - self.kernel) / self.stride + 1
    }
    pub fn out_width(&self) -> usize {
        (self.width + 2 * self.padding - self.kernel) / self.stride + 1
    }
    /// Rows of the patch matrix: C·k·k.
    pub fn rows(&self) -> usize {
        self.channels * self.kernel * self.kernel
    }
    /// Columns of the patch matrix: B·Ho·Wo.
    pub fn columns(&self) -> usize {
        self.batch * self.out_height() * self.out_width()
    }
}

/// True when the `(B, C, H, W)` `strides` keep each image row contiguous (`W` stride 1, `H`
/// stride `W`; size-1 dimensions may have any stride): the layouts im2col reads.
pub fn has_contiguous_rows(strides: &[usize], h: usize, w: usize) -> bool {
    strides.len() == 4 && (h <= 1 || strides[2] == w) && (w <= 1 || strides[3] == 1)
}

/// Strides of the batch and channel dimensions of a `(B, C, H, W)` layout whose rows are
/// contiguous, and its start offset.
pub fn image_strides(layout: &Layout, h: usize, w: usize) -> Result<(usize, usize, usize)> {
    let stride = layout.stride();
    if !has_contiguous_rows(stride, h, w) {
        candle_core::bail!(
            "expected a (B, C, H, W) tensor with contiguous rows, got dims {:?} strides {stride:?}",
            layout.dims()
        )
    }
    Ok((stride[0], stride[1], layout.start_offset()))
}

/// `m = k / s`, refusing strides that do not divide the kernel.
pub fn blocks_per_kernel(kernel: usize, stride: usize) -> Result<usize> {
    if stride == 0 || !kernel.is_multiple_of(stride) {
        candle_core::bail!(
            "gemm convolution needs the stride ({stride}) to divide the kernel ({kernel})"
        )
    }
    Ok(kernel / stride)
}

/// Output side of a convolution.
pub fn conv_out(size: usize, kernel: usize, stride: usize, padding: usize) -> Result<usize> {
    if size + 2 * padding < kernel {
        candle_core::bail!(
            "input side {size} + 2×{padding} padding is smaller than the kernel {kernel}"
        )
    }
    Ok((size + 2 * padding - kernel) / stride + 1)
}

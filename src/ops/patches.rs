//! im2col and col2im as candle custom ops with their own backward (each is the other's
//! adjoint), dispatching to the CPU leaf ([`super::cpu`]) or, in `cuda` builds, the CUDA leaf
//! (`super::cuda`).
//!
//! Why: composed from candle's generic tensor ops, the patch matrix is 5–15 ops, each a full
//! pass over memory with a fresh allocation, and candle's autograd adds a zero tensor and an
//! addition per op on the way back; each op here is one multi-threaded pass forward and one
//! backward.

use candle_core::backend::BackendStorage;
use candle_core::{CpuStorage, CustomOp1, DType, Layout, Result, Shape, Tensor};

use super::cpu::{col2im, cpu_slice, im2col};
use super::geometry::{image_strides, ConvGeometry};

/// `x (B, C, H, W)` → patch matrix `(C·k·k, B·Ho·Wo)`.
struct Im2Col(ConvGeometry);

impl CustomOp1 for Im2Col {
    fn name(&self) -> &'static str {
        "logogan-im2col"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        let strides = image_strides(layout, g.height, g.width)?;
        let shape = Shape::from((g.rows(), g.columns()));
        let out = match storage.dtype() {
            DType::F32 => CpuStorage::F32(im2col(cpu_slice::<f32>(storage, "im2col")?, strides, g)),
            DType::F64 => CpuStorage::F64(im2col(cpu_slice::<f64>(storage, "im2col")?, strides, g)),
            dt => candle_core::bail!("im2col: unsupported dtype {dt:?}"),
        };
        Ok((out, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let g = self.0;
        let (sb, sc, _) = image_strides(layout, g.height, g.width)?;
        let out = super::cuda::im2col(storage, layout, (sb, sc), g)?;
        Ok((out, Shape::from((g.rows(), g.columns()))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(col2im_op(grad, self.0)?))
    }
}

/// Patch matrix `(C·k·k, B·Ho·Wo)` → image, channel-major `(C, B, H, W)`.
pub(super) struct Col2Im(pub(super) ConvGeometry);

impl Col2Im {
    /// The kernels read a contiguous `(C·k·k, B·Ho·Wo)` matrix.
    fn check(&self, layout: &Layout) -> Result<()> {
        let g = self.0;
        if layout.dims() != [g.rows(), g.columns()] || !layout.is_contiguous() {
            candle_core::bail!(
                "col2im: expected a contiguous ({}, {}) matrix, got {:?}",
                g.rows(),
                g.columns(),
                layout.dims()
            )
        }
        Ok(())
    }
}

impl CustomOp1 for Col2Im {
    fn name(&self) -> &'static str {
        "logogan-col2im"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = self.0;
        self.check(layout)?;
        let o = layout.start_offset();
        let shape = Shape::from((g.channels, g.batch, g.height, g.width));
        let out = match storage.dtype() {
            DType::F32 => CpuStorage::F32(col2im(&cpu_slice::<f32>(storage, "col2im")?[o..], g)),
            DType::F64 => CpuStorage::F64(col2im(&cpu_slice::<f64>(storage, "col2im")?[o..], g)),
            dt => candle_core::bail!("col2im: unsupported dtype {dt:?}"),
        };
        Ok((out, shape))
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        storage: &candle_core::CudaStorage,
        layout: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        let g = self.0;
        self.check(layout)?;
        let out = super::cuda::col2im(storage, layout, g)?;
        Ok((out, Shape::from((g.channels, g.batch, g.height, g.width))))
    }

    fn bwd(&self, _arg: &Tensor, _res: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // grad is (C, B, H, W); im2col reads it as (B, C, H, W) through the transposed view.
        Ok(Some(im2col_op(&grad.transpose(0, 1)?, self.0)?))
    }
}

/// The patch matrix `(C·k·k, B·Ho·Wo)` of an image `(B, C, H, W)` held in `storage` and read
/// through `layout` (any layout with contiguous rows), outside candle's graph: for an op that
/// needs the patches only while it runs.
pub(super) fn im2col_storage(
    storage: &CpuStorage,
    layout: &Layout,
    g: ConvGeometry,
) -> Result<CpuStorage> {
    Ok(Im2Col(g).cpu_fwd(storage, layout)?.0)
}

/// [`im2col_storage`] on CUDA.
#[cfg(feature = "cuda")]
pub(super) fn im2col_cuda_storage(
    storage: &candle_core::CudaStorage,
    layout: &Layout,
    g: ConvGeometry,
) -> Result<candle_core::CudaStorage> {
    Ok(Im2Col(g).cuda_fwd(storage, layout)?.0)
}

/// `x` (B, C, H, W), any layout with contiguous rows → patches `(C·k·k, B·Ho·Wo)`.
pub fn im2col_op(x: &Tensor, g: ConvGeometry) -> Result<Tensor> {
    x.apply_op1(Im2Col(g))
}

/// Patches `(C·k·k, B·Ho·Wo)` → image `(B, C, H, W)` (a view of channel-major memory).
pub fn col2im_op(cols: &Tensor, g: ConvGeometry) -> Result<Tensor> {
    col2im_channel_major(cols, g)?.transpose(0, 1)
}

/// Patches `(C·k·k, B·Ho·Wo)` → image, channel-major `(C, B, H, W)`.
pub fn col2im_channel_major(cols: &Tensor, g: ConvGeometry) -> Result<Tensor> {
    cols.contiguous()?.apply_op1(Col2Im(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::max_rel;
    use candle_core::Device;

    #[test]
    fn im2col_reads_any_row_contiguous_layout() {
        // The same image as plain (B, C, H, W) and as a channel-major view gives the same patches.
        let dev = Device::Cpu;
        let x = Tensor::randn(0f32, 1.0, (2, 3, 6, 6), &dev).unwrap();
        let channel_major = x
            .transpose(0, 1)
            .unwrap()
            .contiguous()
            .unwrap()
            .transpose(0, 1)
            .unwrap();
        let g = ConvGeometry {
            batch: 2,
            channels: 3,
            height: 6,
            width: 6,
            kernel: 4,
            stride: 2,
            padding: 1,
        };
        let a = im2col_op(&x, g).unwrap();
        let b = im2col_op(&channel_major, g).unwrap();
        assert_eq!(max_rel(&a, &b), 0.0);
        assert_eq!(a.dims(), &[48, 2 * 3 * 3]);
    }
}

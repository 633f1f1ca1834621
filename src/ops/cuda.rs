//! The im2col and col2im kernels of [`super::cpu`] for NVIDIA GPUs (builds with the
//! `cuda` feature): the same maps, the same layouts, one CUDA thread per output element.
//!
//! Why: without them the GPU ran the convolutions' data movement as a composition of candle
//! tensor ops (pad, narrow, stack, permute: a dozen kernel launches and copies per layer, see
//! `super::conv`). With them a convolution on the GPU is the CPU's algorithm: one im2col kernel,
//! one cuBLAS GEMM (forward), or one GEMM and one col2im kernel (transposed), and their backward
//! passes are each other.
//!
//! The CUDA C source below is compiled once per process, at first use, by NVRTC (the runtime
//! compiler that ships with CUDA), so the crate needs no CUDA compiler at build time beyond
//! what candle needs. col2im is written as a gather (each output pixel sums the patch entries
//! that came from it), so it needs no atomics and is deterministic.
//!
//! Checked against the f64 CPU reference in `super::conv`'s tests (CUDA builds, on a GPU).

use std::sync::OnceLock;

use candle_core::backend::BackendStorage;
use candle_core::cuda_backend::cudarc::driver::{LaunchConfig, PushKernelArg};
use candle_core::cuda_backend::cudarc::nvrtc::compile_ptx;
use candle_core::cuda_backend::WrapErr;
use candle_core::{CudaStorage, DType, Layout, Result};

use super::geometry::ConvGeometry;

/// The kernels, in CUDA C (`conv_kernels.cu`). Index math in 64 bits: a patch matrix can pass
/// 2³¹ elements.
pub const SOURCE: &str = include_str!("conv_kernels.cu");

const MODULE: &str = "logogan_conv_kernels";

/// The PTX of [`SOURCE`], compiled by NVRTC on first use (an error message if that failed).
pub fn ptx() -> std::result::Result<&'static str, String> {
    static PTX: OnceLock<std::result::Result<String, String>> = OnceLock::new();
    PTX.get_or_init(|| {
        compile_ptx(SOURCE)
            .map(|ptx| ptx.to_src())
            .map_err(|e| format!("NVRTC could not compile the convolution kernels: {e}"))
    })
    .as_ref()
    .map(|s| s.as_str())
    .map_err(|e| e.clone())
}

/// A grid that covers `n` elements with grid-stride loops (at most 65 535 blocks of 256).
fn launch_config(n: usize) -> LaunchConfig {
    let blocks = n.div_ceil(256).clamp(1, 65_535) as u32;
    LaunchConfig {
        grid_dim: (blocks, 1, 1),
        block_dim: (256, 1, 1),
        shared_mem_bytes: 0,
    }
}

fn int(v: usize) -> Result<i32> {
    i32::try_from(v).map_err(|_| candle_core::Error::Msg(format!("convolution size {v} too large")))
}

/// im2col on the GPU: `x` (B, C, H, W) with contiguous rows, batch/channel strides `(sb, sc)`.
pub fn im2col(
    x: &CudaStorage,
    layout: &Layout,
    (sb, sc): (usize, usize),
    g: ConvGeometry,
) -> Result<CudaStorage> {
    let n = g.channels * g.kernel * g.kernel * g.batch * g.out_height() * g.out_width();
    launch(
        "logogan_im2col_f32",
        x,
        layout,
        n,
        g,
        &[sb as i64, sc as i64],
    )
}

/// col2im on the GPU: contiguous patches `(C·k·k, B·Ho·Wo)` → image, channel-major (C, B, H, W).
pub fn col2im(cols: &CudaStorage, layout: &Layout, g: ConvGeometry) -> Result<CudaStorage> {
    let n = g.channels * g.batch * g.height * g.width;
    launch("logogan_col2im_f32", cols, layout, n, g, &[])
}

/// Run kernel `name` of [`SOURCE`] on `input` (from its layout's start) into a new `n`-element
/// buffer, with the geometry as its `int` arguments (B, C, H, W, k, stride, pad, Ho, Wo) and
/// then `extra`.
fn launch(
    name: &str,
    input: &CudaStorage,
    layout: &Layout,
    n: usize,
    g: ConvGeometry,
    extra: &[i64],
) -> Result<CudaStorage> {
    if input.dtype() != DType::F32 {
        candle_core::bail!("{name}: only f32 on CUDA (got {:?})", input.dtype())
    }
    let dev = input.device().clone();
    let ptx = ptx().map_err(candle_core::Error::Msg)?;
    let func = dev.get_or_load_custom_func(name, MODULE, ptx)?;
    let src = input.as_cuda_slice::<f32>()?.slice(layout.start_offset()..);
    let geometry = [
        g.batch,
        g.channels,
        g.height,
        g.width,
        g.kernel,
        g.stride,
        g.padding,
        g.out_height(),
        g.out_width(),
    ]
    .map(int)
    .into_iter()
    .collect::<Result<Vec<i32>>>()?;
    // SAFETY: every element is written by the kernel below.
    let out = unsafe { dev.alloc::<f32>(n)? };
    let mut builder = func.builder();
    builder.arg(&src);
    builder.arg(&out);
    for v in &geometry {
        builder.arg(v);
    }
    for v in extra {
        builder.arg(v);
    }
    // SAFETY: the arguments match the kernel's signature; the grid-stride loop stays in bounds.
    unsafe { builder.launch(launch_config(n)) }.w()?;
    Ok(CudaStorage::wrap_cuda_slice(out, dev))
}

#[cfg(test)]
mod tests {
    /// NVRTC needs no GPU: this runs wherever the CUDA build's libraries are on the loader path.
    #[test]
    fn kernels_compile_with_nvrtc() {
        let ptx = super::ptx().unwrap();
        assert!(ptx.contains("logogan_im2col_f32") && ptx.contains("logogan_col2im_f32"));
    }
}

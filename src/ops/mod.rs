//! The speed engine: how the course's layers run fast, kept apart from what they compute.
//!
//! The model (`crate::model`) says *what* a layer does — convolution, batch-norm, activation —
//! and calls this module's public API; nothing here knows about generators, discriminators or
//! GANs. Inside:
//!
//! * [`geometry`]: the one neutral place — convolution geometry and layout checks;
//! * [`cpu`] and `cuda` (builds with the `cuda` feature): the device leaves, im2col/col2im
//!   kernels that import only [`geometry`] (CUDA C source in `conv_kernels.cu`);
//! * [`cpu_gemm`]: the CPU leaf's matrix products, `gemm` called the way each shape runs fastest;
//! * [`patches`]: im2col/col2im as candle custom ops with their own backward, on either leaf;
//! * [`conv`]: convolutions and transposed convolutions as one GEMM and one graph node each;
//! * [`batch_norm`]: training-mode batch-norm fused with the (Leaky)ReLU after it, its loops in
//!   [`simd`] (compiled for AVX-512, AVX2 and the baseline, chosen at run time);
//! * [`adam`]: the optimiser's update in place;
//! * [`augment`]: per-image recolouring, shift and cut-out in one pass (the course's DiffAugment);
//! * [`allocator`]: mimalloc set up for tensor code.
//!
//! **Layout.** Between layers, activations are *channel-major*: memory `(C, B, H, W)`, the layout
//! a convolution's GEMM `(O, C·k·k) × (C·k·k, B·H·W)` writes, the layout in which batch-norm's
//! per-channel statistics are contiguous, and the layout the next layer's GEMM reads: no copies
//! between layers. [`ChannelMajor`] holds such activations; a network enters it once (one
//! transpose of its input, a view) and leaves it once.
//!
//! All `unsafe` code and all `cfg(feature = "cuda")` of the library live in this module. Every
//! kernel is checked against candle's own operations in float64 (tests beside each).

pub mod adam;
#[cfg(not(target_arch = "wasm32"))]
pub mod allocator;
pub mod augment;
pub mod batch_norm;
pub mod conv;
pub mod cpu;
pub mod cpu_gemm;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod geometry;
pub mod patches;
pub mod simd;

pub use adam::{adam_update_in_place, AdamStep};
pub use batch_norm::{
    fused_batch_norm_act, fused_leaky_relu, fused_tanh, Params, Slope, BN_EPS, BN_MOMENTUM,
};
pub use conv::{convolve, ConvAlgorithm, Direction};
pub use geometry::ConvGeometry;

use candle_core::{Result, Tensor};

/// Activations in the engine's channel-major layout: a `(C, B, H, W)` tensor.
#[derive(Debug, Clone)]
pub struct ChannelMajor(Tensor);

impl ChannelMajor {
    /// A batch `(B, C, H, W)` (images, or noise `(B, Z, 1, 1)`) in the engine's layout: a
    /// transposed view, no copy.
    pub fn from_batch(x: &Tensor) -> Result<Self> {
        Ok(Self(x.transpose(0, 1)?))
    }

    /// Back to `(B, C, H, W)`: a transposed view, no copy.
    pub fn to_batch(&self) -> Result<Tensor> {
        self.0.transpose(0, 1)
    }

    /// The tensor itself, `(C, B, H, W)`.
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    /// These channels followed by `extra`'s, `(C', B, H, W)` → `(C + C', B, H, W)`.
    pub fn append_channels(&self, extra: &Tensor) -> Result<Self> {
        Ok(Self(Tensor::cat(&[&self.0, extra], 0)?))
    }

    /// An element-wise function (an activation) applied in place of the layout: element-wise
    /// ops do not care how the dimensions are ordered.
    pub fn map(&self, f: impl FnOnce(&Tensor) -> Result<Tensor>) -> Result<Self> {
        Ok(Self(f(&self.0)?))
    }
}

/// Runs `f` on one of rayon's worker threads and waits for it.
///
/// Why: the engine's kernels and the GEMMs split their work with rayon. Called from a thread
/// outside rayon's pool (a program's main thread), each split wakes the workers and puts the
/// caller to sleep until they finish: a system call each way, hundreds of times a step. Called
/// from a worker, the caller takes part in the work and the others steal from it.
pub fn on_worker_thread<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    if rayon::current_thread_index().is_some() {
        return f();
    }
    rayon::scope(|_| f())
}

/// True in builds with the `cuda` feature: the engine's CUDA leaf is compiled in.
pub const CUDA_BUILD: bool = cfg!(feature = "cuda");

/// Bytes in use on `device`'s GPU (all processes), or `None` on the CPU and in builds without
/// the `cuda` feature: what the benchmarks report as GPU memory.
pub fn gpu_memory_used(device: &candle_core::Device) -> Option<u64> {
    #[cfg(feature = "cuda")]
    if device.is_cuda() {
        let (free, total) =
            candle_core::cuda_backend::cudarc::driver::result::mem_get_info().ok()?;
        return Some((total - free) as u64);
    }
    let _ = device;
    None
}

#[cfg(test)]
pub(crate) mod test_support {
    use candle_core::{DType, Tensor};

    /// The largest difference between `a` and `b`, relative to `b`'s largest magnitude: how the
    /// kernels are compared with their references.
    pub fn max_rel(a: &Tensor, b: &Tensor) -> f64 {
        let a = a.to_dtype(DType::F64).unwrap();
        let b = b.to_dtype(DType::F64).unwrap();
        let diff = (&a - &b).unwrap().abs().unwrap().max_all().unwrap();
        let scale = b.abs().unwrap().max_all().unwrap();
        diff.to_scalar::<f64>().unwrap() / scale.to_scalar::<f64>().unwrap().max(1e-30)
    }
}

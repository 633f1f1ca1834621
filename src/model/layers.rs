//! Building blocks with the DCGAN paper's initialisation: convolution weights from N(0, 0.02),
//! batch-norm scale γ from N(1, 0.02) and shift β = 0, no convolution biases (batch-norm's β
//! does that job, and the output layers do without).
//!
//! Weights are created through a `VarBuilder` (so they live in a `VarMap` the optimiser and the
//! checkpoints see), then [`init_dcgan`] overwrites them from a seeded generator. candle's CPU
//! random numbers cannot be seeded; ours can, so the same seed gives the same network on CPU
//! and GPU.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor};
use candle_nn::{BatchNorm, BatchNormConfig, VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use super::gemm_conv::{self, ConvAlgorithm};

/// A 4×4 convolution without bias: weight `(out, in, 4, 4)`.
pub fn conv4(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    padding: usize,
    algorithm: ConvAlgorithm,
    vb: VarBuilder,
) -> Result<Conv> {
    Ok(Conv {
        direction: Direction::Down,
        weight: vb.get((out_channels, in_channels, 4, 4), "weight")?,
        stride,
        padding,
        algorithm,
    })
}

/// A 4×4 transposed convolution without bias. candle (like PyTorch) stores its weight as
/// `(in, out, k, k)`.
pub fn conv_transpose4(
    in_channels: usize,
    out_channels: usize,
    stride: usize,
    padding: usize,
    algorithm: ConvAlgorithm,
    vb: VarBuilder,
) -> Result<Conv> {
    Ok(Conv {
        direction: Direction::Up,
        weight: vb.get((in_channels, out_channels, 4, 4), "weight")?,
        stride,
        padding,
        algorithm,
    })
}

/// Batch-norm with PyTorch's defaults (ε = 1e-5, momentum 0.1), learnable γ and β.
pub fn batch_norm(channels: usize, vb: VarBuilder) -> Result<BatchNorm> {
    candle_nn::batch_norm(
        channels,
        BatchNormConfig {
            eps: 1e-5,
            remove_mean: true,
            affine: true,
            momentum: 0.1,
        },
        vb,
    )
}

/// Which way a convolution layer changes the picture's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// A strided convolution: the side shrinks (the discriminator).
    Down,
    /// A transposed convolution: the side grows (the generator).
    Up,
}

/// A convolution or a transposed convolution without bias, computed by `algorithm`.
#[derive(Debug, Clone)]
pub struct Conv {
    pub direction: Direction,
    /// Down: `(out, in, k, k)`; Up: `(in, out, k, k)`.
    pub weight: Tensor,
    pub stride: usize,
    pub padding: usize,
    pub algorithm: ConvAlgorithm,
}

impl Conv {
    pub fn out_channels(&self) -> usize {
        match self.direction {
            Direction::Down => self.weight.dims()[0],
            Direction::Up => self.weight.dims()[1],
        }
    }
}

impl Module for Conv {
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (w, s, p) = (&self.weight, self.stride, self.padding);
        match (self.direction, self.algorithm) {
            (Direction::Down, ConvAlgorithm::Gemm) => gemm_conv::conv2d(x, w, s, p),
            (Direction::Up, ConvAlgorithm::Gemm) => gemm_conv::conv_transpose2d(x, w, s, p),
            (Direction::Down, ConvAlgorithm::Candle) => x.conv2d(w, p, s, 1, 1),
            (Direction::Up, ConvAlgorithm::Candle) => x.conv_transpose2d(w, p, 0, s, 1),
        }
    }
}

/// Convolution (or transposed convolution), then batch-norm if any.
#[derive(Debug, Clone)]
pub struct ConvBlock {
    pub conv: Conv,
    pub norm: Option<BatchNorm>,
}

impl ConvBlock {
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        let x = self.conv.forward(x)?;
        match &self.norm {
            Some(norm) => norm.forward_t(&x, train),
            None => Ok(x),
        }
    }

    /// Learnable parameters (batch-norm's running statistics are not learnt).
    pub fn parameter_count(&self) -> usize {
        let conv = self.conv.weight.elem_count();
        let norm = self
            .norm
            .as_ref()
            .map_or(0, |n| 2 * n.running_mean().elem_count());
        conv + norm
    }
}

/// True for the names of batch-norm running statistics: state, not parameters.
pub fn is_running_stat(name: &str) -> bool {
    name.ends_with("running_mean") || name.ends_with("running_var")
}

/// Overwrite every variable of `varmap` with the DCGAN initialisation, drawn from `seed`.
/// Variables are visited in name order, so the result depends only on the seed and the names.
// ANCHOR: init_dcgan
pub fn init_dcgan(varmap: &VarMap, seed: u64) -> Result<()> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let weights = Normal::new(0.0f32, 0.02).expect("valid normal");
    let scales = Normal::new(1.0f32, 0.02).expect("valid normal");
    let data = varmap.data().lock().expect("poisoned");
    let mut names: Vec<&String> = data.keys().collect();
    names.sort();
    for name in names {
        let var = &data[name];
        let n = var.elem_count();
        let values: Vec<f32> = if name.ends_with("running_var") {
            vec![1.0; n]
        } else if name.ends_with("running_mean") || name.ends_with("norm.bias") {
            vec![0.0; n]
        } else if name.ends_with("norm.weight") {
            (0..n).map(|_| scales.sample(&mut rng)).collect()
        } else {
            (0..n).map(|_| weights.sample(&mut rng)).collect()
        };
        let tensor = Tensor::from_vec(values, var.shape(), &Device::Cpu)?
            .to_dtype(var.dtype())?
            .to_device(var.device())?;
        var.set(&tensor)?;
    }
    Ok(())
}
// ANCHOR_END: init_dcgan

/// A `VarBuilder` over a fresh `VarMap` in f32 on `device`.
pub fn new_varmap(device: &Device) -> (VarMap, VarBuilder<'static>) {
    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, device);
    (varmap, vb)
}

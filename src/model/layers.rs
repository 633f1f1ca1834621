//! Building blocks with the DCGAN paper's initialisation: convolution weights from N(0, 0.02),
//! batch-norm scale γ from N(1, 0.02) and shift β = 0, no convolution biases (batch-norm's β
//! does that job, and the output layers do without).
//!
//! Weights are created through a `VarBuilder` (so they live in a `VarMap` the optimiser and the
//! checkpoints see), then [`init_dcgan`] overwrites them from a seeded generator. candle's CPU
//! random numbers cannot be seeded; ours can, so the same seed gives the same network on CPU
//! and GPU.

use candle_core::{DType, Device, Module, ModuleT, Result, Tensor, Var};
use candle_nn::{BatchNorm, BatchNormConfig, VarBuilder, VarMap};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

use crate::ops::{
    convolve, fused_batch_norm_act, fused_leaky_relu, fused_tanh, ChannelMajor, Params, BN_EPS,
    BN_MOMENTUM,
};
pub use crate::ops::{ConvAlgorithm, Direction};

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
            eps: BN_EPS,
            remove_mean: true,
            affine: true,
            momentum: BN_MOMENTUM,
        },
        vb,
    )
}

/// The non-linearity that ends a block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activation {
    Relu,
    /// LeakyReLU with this slope for negative inputs.
    LeakyRelu(f64),
    /// Squeezes the generator's output into (−1, 1), the range of the training images.
    Tanh,
    /// None: the discriminator's last layer gives a raw logit.
    Identity,
}

impl Activation {
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Relu => x.relu(),
            Activation::LeakyRelu(slope) => candle_nn::ops::leaky_relu(x, slope),
            Activation::Tanh => x.tanh(),
            Activation::Identity => Ok(x.clone()),
        }
    }

    /// The negative slope when this is a (Leaky)ReLU: what the fused CPU kernel takes.
    fn slope(self) -> Option<f32> {
        match self {
            Activation::Relu => Some(0.0),
            Activation::LeakyRelu(slope) => Some(slope as f32),
            _ => None,
        }
    }

    /// The name in layer tables ("" for none).
    pub fn name(self) -> &'static str {
        match self {
            Activation::Relu => "ReLU",
            Activation::LeakyRelu(_) => "LeakyReLU",
            Activation::Tanh => "tanh",
            Activation::Identity => "",
        }
    }
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

impl Conv {
    /// The convolution with weight `w` in place of its own (e.g. spectrally normalised), on
    /// channel-major activations `(C, B, H, W)` → `(O, B, H', W')`.
    pub fn forward_with(&self, x: &ChannelMajor, w: &Tensor) -> Result<ChannelMajor> {
        convolve(
            x,
            w,
            self.direction,
            (self.stride, self.padding),
            self.algorithm,
        )
    }
}

impl Module for Conv {
    /// `x` (B, C, H, W) → `(B, O, H', W')`.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        self.forward_with(&ChannelMajor::from_batch(x)?, &self.weight)?
            .to_batch()
    }
}

/// Spectral normalisation (Miyato et al. 2018): the layer uses `W / σ(W)`, where σ is W's
/// largest singular value, so no layer can stretch its input by more than a factor 1 and D stays
/// a smooth function of its input, which keeps its gradients useful to G. σ is tracked by one
/// step of power iteration per training pass, with the estimate `u` kept as state (saved in
/// checkpoints, not learnt).
#[derive(Debug, Clone)]
pub struct SpectralNorm {
    /// `(out_channels,)`: the current estimate of W's top left-singular vector.
    pub u: Var,
}

fn unit(x: &Tensor) -> Result<Tensor> {
    x.broadcast_div(&(x.sqr()?.sum_all()?.sqrt()? + 1e-12)?)
}

impl SpectralNorm {
    pub fn new(out_channels: usize, vb: &VarBuilder) -> Result<Self> {
        Ok(Self {
            u: Var::from_tensor(&vb.get(out_channels, "sn_u")?)?,
        })
    }

    // ANCHOR: spectral_norm
    /// `w` (O, …) divided by its estimated largest singular value. In training, one power
    /// iteration refines the estimate first. Gradients flow through `w` in both places.
    pub fn normalise(&self, w: &Tensor, train: bool) -> Result<Tensor> {
        let o = w.dim(0)?;
        let matrix = w.reshape((o, ()))?; // (O, C·k·k)

        // The iteration itself is not differentiated; u is state, not a parameter: no gradient
        // flows into it (PyTorch keeps it as a buffer).
        let fixed = matrix.detach();
        let mut u = unit(&self.u.as_detached_tensor().reshape((1, o))?)?; // (1, O)
        let v = unit(&u.matmul(&fixed)?)?; // (1, C·k·k)
        if train {
            u = unit(&v.matmul(&fixed.t()?)?)?;
            self.u.set(&u.reshape(o)?)?;
        }
        let sigma = u.matmul(&matrix)?.matmul(&v.t()?)?; // (1, 1) = uᵀ W v
        w.broadcast_div(&sigma.reshape((1, 1, 1, 1))?)
    }
    // ANCHOR_END: spectral_norm
}

/// Convolution (or transposed convolution), then batch-norm if any, then the activation.
#[derive(Debug, Clone)]
pub struct ConvBlock {
    pub conv: Conv,
    pub norm: Option<BatchNorm>,
    pub activation: Activation,
    pub spectral: Option<SpectralNorm>,
}

/// How a network runs in a forward pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    /// Training this network: batch-norm uses the batch's statistics (and updates its running
    /// averages); gradients are computed for every parameter.
    Train,
    /// Training the other network through this one (D in the generator's update): the batch's
    /// statistics as in training, but this network's parameters are constants.
    Frozen,
    /// Sampling or scoring: batch-norm uses its running statistics; nothing is updated.
    Eval,
}

impl Pass {
    /// [`Pass::Train`] or [`Pass::Eval`], from candle's `train` flag.
    pub fn from_train(train: bool) -> Self {
        if train {
            Pass::Train
        } else {
            Pass::Eval
        }
    }

    /// True when batch-norm normalises with the batch's own statistics.
    pub fn uses_batch_statistics(self) -> bool {
        self != Pass::Eval
    }

    fn params(self) -> Params {
        match self {
            Pass::Frozen => Params::Constant,
            Pass::Train | Pass::Eval => Params::Learnt,
        }
    }
}

impl ConvBlock {
    // ANCHOR: block_forward
    /// Convolution → batch-norm → activation, on activations in the engine's channel-major
    /// layout (see [`ChannelMajor`]): `(C, B, H, W)` → `(O, B, H', W')`.
    pub fn forward(&self, x: &ChannelMajor, pass: Pass) -> Result<ChannelMajor> {
        let x = self.conv.forward_with(x, &self.weight(pass)?)?; // (O, B, H', W')
        let norm = self.norm.as_ref().map(|norm| (norm, pass));
        // Batch-norm (where the block has one), then the activation; the engine chooses how.
        norm_then_activate(&x, norm, self.activation, self.conv.algorithm)
    }
    // ANCHOR_END: block_forward

    /// `x` (B, C, H, W) → `(B, O, H', W')`.
    pub fn forward_t(&self, x: &Tensor, train: bool) -> Result<Tensor> {
        self.forward(&ChannelMajor::from_batch(x)?, Pass::from_train(train))?
            .to_batch()
    }

    /// The convolution's weight for this pass: spectrally normalised if the block asks for it
    /// (refining σ's estimate in training), a constant in a frozen pass.
    fn weight(&self, pass: Pass) -> Result<Tensor> {
        let w = match pass {
            Pass::Frozen => self.conv.weight.detach(),
            Pass::Train | Pass::Eval => self.conv.weight.clone(),
        };
        match &self.spectral {
            Some(sn) => sn.normalise(&w, pass.uses_batch_statistics()),
            None => Ok(w),
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

/// Batch-norm (when `norm` is given, with the pass it runs in) and then `activation`, on `x`
/// `(O, B, H, W)`: what [`ConvBlock::forward`] means, and the one place that chooses how the engine
/// computes it. The reference is candle-nn's `BatchNorm` and the activation, on the batch-major
/// layout; with the Gemm convolution the engine fuses both into one kernel where it has one
/// (the other convolution algorithms keep the reference, which the fused kernels are tested
/// against).
fn norm_then_activate(
    x: &ChannelMajor,
    norm: Option<(&BatchNorm, Pass)>,
    activation: Activation,
    algorithm: ConvAlgorithm,
) -> Result<ChannelMajor> {
    let fast = algorithm == ConvAlgorithm::Gemm;
    let Some((norm, pass)) = norm else {
        // No batch-norm (an output layer, or DCGAN's first D layer): the activation alone.
        // Speed: one kernel where the engine has one.
        return x.map(|x| {
            let fused = match (activation, activation.slope()) {
                (_, Some(slope)) if fast => fused_leaky_relu(x, slope)?,
                (Activation::Tanh, _) if fast => fused_tanh(x)?,
                _ => None,
            };
            match fused {
                Some(y) => Ok(y),
                None => activation.apply(x),
            }
        });
    };
    if let (true, Some(slope)) = (pass.uses_batch_statistics() && fast, activation.slope()) {
        if let Some(y) = fused_batch_norm_act(norm, x, slope, pass.params())? {
            return Ok(y);
        }
    }
    let norm = match pass {
        Pass::Frozen => frozen_batch_norm(norm)?,
        Pass::Train | Pass::Eval => norm.clone(),
    };
    let y = norm.forward_t(&x.to_batch()?, pass.uses_batch_statistics())?; // (B, O, H, W)
    ChannelMajor::from_batch(&activation.apply(&y)?)
}

/// `norm` with γ and β as constants (no gradient), sharing its running statistics, which it
/// updates in training mode as `norm` would.
fn frozen_batch_norm(norm: &BatchNorm) -> Result<BatchNorm> {
    let (gamma, beta) = norm
        .weight_and_bias()
        .ok_or_else(|| candle_core::Error::Msg("batch-norm without γ and β".into()))?;
    let frozen = BatchNorm::new(
        gamma.dim(0)?,
        norm.running_mean().clone(), // variables: shared, not copied
        norm.running_var().clone(),
        gamma.detach(),
        beta.detach(),
        BN_EPS,
    )?;
    debug_assert_eq!(BN_MOMENTUM, 0.1, "BatchNorm::new uses momentum 0.1");
    Ok(frozen)
}

/// What a variable of a network is for. candle's `VarMap` keeps variables by name only; the
/// layers above name them (`block2.conv.weight`, `block2.norm.running_var`, …), and this is the one
/// place that reads a role back from a name, for the initialiser, the optimiser and the average.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum VariableRole {
    /// Every other variable: a convolution's weight (or, in chapter 1's small networks, a linear
    /// layer's weight or bias); learnt, drawn from N(0, 0.02) by `init_dcgan`.
    Weight,
    /// Batch-norm's scale γ: learnt, drawn from N(1, 0.02).
    NormScale,
    /// Batch-norm's shift β: learnt, starts at 0.
    NormShift,
    /// Batch-norm's running mean: measured, not learnt; starts at 0.
    RunningMean,
    /// Batch-norm's running variance: measured, not learnt; starts at 1.
    RunningVar,
    /// Spectral norm's power-iteration vector u: estimated each step, not learnt.
    SpectralEstimate,
}

impl VariableRole {
    /// The role of the variable called `name`.
    pub fn of(name: &str) -> Self {
        if name.ends_with("running_mean") {
            Self::RunningMean
        } else if name.ends_with("running_var") {
            Self::RunningVar
        } else if name.ends_with("sn_u") {
            Self::SpectralEstimate
        } else if name.ends_with("norm.weight") {
            Self::NormScale
        } else if name.ends_with("norm.bias") {
            Self::NormShift
        } else {
            Self::Weight
        }
    }

    /// True for parameters the optimiser moves; false for state the forward pass keeps
    /// (running statistics, spectral-norm estimates), which the average copies instead.
    pub fn is_learnt(self) -> bool {
        matches!(self, Self::Weight | Self::NormScale | Self::NormShift)
    }
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
        let values: Vec<f32> = match VariableRole::of(name) {
            VariableRole::RunningVar => vec![1.0; n],
            VariableRole::RunningMean | VariableRole::NormShift => vec![0.0; n],
            VariableRole::NormScale => (0..n).map(|_| scales.sample(&mut rng)).collect(),
            // Spectral norm's starting vector only needs to be random.
            VariableRole::Weight | VariableRole::SpectralEstimate => {
                (0..n).map(|_| weights.sample(&mut rng)).collect()
            }
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

#[cfg(test)]
mod spectral_tests {
    use super::*;

    #[test]
    fn power_iteration_finds_the_largest_singular_value() {
        let dev = Device::Cpu;
        let (varmap, vb) = new_varmap(&dev);
        let sn = SpectralNorm::new(6, &vb.pp("conv")).unwrap();
        // u starts random. A seeded W (an unseeded one made this test flaky: with the top two
        // singular values close, 30 iterations sometimes fell short of the tolerance), and
        // iterations enough for its spectral gap.
        init_dcgan(&varmap, 3).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let draws: Vec<f32> = (0..6 * 2 * 3 * 3)
            .map(|_| {
                Normal::new(0f32, 1.0)
                    .expect("valid normal")
                    .sample(&mut rng)
            })
            .collect();
        let w = Tensor::from_vec(draws, (6, 2, 3, 3), &dev).unwrap();
        let values: Vec<f64> = w
            .flatten_all()
            .unwrap()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1()
            .unwrap();
        let largest = nalgebra::DMatrix::from_row_slice(6, 18, &values)
            .singular_values()
            .max();
        for _ in 0..100 {
            sn.normalise(&w, true).unwrap();
        }
        // W / σ has largest singular value 1: σ matches the SVD's.
        let normalised = sn.normalise(&w, false).unwrap();
        let ratio = (w.max_all().unwrap().to_scalar::<f32>().unwrap()
            / normalised.max_all().unwrap().to_scalar::<f32>().unwrap()) as f64;
        assert!(
            (ratio - largest).abs() < 1e-3 * largest,
            "σ {ratio} vs SVD {largest}"
        );
        // Inference does not move the estimate.
        let u = sn.u.as_tensor().to_vec1::<f32>().unwrap();
        sn.normalise(&w, false).unwrap();
        assert_eq!(sn.u.as_tensor().to_vec1::<f32>().unwrap(), u);
        assert!(
            !VariableRole::of("block0.conv.sn_u").is_learnt(),
            "not optimised by Adam"
        );
    }
}

#[cfg(test)]
mod role_tests {
    use super::*;
    use crate::model::{Gan, ModelConfig};

    /// Every variable of both networks, with and without spectral norm, reads back the role its
    /// layer gave it; "weight" is the fallback only for names that end in `weight`, so a new
    /// kind of variable (a bias, an embedding) has to be given its role here.
    #[test]
    fn every_variable_of_both_networks_has_the_role_its_layer_meant() {
        let mut config = ModelConfig::logogan(32);
        config.discriminator.spectral_norm = true;
        let gan = Gan::new(&config, &Device::Cpu, 0).unwrap();
        let mut counts = std::collections::HashMap::new();
        for vars in [&gan.generator_vars, &gan.discriminator_vars] {
            for name in vars.data().lock().unwrap().keys() {
                let role = VariableRole::of(name);
                let expected_suffix = match role {
                    VariableRole::Weight => "conv.weight",
                    VariableRole::NormScale => "norm.weight",
                    VariableRole::NormShift => "norm.bias",
                    VariableRole::RunningMean => "norm.running_mean",
                    VariableRole::RunningVar => "norm.running_var",
                    VariableRole::SpectralEstimate => "conv.sn_u",
                };
                assert!(name.ends_with(expected_suffix), "{name}: {role:?}");
                *counts.entry(role).or_insert(0) += 1;
            }
        }
        // G: 4 blocks at 32×32 (3 with batch-norm); D: 4 blocks (3 with batch-norm), each conv
        // with its spectral-norm vector.
        assert_eq!(counts[&VariableRole::Weight], 8);
        assert_eq!(counts[&VariableRole::NormScale], 6);
        assert_eq!(counts[&VariableRole::RunningVar], 6);
        assert_eq!(counts[&VariableRole::SpectralEstimate], 4);
        assert!(!VariableRole::RunningMean.is_learnt() && VariableRole::NormShift.is_learnt());
    }
}

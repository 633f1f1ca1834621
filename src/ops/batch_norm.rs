//! Batch-norm fused with the (Leaky)ReLU after it, for training on the CPU: one candle custom
//! op (one graph node, one multi-threaded pass forward and one backward) instead of the dozen
//! generic tensor ops candle-nn's `BatchNorm` and the activation compose, each a full pass over
//! memory with its own allocation and, on the way back, a zero tensor and an addition.
//!
//! Checked against candle's own operations in float64, forward and backward (tests below).

use std::mem::MaybeUninit;
use std::sync::{Arc, Mutex};

use candle_core::{
    CpuStorage, CustomOp1, CustomOp3, DType, Layout, Result, Shape, Storage, Tensor, Var,
};
use candle_nn::BatchNorm;
use rayon::prelude::*;

use super::cpu::cpu_slice;
use super::simd;
use super::ChannelMajor;

/// The non-linearity after a batch-norm: LeakyReLU with this negative slope (0 = ReLU).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slope(pub f32);

/// Training-mode batch-norm followed by (Leaky)ReLU, on a channel-major `(C, B, H, W)` tensor:
/// `y = act(γ · (x − mean) / sqrt(var + ε) + β)` with the batch's mean and (biased) variance
/// per channel. The batch statistics are left in `stats` for the running averages.
struct BatchNormAct {
    eps: f64,
    slope: Slope,
    /// (mean, biased variance) per channel of the last forward pass.
    stats: Arc<Mutex<(Vec<f32>, Vec<f32>)>>,
    /// (mean, 1/sqrt(var + ε)) per channel in f64, kept by the forward pass for the backward
    /// pass (which would otherwise read x twice more to compute them again).
    saved: Mutex<Vec<(f64, f64)>>,
}

/// Mean, biased variance and 1/sqrt(var + eps) of one channel's values. The variance as
/// E[x²] − mean² is safe in f64 at these sizes and spreads (relative error ~1e-16 · mean²/var).
fn channel_moments(x: &[f32], eps: f64) -> (f64, f64, f64) {
    let n = x.len() as f64;
    let (s, q) = simd::sum_and_squares(x);
    let mean = s / n;
    let var = (q / n - mean * mean).max(0.0);
    (mean, var, 1.0 / (var + eps).sqrt())
}

/// An f64 value as the sum of two f32s, so that `x − value` can be computed in f32 nearly as
/// exactly as in f64: `x − hi` is exact when x is near `hi`, and `lo` holds what `hi` missed.
#[derive(Clone, Copy)]
struct SplitF32 {
    hi: f32,
    lo: f32,
}

impl SplitF32 {
    fn new(v: f64) -> Self {
        let hi = v as f32;
        Self {
            hi,
            lo: (v - hi as f64) as f32,
        }
    }
}

fn channel_major<'a>(t: &'a Tensor, what: &str) -> Result<(candle_core::StorageRef<'a>, usize)> {
    if !t.is_contiguous() {
        candle_core::bail!("{what}: expected a contiguous tensor")
    }
    let (storage, layout) = t.storage_and_layout();
    Ok((storage, layout.start_offset()))
}

fn as_f32<'a>(storage: &'a Storage, what: &str) -> Result<&'a [f32]> {
    match storage {
        Storage::Cpu(cpu) => cpu_slice::<f32>(cpu, what),
        _ => candle_core::bail!("{what}: CPU kernel called on another device"),
    }
}

impl CustomOp3 for BatchNormAct {
    fn name(&self) -> &'static str {
        "logogan-batch-norm-act"
    }

    fn cpu_fwd(
        &self,
        x: &CpuStorage,
        xl: &Layout,
        gamma: &CpuStorage,
        gl: &Layout,
        beta: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        if !xl.is_contiguous() || !gl.is_contiguous() || !bl.is_contiguous() {
            candle_core::bail!("batch-norm: expected contiguous inputs")
        }
        let c = xl.dims()[0];
        let x = &cpu_slice::<f32>(x, "batch-norm")?[xl.start_offset()..];
        let gamma = &cpu_slice::<f32>(gamma, "batch-norm")?[gl.start_offset()..][..c];
        let beta = &cpu_slice::<f32>(beta, "batch-norm")?[bl.start_offset()..][..c];
        let per_channel = xl.shape().elem_count() / c;
        let slope = self.slope.0;
        let mut moments: Vec<(f64, f64, f64)> = Vec::new();
        let fill = |y: &mut [MaybeUninit<f32>]| {
            moments = y
                .par_chunks_mut(per_channel)
                .zip(x[..c * per_channel].par_chunks(per_channel))
                .enumerate()
                .map(|(ch, (y, x))| {
                    let (mean, var, inv_std) = channel_moments(x, self.eps);
                    // Centred first, so a channel whose mean dwarfs its spread keeps its precision
                    // (folding the mean into the shift would cancel in f32).
                    let m = SplitF32::new(mean);
                    let (scale, shift) = ((gamma[ch] as f64 * inv_std) as f32, beta[ch]);
                    simd::normalize_act(y, x, (m.hi, m.lo), (scale, shift), slope);
                    (mean, var, inv_std)
                })
                .collect();
        };
        // SAFETY: `normalize_act` writes every element of each of the c channels' chunks.
        let y = unsafe { simd::written_by(c * per_channel, fill) };
        *self.saved.lock().expect("poisoned") = moments.iter().map(|m| (m.0, m.2)).collect();
        *self.stats.lock().expect("poisoned") = moments
            .iter()
            .map(|&(mean, var, _)| (mean as f32, var as f32))
            .unzip();
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let learnt = gamma.track_op() || beta.track_op();
        let grad = grad.contiguous()?;
        let c = x.dim(0)?;
        let per_channel = x.elem_count() / c;
        let (xs, xo) = channel_major(x, "batch-norm backward")?;
        let (ys, yo) = channel_major(y, "batch-norm backward")?;
        let (gs, go) = channel_major(&grad, "batch-norm backward")?;
        let gamma = gamma.to_vec1::<f32>()?;
        let (xv, yv, gv) = (
            &as_f32(&xs, "batch-norm backward")?[xo..],
            &as_f32(&ys, "batch-norm backward")?[yo..],
            &as_f32(&gs, "batch-norm backward")?[go..],
        );
        let slope = self.slope.0;
        let saved = self.saved.lock().expect("poisoned").clone();
        if saved.len() != c {
            candle_core::bail!("batch-norm backward: no statistics from a forward pass")
        }
        let mut dparams: Vec<(f32, f32)> = Vec::new();
        let fill = |dx: &mut [MaybeUninit<f32>]| {
            dparams = dx
                .par_chunks_mut(per_channel)
                .enumerate()
                .map(|(ch, dx)| {
                    let range = ch * per_channel..(ch + 1) * per_channel;
                    let (x, y, g) = (&xv[range.clone()], &yv[range.clone()], &gv[range]);
                    let (mean, inv_std) = saved[ch];
                    // dβ = Σdz, dγ = Σdz·x̂ = inv_std · (Σdz·x − mean · Σdz).
                    let (sum_dz, sum_dz_x) = simd::grad_sums(x, y, g, slope);
                    let (dbeta, dgamma) = (sum_dz, inv_std * (sum_dz_x - mean * sum_dz));
                    // dx = γ·inv_std/n · (n·dz − dβ − x̂·dγ), an affine function of (dz, x):
                    // dx = a·dz + b·(x − mean) + c, the constants in f64, the pass in f32 (centred
                    // first, for the same reason as in the forward pass).
                    let n = per_channel as f64;
                    let k = gamma[ch] as f64 * inv_std / n;
                    let a = (k * n) as f32;
                    let b = (-k * dgamma * inv_std) as f32;
                    let c = (-k * dbeta) as f32;
                    let m = SplitF32::new(mean);
                    simd::batch_norm_input_grad(dx, x, y, g, (a, b, c), (m.hi, m.lo), slope);
                    (dgamma as f32, dbeta as f32)
                })
                .collect();
        };
        // SAFETY: `batch_norm_input_grad` writes every element of each channel's chunk.
        let dx = unsafe { simd::written_by(c * per_channel, fill) };
        drop((xs, ys, gs));
        let (dgamma, dbeta): (Vec<f32>, Vec<f32>) = dparams.into_iter().unzip();
        let device = x.device();
        // Parameters held constant (the discriminator's, in the generator's update) get none.
        let param_grad = |g: Vec<f32>| learnt.then(|| Tensor::from_vec(g, c, device)).transpose();
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), device)?),
            param_grad(dgamma)?,
            param_grad(dbeta)?,
        ))
    }
}

/// Training-mode batch-norm + (Leaky)ReLU of `x` (B, C, H, W) on the CPU. Returns the output
/// `(B, C, H, W)` (a view of channel-major memory) and the batch's per-channel mean and biased
/// variance (for the running statistics).
pub fn batch_norm_act_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: Slope,
) -> Result<(Tensor, Vec<f32>, Vec<f32>)> {
    let (y, mean, var) =
        batch_norm_act_train_channel_major(&x.transpose(0, 1)?, gamma, beta, eps, slope)?;
    Ok((y.transpose(0, 1)?, mean, var))
}

/// [`batch_norm_act_train`] on a channel-major `x` (C, B, H, W), output `(C, B, H, W)`: one
/// graph node, no copies when `x` is contiguous (as a GEMM convolution leaves it).
pub fn batch_norm_act_train_channel_major(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    slope: Slope,
) -> Result<(Tensor, Vec<f32>, Vec<f32>)> {
    let stats = Arc::new(Mutex::new((Vec::new(), Vec::new())));
    let op = BatchNormAct {
        eps,
        slope,
        stats: stats.clone(),
        saved: Mutex::new(Vec::new()),
    };
    let y = x.contiguous()?.apply_op3(gamma, beta, op)?;
    let (mean, var) = std::mem::take(&mut *stats.lock().expect("poisoned"));
    Ok((y, mean, var))
}

/// Whether a layer's parameters learn in this pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Params {
    /// Gradients are computed for them.
    Learnt,
    /// They are constants: gradients reach the input, none are computed for them (the
    /// discriminator's, in the generator's update).
    Constant,
}

/// Elements per task of the element-wise kernels below: enough to pay for a task, small enough
/// to share a small layer between the threads.
const ELEMENTWISE_CHUNK: usize = 1 << 14;

/// The forward pass of an element-wise op on the CPU: `kernel(y, x)` on chunks of a contiguous
/// f32 `x`, on every thread, into an output that is not zero-filled first.
///
/// # Safety
/// `kernel` must write every element of the `y` chunk it is given (as long as its `x` chunk).
unsafe fn map_elementwise(
    x: &CpuStorage,
    xl: &Layout,
    what: &str,
    kernel: impl Fn(&mut [MaybeUninit<f32>], &[f32]) + Send + Sync,
) -> Result<(CpuStorage, Shape)> {
    if !xl.is_contiguous() {
        candle_core::bail!("{what}: expected a contiguous input")
    }
    let n = xl.shape().elem_count();
    let x = &cpu_slice::<f32>(x, what)?[xl.start_offset()..][..n];
    // SAFETY: the chunks of y cover its n elements, and the caller's kernel writes each chunk.
    let y = unsafe {
        simd::written_by(n, |y| {
            y.par_chunks_mut(ELEMENTWISE_CHUNK)
                .zip(x.par_chunks(ELEMENTWISE_CHUNK))
                .for_each(|(y, x)| kernel(y, x))
        })
    };
    Ok((CpuStorage::F32(y), xl.shape().clone()))
}

/// The backward pass of an element-wise activation whose derivative is a function of its output
/// `y`: `kernel(dx, y, grad)` on chunks, on every thread, into a gradient shaped like `x`.
///
/// # Safety
/// `kernel` must write every element of the `dx` chunk it is given.
unsafe fn grad_from_output(
    x: &Tensor,
    y: &Tensor,
    grad: &Tensor,
    what: &str,
    kernel: impl Fn(&mut [MaybeUninit<f32>], &[f32], &[f32]) + Send + Sync,
) -> Result<Option<Tensor>> {
    let (y, grad) = (y.contiguous()?, grad.contiguous()?);
    let (ys, yo) = channel_major(&y, what)?;
    let (gs, go) = channel_major(&grad, what)?;
    let n = y.elem_count();
    let (yv, gv) = (
        &as_f32(&ys, what)?[yo..][..n],
        &as_f32(&gs, what)?[go..][..n],
    );
    // SAFETY: the chunks of dx cover its n elements, and the caller's kernel writes each chunk.
    let dx = unsafe {
        simd::written_by(n, |dx| {
            dx.par_chunks_mut(ELEMENTWISE_CHUNK)
                .zip(
                    yv.par_chunks(ELEMENTWISE_CHUNK)
                        .zip(gv.par_chunks(ELEMENTWISE_CHUNK)),
                )
                .for_each(|(dx, (y, g))| kernel(dx, y, g))
        })
    };
    drop((ys, gs));
    Ok(Some(Tensor::from_vec(dx, x.shape(), x.device())?))
}

/// (Leaky)ReLU alone, for the blocks without batch-norm (the classic DCGAN's first
/// discriminator layer): one node and one pass each way. candle-nn's `leaky_relu` composes five
/// ops (zeros, maximum, minimum, a product, a sum), and their backward passes build comparison
/// masks: 48 ms forward and backward on a 32 × 64 × 32 × 32 batch, against ≈ 3 ms here.
struct LeakyRelu {
    slope: Slope,
}

impl CustomOp1 for LeakyRelu {
    fn name(&self) -> &'static str {
        "logogan-leaky-relu"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let slope = self.slope.0;
        // SAFETY: `leaky_relu` writes every element of the chunk it is given.
        unsafe { map_elementwise(x, xl, "leaky-relu", |y, x| simd::leaky_relu(y, x, slope)) }
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        let slope = self.slope.0;
        // SAFETY: `leaky_relu_grad` writes every element of the chunk it is given.
        unsafe {
            grad_from_output(x, y, grad, "leaky-relu backward", |dx, y, g| {
                simd::leaky_relu_grad(dx, y, g, slope)
            })
        }
    }
}

/// (Leaky)ReLU with negative `slope` (0 = ReLU) as one node on the CPU; `None` elsewhere (the
/// caller composes it from candle's ops).
pub fn fused_leaky_relu(x: &Tensor, slope: f32) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    let x = x.contiguous()?;
    Ok(Some(x.apply_op1(LeakyRelu {
        slope: Slope(slope),
    })?))
}

/// tanh as one node on the CPU, for the generator's output layer. candle's `tanh` runs on one
/// thread and its backward pass is four element-wise operations, each a new tensor; this one is
/// one pass each way on every thread. The values are candle's: the same `f32::tanh` forward
/// (the same bits), and backward `g · (1 − y²)`, which is candle's `−(g · (y² − 1))` rounded
/// the same (only a zero's sign can differ: candle subtracts from a zero-filled buffer).
struct Tanh;

impl CustomOp1 for Tanh {
    fn name(&self) -> &'static str {
        "logogan-tanh"
    }

    fn cpu_fwd(&self, x: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let tanh = |y: &mut [MaybeUninit<f32>], x: &[f32]| {
            for (y, x) in y.iter_mut().zip(x) {
                *y = MaybeUninit::new(x.tanh());
            }
        };
        // SAFETY: `tanh` writes every element of the chunk it is given (the chunks of x and y
        // have the same length).
        unsafe { map_elementwise(x, xl, "tanh", tanh) }
    }

    fn bwd(&self, x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        // SAFETY: `tanh_grad` writes every element of the chunk it is given.
        unsafe { grad_from_output(x, y, grad, "tanh backward", simd::tanh_grad) }
    }
}

/// tanh as one node on the CPU; `None` elsewhere (the caller uses candle's `tanh`).
pub fn fused_tanh(x: &Tensor) -> Result<Option<Tensor>> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    Ok(Some(x.contiguous()?.apply_op1(Tanh)?))
}

/// candle-nn's batch-norm defaults, which this kernel must match: ε and the running averages'
/// momentum (PyTorch's 1e-5 and 0.1).
pub const BN_EPS: f64 = 1e-5;
pub const BN_MOMENTUM: f64 = 0.1;

/// Training-mode `norm` then (Leaky)ReLU with negative `slope` on channel-major `x`, through the
/// fused CPU kernel, updating `norm`'s running statistics as candle-nn's `BatchNorm` does
/// (PyTorch's rule: the unbiased variance enters the running average). `None` where the kernel
/// does not run (another device): the caller composes the same from candle-nn.
pub fn fused_batch_norm_act(
    norm: &BatchNorm,
    x: &ChannelMajor,
    slope: f32,
    params: Params,
) -> Result<Option<ChannelMajor>> {
    let x = x.tensor();
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return Ok(None);
    }
    let (gamma, beta) = norm
        .weight_and_bias()
        .ok_or_else(|| candle_core::Error::Msg("fused batch-norm needs γ and β".into()))?;
    let (gamma, beta) = match params {
        Params::Constant => (gamma.detach(), beta.detach()),
        Params::Learnt => (gamma.clone(), beta.clone()),
    };
    let (y, mean, var) =
        batch_norm_act_train_channel_major(x, &gamma, &beta, BN_EPS, Slope(slope))?;
    let n = (x.elem_count() / mean.len()) as f64;
    let m = BN_MOMENTUM;
    for (running, batch, correction) in [
        (norm.running_mean(), mean, 1.0),
        (norm.running_var(), var, n / (n - 1.0)),
    ] {
        let old = running.to_vec1::<f32>()?;
        let new: Vec<f32> = old
            .iter()
            .zip(&batch)
            .map(|(&r, &b)| ((r as f64) * (1.0 - m) + (b as f64) * correction * m) as f32)
            .collect();
        // The running statistics are variables of the VarMap: set them in place.
        Var::from_tensor(running)?.set(&Tensor::from_vec(new, batch.len(), running.device())?)?;
    }
    Ok(Some(ChannelMajor(y)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::test_support::max_rel;
    use candle_core::{Device, Var};

    /// Batch-norm + LeakyReLU from candle's ops, in f64: the reference.
    fn reference(x: &Tensor, gamma: &Tensor, beta: &Tensor, slope: f64) -> Tensor {
        let dims = [0usize, 2, 3];
        let mean = x.mean_keepdim(dims.as_slice()).unwrap();
        let centred = x.broadcast_sub(&mean).unwrap();
        let var = centred
            .sqr()
            .unwrap()
            .mean_keepdim(dims.as_slice())
            .unwrap();
        let xhat = centred
            .broadcast_div(&(var + 1e-5).unwrap().sqrt().unwrap())
            .unwrap();
        let z = xhat
            .broadcast_mul(&gamma.reshape((1, (), 1, 1)).unwrap())
            .unwrap()
            .broadcast_add(&beta.reshape((1, (), 1, 1)).unwrap())
            .unwrap();
        z.maximum(&(&z * slope).unwrap()).unwrap()
    }

    #[test]
    fn tanh_matches_candle_forward_and_backward() {
        let dev = Device::Cpu;
        // Large enough for several chunks on each thread, with saturated values at both ends.
        let x = (Tensor::randn(0f32, 1.0, (16, 3, 32, 32), &dev).unwrap() * 3.0).unwrap();
        let x = Var::from_tensor(&x).unwrap();
        let g = Tensor::randn(0f32, 1.0, (16, 3, 32, 32), &dev).unwrap();
        let fused = fused_tanh(x.as_tensor()).unwrap().unwrap();
        let reference = x.as_tensor().tanh().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(bits(flat(&fused)), bits(flat(&reference)), "forward");
        let gradient = |y: &Tensor| {
            let grads = (y * &g).unwrap().sum_all().unwrap().backward().unwrap();
            flat(grads.get(x.as_tensor()).unwrap())
        };
        // Equal as numbers (the sign of a zero may differ: candle subtracts from zero).
        let (d_fused, d_reference) = (gradient(&fused), gradient(&reference));
        assert_eq!(d_fused, d_reference, "backward");
        assert!(d_fused.iter().any(|&d| d != 0.0));
    }

    #[test]
    fn leaky_relu_matches_candle_nn_forward_and_backward() {
        let dev = Device::Cpu;
        for slope in [0.2f32, 0.0] {
            let x =
                Var::from_tensor(&Tensor::randn(0f32, 1.0, (8, 3, 9, 7), &dev).unwrap()).unwrap();
            let g = Tensor::randn(0f32, 1.0, (8, 3, 9, 7), &dev).unwrap();
            let fused = fused_leaky_relu(x.as_tensor(), slope).unwrap().unwrap();
            let reference = candle_nn::ops::leaky_relu(x.as_tensor(), slope as f64).unwrap();
            let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            assert_eq!(flat(&fused), flat(&reference), "forward, slope {slope}");
            let d_fused = (&fused * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let d_reference = (&reference * &g)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            assert_eq!(
                flat(d_fused.get(&x).unwrap()),
                flat(d_reference.get(&x).unwrap()),
                "backward, slope {slope}"
            );
        }
    }

    #[test]
    fn batch_norm_act_matches_candle_ops_in_f64() {
        let dev = Device::Cpu;
        // Channel sizes that are and are not multiples of the 8 summation lanes, and channels
        // whose mean is 15× and 1 000× their spread (neither the variance as E[x²] − mean² nor the
        // f32 passes may lose it).
        for (shape, slope, mean) in [
            ((4, 3, 5, 5), 0.2, 0.5),
            ((2, 6, 4, 4), 0.0, 0.5),
            ((3, 2, 1, 7), 0.2, 0.5),
            ((8, 4, 8, 8), 0.2, 30.0),
            ((4, 2, 6, 6), 0.2, 2000.0),
        ] {
            // Drawn in f64 and rounded to f32 once, so the f64 reference sees exactly the
            // kernel's inputs and the comparison measures the kernel's arithmetic alone.
            let x64 = Tensor::randn(mean, 2.0, shape, &dev)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .to_dtype(DType::F64)
                .unwrap();
            let c = shape.1;
            let g64 = Tensor::randn(1f64, 0.3, c, &dev).unwrap();
            let b64 = Tensor::randn(0f64, 0.3, c, &dev).unwrap();
            let up = Tensor::randn(0f64, 1.0, shape, &dev).unwrap();
            let (x, g, b) = (
                Var::from_tensor(&x64).unwrap(),
                Var::from_tensor(&g64).unwrap(),
                Var::from_tensor(&b64).unwrap(),
            );
            let y64 = reference(&x, &g, &b, slope);
            let grads64 = (&y64 * &up).unwrap().sum_all().unwrap().backward().unwrap();

            let f32v = |t: &Tensor| Var::from_tensor(&t.to_dtype(DType::F32).unwrap()).unwrap();
            let (x32, g32, b32) = (f32v(&x64), f32v(&g64), f32v(&b64));
            let (y, mean, var) =
                batch_norm_act_train(&x32, &g32, &b32, 1e-5, Slope(slope as f32)).unwrap();
            let up32 = up.to_dtype(DType::F32).unwrap();
            let grads = (&y * &up32).unwrap().sum_all().unwrap().backward().unwrap();
            let label = format!("{shape:?} slope {slope}");
            assert!(max_rel(&y, &y64) < 1e-5, "forward {label}");
            for (ours, theirs, what) in [
                (grads.get(&x32).unwrap(), grads64.get(&x).unwrap(), "dx"),
                (grads.get(&g32).unwrap(), grads64.get(&g).unwrap(), "dgamma"),
                (grads.get(&b32).unwrap(), grads64.get(&b).unwrap(), "dbeta"),
            ] {
                let e = max_rel(ours, theirs);
                assert!(e < 1e-5, "{what} {label}: {e:e}");
            }
            let want_mean = x64
                .mean_keepdim([0usize, 2, 3].as_slice())
                .unwrap()
                .flatten_all()
                .unwrap();
            let got_mean = Tensor::new(mean.as_slice(), &dev).unwrap();
            assert!(max_rel(&got_mean, &want_mean) < 1e-5, "mean {label}");
            let want_var = x64
                .broadcast_sub(&x64.mean_keepdim([0usize, 2, 3].as_slice()).unwrap())
                .unwrap()
                .sqr()
                .unwrap()
                .mean_keepdim([0usize, 2, 3].as_slice())
                .unwrap()
                .flatten_all()
                .unwrap();
            let got_var = Tensor::new(var.as_slice(), &dev).unwrap();
            assert!(max_rel(&got_var, &want_var) < 1e-5, "variance {label}");
        }
    }
}

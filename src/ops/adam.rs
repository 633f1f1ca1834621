//! Adam's update in place on the CPU: the optimiser's arithmetic (see `crate::train::adam`) in
//! three multi-threaded passes that overwrite the moments and the parameter, instead of the
//! five fresh tensors per parameter and step that the same formula written in tensor ops
//! allocates.

use candle_core::{CpuStorage, InplaceOp2, InplaceOp3, Layout, Result, Tensor};
use rayon::prelude::*;

/// `moment ← β·moment + (1 − β)·g` (or `g²`), in place, on the CPU.
struct MomentUpdate {
    beta: f32,
    square: bool,
}

/// `param ← param − step_size · m / (sqrt(v) / sqrt_bias2 + eps)`, in place, on the CPU.
struct ApplyUpdate {
    step_size: f32,
    sqrt_bias2: f32,
    eps: f32,
}

/// The f32 slice of a contiguous CPU tensor operand.
fn f32_slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("fused Adam: expected contiguous tensors")
    };
    Ok(&s.as_slice::<f32>()?[start..end])
}

fn f32_slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    let Some((start, end)) = l.contiguous_offsets() else {
        candle_core::bail!("fused Adam: expected contiguous tensors")
    };
    match s {
        CpuStorage::F32(v) => Ok(&mut v[start..end]),
        _ => candle_core::bail!("fused Adam: expected f32 tensors"),
    }
}

const CHUNK: usize = 1 << 14;

impl InplaceOp2 for MomentUpdate {
    fn name(&self) -> &'static str {
        "logogan-adam-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (moment, g) = (f32_slice_mut(s1, l1)?, f32_slice(s2, l2)?);
        let (beta, rest) = (self.beta, 1.0 - self.beta);
        let square = self.square;
        moment
            .par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(m, g)| {
                for (m, &g) in m.iter_mut().zip(g) {
                    *m = *m * beta + if square { g * g } else { g } * rest;
                }
            });
        Ok(())
    }
}

impl InplaceOp3 for ApplyUpdate {
    fn name(&self) -> &'static str {
        "logogan-adam-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (param, m, v) = (
            f32_slice_mut(s1, l1)?,
            f32_slice(s2, l2)?,
            f32_slice(s3, l3)?,
        );
        let (step_size, sqrt_bias2, eps) = (self.step_size, self.sqrt_bias2, self.eps);
        param
            .par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(p, (m, v))| {
                for ((p, &m), &v) in p.iter_mut().zip(m).zip(v) {
                    *p -= m / (v.sqrt() / sqrt_bias2 + eps) * step_size;
                }
            });
        Ok(())
    }
}

/// The scalars of one Adam step: β₁, β₂, ε and the two bias corrections folded in.
#[derive(Debug, Clone, Copy)]
pub struct AdamStep {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// lr / (1 − β₁ᵗ)
    pub step_size: f64,
    /// √(1 − β₂ᵗ)
    pub sqrt_bias2: f64,
}

/// One Adam update of `param` with moments `m`, `v` from its gradient `g`, in three in-place
/// passes over contiguous f32 CPU tensors and no temporaries (the same arithmetic as the
/// readable update in `crate::train::adam`, which allocates five tensors per parameter).
pub fn adam_update_in_place(
    param: &Tensor,
    m: &Tensor,
    v: &Tensor,
    g: &Tensor,
    step: AdamStep,
) -> Result<()> {
    for (name, t) in [("parameter", param), ("m", m), ("v", v), ("gradient", g)] {
        if !t.is_contiguous() {
            candle_core::bail!("fused Adam: the {name} is not contiguous")
        }
    }
    m.inplace_op2(
        g,
        &MomentUpdate {
            beta: step.beta1 as f32,
            square: false,
        },
    )?;
    v.inplace_op2(
        g,
        &MomentUpdate {
            beta: step.beta2 as f32,
            square: true,
        },
    )?;
    param.inplace_op3(
        m,
        v,
        &ApplyUpdate {
            step_size: step.step_size as f32,
            sqrt_bias2: step.sqrt_bias2 as f32,
            eps: step.eps as f32,
        },
    )
}

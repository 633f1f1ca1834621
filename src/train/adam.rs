//! Adam, as in PyTorch's `torch.optim.Adam` (no weight decay), with its state visible so a
//! checkpoint can save and restore it exactly. (candle-nn's `AdamW` keeps its moments private.)
//!
//! For every parameter θ with gradient g, at step t:
//!
//! ```text
//! m ← β₁·m + (1−β₁)·g          first moment: a running mean of gradients
//! v ← β₂·v + (1−β₂)·g²         second moment: a running mean of squared gradients
//! θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε)
//! ```
//!
//! DCGAN uses lr = 2e-4 and β₁ = 0.5 (instead of 0.9): a shorter memory of past gradients keeps
//! the two players from overshooting each other.

use std::collections::HashMap;

use candle_core::{backprop::GradStore, DType, Result, Tensor, Var};
use candle_nn::VarMap;

use crate::model::layers::VariableRole;
use crate::ops::{adam_update_in_place, AdamStep};

/// Adam's hyper-parameters.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdamConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for AdamConfig {
    /// The DCGAN paper's settings.
    fn default() -> Self {
        Self {
            lr: 2e-4,
            beta1: 0.5,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

struct Slot {
    name: String,
    param: Var,
    m: Var,
    v: Var,
}

/// The optimiser for one network.
pub struct Adam {
    slots: Vec<Slot>,
    step: u64,
    pub config: AdamConfig,
}

impl Adam {
    /// Optimise every learnable variable of `varmap` (batch-norm running statistics excluded).
    pub fn new(varmap: &VarMap, config: AdamConfig) -> Result<Self> {
        let data = varmap.data().lock().expect("poisoned");
        let mut names: Vec<&String> = data
            .keys()
            .filter(|k| VariableRole::of(k).is_learnt())
            .collect();
        names.sort();
        let slots = names
            .into_iter()
            .map(|name| {
                let param = data[name].clone();
                let zeros = || Var::zeros(param.shape(), DType::F32, param.device());
                Ok(Slot {
                    name: name.clone(),
                    m: zeros()?,
                    v: zeros()?,
                    param,
                })
            })
            .collect::<Result<_>>()?;
        Ok(Self {
            slots,
            step: 0,
            config,
        })
    }

    /// Steps taken so far.
    pub fn step_count(&self) -> u64 {
        self.step
    }

    /// One update from the gradients in `grads`. Parameters without a gradient are left alone.
    // ANCHOR: adam_step
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.step += 1;
        let AdamConfig {
            lr,
            beta1,
            beta2,
            eps,
        } = self.config;
        let t = self.step as i32;
        let step_size = lr / (1.0 - beta1.powi(t));
        let sqrt_bias2 = (1.0 - beta2.powi(t)).sqrt();
        for slot in &self.slots {
            let Some(g) = grads.get(slot.param.as_tensor()) else {
                continue;
            };
            if g.device().is_cpu() && g.dtype() == DType::F32 {
                // Speed: the same arithmetic in three in-place passes, without temporaries.
                let step = AdamStep {
                    beta1,
                    beta2,
                    eps,
                    step_size,
                    sqrt_bias2,
                };
                let (p, m, v) = (
                    slot.param.as_tensor(),
                    slot.m.as_tensor(),
                    slot.v.as_tensor(),
                );
                adam_update_in_place(p, m, v, &g.contiguous()?, step)?;
                continue;
            }
            let m = ((slot.m.as_tensor() * beta1)? + (g * (1.0 - beta1))?)?;
            let v = ((slot.v.as_tensor() * beta2)? + (g.sqr()? * (1.0 - beta2))?)?;
            let denom = ((v.sqrt()? / sqrt_bias2)? + eps)?;
            let update = ((&m / denom)? * step_size)?;
            slot.param.set(&(slot.param.as_tensor() - update)?)?;
            slot.m.set(&m)?;
            slot.v.set(&v)?;
        }
        Ok(())
    }
    // ANCHOR_END: adam_step

    /// The moments, named `m.<param>` and `v.<param>`, for a checkpoint.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut out = HashMap::with_capacity(2 * self.slots.len());
        for slot in &self.slots {
            out.insert(format!("m.{}", slot.name), slot.m.as_tensor().clone());
            out.insert(format!("v.{}", slot.name), slot.v.as_tensor().clone());
        }
        out
    }

    /// Restore moments saved by [`Self::state`] and the step count.
    pub fn load_state(&mut self, state: &HashMap<String, Tensor>, step: u64) -> Result<()> {
        for slot in &self.slots {
            for (kind, var) in [("m", &slot.m), ("v", &slot.v)] {
                let key = format!("{kind}.{}", slot.name);
                let saved = state.get(&key).ok_or_else(|| {
                    candle_core::Error::Msg(format!("optimiser state `{key}` is missing"))
                })?;
                if saved.dims() != var.dims() || saved.dtype() != var.dtype() {
                    return Err(candle_core::Error::Msg(format!(
                        "optimiser state `{key}` is {:?} {:?}, its parameter is {:?} {:?}",
                        saved.dtype(),
                        saved.dims(),
                        var.dtype(),
                        var.dims()
                    )));
                }
                var.set(&saved.to_device(var.device())?)?;
            }
        }
        self.step = step;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;
    use candle_nn::{Init, VarBuilder};

    #[test]
    fn first_steps_match_the_closed_form() {
        // With a constant gradient g, Adam's first step moves every parameter by lr·sign(g)
        // (bias correction makes m̂ = g and v̂ = g²), whatever β₁ and β₂ are.
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let w = vb.get_with_hints(3, "w", Init::Const(1.0)).unwrap();
        let mut adam = Adam::new(&varmap, AdamConfig::default()).unwrap();
        let loss = (&w * &Tensor::new(&[2f32, -3., 0.5], &Device::Cpu).unwrap())
            .unwrap()
            .sum_all()
            .unwrap();
        adam.step(&loss.backward().unwrap()).unwrap();
        let after = w.to_vec1::<f32>().unwrap();
        let expected = [1.0 - 2e-4, 1.0 + 2e-4, 1.0 - 2e-4];
        for (a, e) in after.iter().zip(expected) {
            assert!((a - e).abs() < 1e-7, "{after:?}");
        }
        assert_eq!(adam.step_count(), 1);
    }

    #[test]
    fn matches_pytorch_on_a_quadratic() {
        // PyTorch 2.15.0 (CPU, float32):
        // ```python
        // w = torch.tensor([1.0, -2.0], requires_grad=True)
        // opt = torch.optim.Adam([w], lr=0.1, betas=(0.5, 0.999))
        // for _ in range(3):
        //     opt.zero_grad(); (w**2).sum().backward(); opt.step()
        // print([repr(v) for v in w.tolist()])  # ['0.7069713473320007', '-1.7032160758972168']
        // ```
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let w = vb.get_with_hints(2, "w", Init::Const(0.0)).unwrap();
        varmap.data().lock().unwrap()["w"]
            .set(&Tensor::new(&[1f32, -2.], &Device::Cpu).unwrap())
            .unwrap();
        let mut adam = Adam::new(
            &varmap,
            AdamConfig {
                lr: 0.1,
                ..AdamConfig::default()
            },
        )
        .unwrap();
        for _ in 0..3 {
            let loss = w.sqr().unwrap().sum_all().unwrap();
            adam.step(&loss.backward().unwrap()).unwrap();
        }
        let got = w.to_vec1::<f32>().unwrap();
        #[allow(clippy::excessive_precision)]
        let torch = [0.7069713473320007f32, -1.7032160758972168];
        for (g, t) in got.iter().zip(torch) {
            assert!((g - t).abs() <= 1e-5 * t.abs(), "{got:?} vs {torch:?}");
        }
    }

    #[test]
    fn state_round_trips() {
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
        let w = vb.get_with_hints(2, "w", Init::Const(1.0)).unwrap();
        let _stat = vb
            .get_with_hints(2, "norm.running_mean", Init::Const(0.0))
            .unwrap();
        let mut a = Adam::new(&varmap, AdamConfig::default()).unwrap();
        assert_eq!(a.state().len(), 2, "running statistics are not optimised");
        a.step(&w.sqr().unwrap().sum_all().unwrap().backward().unwrap())
            .unwrap();
        let mut b = Adam::new(&varmap, AdamConfig::default()).unwrap();
        b.load_state(&a.state(), a.step_count()).unwrap();
        assert_eq!(b.step_count(), 1);
        assert_eq!(
            b.state()["v.w"].to_vec1::<f32>().unwrap(),
            a.state()["v.w"].to_vec1::<f32>().unwrap()
        );
        let err = b.load_state(&HashMap::new(), 1).unwrap_err().to_string();
        assert!(err.contains("m.w"), "{err}");
    }
}

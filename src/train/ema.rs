//! An exponential moving average (EMA) of the generator's weights (Karras et al. 2018; Yazıcı et
//! al. 2019): after every generator update, `ema ← decay·ema + (1 − decay)·weights`. The average
//! smooths out the step-to-step wobble of the game, so samples drawn from it are steadier and
//! usually better than those of the generator being trained. It never feeds back into training.

use candle_core::{Device, Tensor};
use candle_nn::VarMap;

use crate::error::Result;
use crate::model::layers::{new_varmap, VariableRole};
use crate::model::{Generator, GeneratorConfig};

/// The averaged copy of a generator.
pub struct EmaGenerator {
    pub generator: Generator,
    pub vars: VarMap,
    pub decay: f64,
}

impl EmaGenerator {
    /// A copy of the generator whose variables are `source`, starting equal to it.
    pub fn new(
        config: &GeneratorConfig,
        source: &VarMap,
        decay: f64,
        device: &Device,
    ) -> Result<Self> {
        let (vars, vb) = new_varmap(device);
        let generator = Generator::new(config, vb)?;
        let ema = Self {
            generator,
            vars,
            decay,
        };
        ema.copy_from(source)?;
        Ok(ema)
    }

    fn pairs(&self, source: &VarMap) -> Vec<(String, candle_core::Var, Tensor)> {
        let src = source.data().lock().expect("poisoned");
        let mut names: Vec<&String> = src.keys().collect();
        names.sort();
        let own = self.vars.data().lock().expect("poisoned");
        names
            .into_iter()
            .map(|n| (n.clone(), own[n].clone(), src[n].as_tensor().clone()))
            .collect()
    }

    /// Make the average equal to `source` (at the start of a run).
    pub fn copy_from(&self, source: &VarMap) -> Result<()> {
        for (_, own, weights) in self.pairs(source) {
            own.set(&weights.copy()?)?;
        }
        Ok(())
    }

    // ANCHOR: ema_update
    /// One update after a generator step. Batch-norm running statistics are copied, not averaged:
    /// they describe the current weights' activations.
    pub fn update(&self, source: &VarMap) -> Result<()> {
        for (name, own, weights) in self.pairs(source) {
            let next = if !VariableRole::of(&name).is_learnt() {
                weights.copy()?
            } else {
                ((own.as_tensor() * self.decay)? + (weights * (1.0 - self.decay))?)?
            };
            own.set(&next)?;
        }
        Ok(())
    }
    // ANCHOR_END: ema_update
}

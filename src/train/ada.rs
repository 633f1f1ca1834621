//! Adaptive augmentation strength (ADA, Karras et al. 2020, "Training Generative Adversarial
//! Networks with Limited Data").
//!
//! Fixed DiffAugment applies every transform to every image D sees, from the first step on.
//! Early in a run, when D is far from memorising the logos, that only makes its task (and so
//! G's lesson) harder: chapter 6 measured it at a fifth of the budget. ADA augments only as much
//! as D needs: each transform is applied to an image with probability p, and p follows an
//! *overfitting heuristic*, the mean sign of D's raw scores on the (augmented) real images,
//!
//! ```text
//! r = E[sign(D(x))]   over the last 4 steps' real batches
//! ```
//!
//! r is 0 while D cannot tell real from fake and 1 once it calls every real image real, which it
//! does when it has learnt the training images by heart. Every 4 steps p moves by a fixed amount
//! towards more augmentation when r is above the target (0.6 in the paper) and towards less when
//! it is below, so that 0 → 1 takes [`ADA_KIMG`] thousand images.
//!
//! The state (p and the signs of an unfinished group of steps) is saved in every checkpoint, so
//! a resumed run continues exactly.

use candle_core::Tensor;

use crate::error::Result;

/// Steps whose real-image signs are averaged before p moves (the paper's 4).
pub const ADJUST_EVERY: usize = 4;

/// Thousands of images for p to move from 0 to 1: 100 is the later StyleGAN papers' setting
/// (the first used 500, for budgets of tens of thousands of kimg; the laptop preset shows 1 548).
pub const ADA_KIMG: f64 = 100.0;

/// What a checkpoint keeps of the adaptation.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaState {
    /// The probability of each transform for the next step.
    pub p: f64,
    /// Sum of the mean signs of the steps since p last moved, and how many there were.
    pub sign_sum: f64,
    pub signs: usize,
}

impl AdaState {
    /// Whether a state read from a file could have been written by [`AdaptiveAugment`]: p in
    /// [0, 1], fewer pending signs than a group, and their sum within ±their count.
    pub fn check(&self) -> std::result::Result<(), String> {
        if !(0.0..=1.0).contains(&self.p) {
            return Err(format!("p is {}, not a probability", self.p));
        }
        if self.signs >= ADJUST_EVERY {
            return Err(format!(
                "{} pending signs, but p moves every {ADJUST_EVERY}",
                self.signs
            ));
        }
        if self.sign_sum.is_nan() || self.sign_sum.abs() > self.signs as f64 {
            return Err(format!(
                "the sum of {} signs is {}",
                self.signs, self.sign_sum
            ));
        }
        Ok(())
    }
}

/// One value of p and the heuristic that moved it there: a row of `augment.csv`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AdaAdjustment {
    /// The step after which p moved.
    pub step: u64,
    /// The mean sign of D's scores on real images over the last [`ADJUST_EVERY`] steps.
    pub overfitting: f64,
    /// p from the next step on.
    pub p: f64,
}

/// The adaptation as training runs: p, and the signs of the steps since it last moved, still
/// on the device (they are read back once every [`ADJUST_EVERY`] steps, not every step).
pub struct AdaptiveAugment {
    target: f64,
    state: AdaState,
    pending: Vec<Tensor>,
}

impl AdaptiveAugment {
    /// p = 0 (no augmentation) at the start of a run.
    pub fn new(target: f64) -> Self {
        Self::restore(
            target,
            AdaState {
                p: 0.0,
                sign_sum: 0.0,
                signs: 0,
            },
        )
    }

    /// Continue from a checkpoint's state.
    pub fn restore(target: f64, state: AdaState) -> Self {
        Self {
            target,
            state,
            pending: Vec::new(),
        }
    }

    /// The probability of each transform for the next step.
    pub fn probability(&self) -> f64 {
        self.state.p
    }

    // ANCHOR: ada_rule
    /// Record one step: `real_sign` is the mean sign of D's scores on that step's real batch (a
    /// scalar tensor), `batch` its size. Every [`ADJUST_EVERY`] steps p moves, and the move is
    /// returned (for `augment.csv`), with `step` the step just done.
    pub fn observe(
        &mut self,
        real_sign: &Tensor,
        batch: usize,
        step: u64,
    ) -> Result<Option<AdaAdjustment>> {
        self.pending.push(real_sign.clone());
        if self.state.signs + self.pending.len() < ADJUST_EVERY {
            return Ok(None);
        }
        self.settle()?;
        let overfitting = self.state.sign_sum / self.state.signs as f64;
        // The paper's rule: a fixed step, its sign from the heuristic against the target.
        let images = (batch * self.state.signs) as f64;
        let step_size = images / (ADA_KIMG * 1000.0);
        let direction = (overfitting - self.target).signum();
        self.state.p = (self.state.p + direction * step_size).clamp(0.0, 1.0);
        self.state.sign_sum = 0.0;
        self.state.signs = 0;
        Ok(Some(AdaAdjustment {
            step,
            overfitting,
            p: self.state.p,
        }))
    }
    // ANCHOR_END: ada_rule

    /// Read the pending signs back into the state.
    fn settle(&mut self) -> Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let sum = Tensor::stack(&self.pending, 0)?
            .to_dtype(candle_core::DType::F64)?
            .sum_all()?
            .to_scalar::<f64>()?;
        self.state.sign_sum += sum;
        self.state.signs += self.pending.len();
        self.pending.clear();
        Ok(())
    }

    /// The state to save in a checkpoint (reads back the pending signs).
    pub fn state(&mut self) -> Result<AdaState> {
        self.settle()?;
        Ok(self.state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn sign(v: f32) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    #[test]
    fn p_rises_while_d_calls_reals_real_and_falls_when_it_does_not() {
        let mut ada = AdaptiveAugment::new(0.6);
        let batch = 64;
        let step = (batch * ADJUST_EVERY) as f64 / (ADA_KIMG * 1000.0);
        // Three steps: nothing moves yet.
        for s in 1..ADJUST_EVERY as u64 {
            assert_eq!(ada.observe(&sign(1.0), batch, s).unwrap(), None);
        }
        // The fourth: r = (1 + 1 + 1 + 0.2) / 4 = 0.8 > 0.6, so p moves up by one step.
        let moved = ada.observe(&sign(0.2), batch, 4).unwrap().unwrap();
        assert_eq!(moved.step, 4);
        assert!((moved.overfitting - 0.8).abs() < 1e-6, "{moved:?}");
        assert!((moved.p - step).abs() < 1e-12, "{moved:?}");
        // Below the target it moves down, and never below 0.
        for s in 5..=12 {
            ada.observe(&sign(0.0), batch, s).unwrap();
        }
        assert_eq!(ada.probability(), 0.0);
        // Far above, for long enough, it reaches 1 and stays there.
        let needed = (1.0 / step).ceil() as u64 * ADJUST_EVERY as u64;
        for s in 13..13 + needed + 8 {
            ada.observe(&sign(1.0), batch, s).unwrap();
        }
        assert_eq!(ada.probability(), 1.0);
    }

    #[test]
    fn a_saved_state_continues_exactly() {
        let signs = [0.9f32, 0.7, 0.3, 1.0, 0.8, 0.6, 0.2, 0.9, 1.0, 0.5];
        let mut straight = AdaptiveAugment::new(0.6);
        let mut moves = Vec::new();
        for (s, &v) in signs.iter().enumerate() {
            moves.extend(straight.observe(&sign(v), 32, s as u64 + 1).unwrap());
        }
        // The same, saved after step 6 (mid-group: two signs pending) and restored.
        let mut first = AdaptiveAugment::new(0.6);
        let mut resumed_moves = Vec::new();
        for (s, &v) in signs[..6].iter().enumerate() {
            resumed_moves.extend(first.observe(&sign(v), 32, s as u64 + 1).unwrap());
        }
        let saved: AdaState =
            serde_json::from_str(&serde_json::to_string(&first.state().unwrap()).unwrap()).unwrap();
        assert_eq!(saved.signs, 2);
        let mut second = AdaptiveAugment::restore(0.6, saved);
        for (s, &v) in signs.iter().enumerate().skip(6) {
            resumed_moves.extend(second.observe(&sign(v), 32, s as u64 + 1).unwrap());
        }
        assert_eq!(moves, resumed_moves);
        assert_eq!(moves.len(), 2);
        assert_eq!(
            straight.state().unwrap(),
            second.state().unwrap(),
            "the same p and the same pending signs"
        );
    }
}

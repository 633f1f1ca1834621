//! Chapter 5: training. The loss, the optimiser, the loop, checkpoints and the run's files.

pub mod ada;
pub mod adam;
pub mod charts;
pub mod checkpoint;
pub mod config;
pub mod diff_augment;
pub mod ema;
pub mod generate;
pub mod loss;
pub mod loss_log;
pub mod pack;
pub mod run;
pub mod session;
pub mod step;
pub mod trainer;

pub use config::{Preset, TrainConfig, TrainOptions};
pub use run::{RunDir, RunRecord};
pub use step::{GanStep, StepStats};
pub use trainer::{TrainEvent, Trainer};

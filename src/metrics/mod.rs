//! Chapter 6: judging a generator with numbers.
//!
//! A GAN's losses say who is winning the game, not how good the pictures are. Quality metrics
//! compare *sets* of images through feature vectors seen by a contrastive encoder ([`encoder`]):
//! [`distances`] holds the measures (KID, Fréchet distance, precision/recall, density/coverage,
//! memorisation), [`two_sample`] a classifier that learns to tell fakes from real logos. Each
//! score is read beside its floor: held-out logos, which no model trained on, scored the same way.
//! [`calibrate`] proves the judge on sets whose right order is known.

pub mod calibrate;
pub mod calibration_sets;
pub mod distances;
pub mod encoder;
pub mod families;
pub mod floor_anatomy;
pub mod score;
pub mod two_sample;
pub mod views;

pub use calibrate::{
    calibrate, place_on_ladder, Calibration, CalibrationConfig, LadderPlace, Rung,
};
pub use distances::{
    density_coverage, frechet_distance, kernel_inception_distance, memorisation, precision_recall,
    DensityCoverage, Features, Kid, Memorisation, PrecisionRecall,
};
pub use encoder::{EncoderConfig, FeatureEncoder};
pub use score::{
    sample_generator, score_image_files, score_images, score_run, score_run_trained_generator,
    RealReference, ScoreConfig, ScoreReport, Scores,
};
pub use two_sample::{two_sample_test, TwoSample, TwoSampleConfig};

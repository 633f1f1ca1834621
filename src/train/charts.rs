//! The pictures of a finished (or interrupted) run, made from its files alone: loss chart,
//! discriminator-output chart, progress GIF, and in a run that adapts its augmentation the
//! strength chart. `chapter-05 charts runs/<name>` re-makes them.

use crate::error::{Error, Result};
use crate::viz::gif::save_gif;
use crate::viz::plot::{save_chart, smooth, LineChart, Series, BLUE, GREEN, ORANGE, RED};

use super::ada::AdaAdjustment;
use super::loss_log::{read_metrics, StepMetrics};
use super::run::RunDir;

/// What [`draw_charts`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartFiles {
    pub steps: usize,
    pub frames: usize,
    /// Moves of adaptive augmentation's strength drawn (0 in a run that does not adapt it).
    pub augment_moves: usize,
}

/// One metric of every step, smoothed (EMA 0.9) so trends show through the step-to-step noise.
fn smoothed(rows: &[StepMetrics], metric: fn(&StepMetrics) -> f32) -> Vec<(f64, f64)> {
    smooth(
        &rows
            .iter()
            .map(|m| (m.step as f64, metric(m) as f64))
            .collect::<Vec<_>>(),
        0.9,
    )
}

/// The loss chart of a run's metrics: per-step values smoothed (EMA 0.9) so trends show.
pub fn loss_chart(rows: &[StepMetrics]) -> LineChart {
    LineChart {
        title: "Losses (smoothed)".into(),
        x_label: "step".into(),
        y_label: "binary cross-entropy".into(),
        y_range: None,
        series: vec![
            Series {
                label: "discriminator".into(),
                points: smoothed(rows, |m| m.d_loss),
                colour: BLUE,
            },
            Series {
                label: "generator".into(),
                points: smoothed(rows, |m| m.g_loss),
                colour: ORANGE,
            },
        ],
    }
}

/// The chart of the discriminator's average verdicts: D(x) on real images, D(G(z)) on fakes.
pub fn discriminator_chart(rows: &[StepMetrics]) -> LineChart {
    LineChart {
        title: "Discriminator outputs (smoothed)".into(),
        x_label: "step".into(),
        y_label: "mean probability of \"real\"".into(),
        y_range: Some((0.0, 1.0)),
        series: vec![
            Series {
                label: "D(x), real images".into(),
                points: smoothed(rows, |m| m.d_real),
                colour: GREEN,
            },
            Series {
                label: "D(G(z)), fakes".into(),
                points: smoothed(rows, |m| m.d_fake),
                colour: RED,
            },
        ],
    }
}

/// Adaptive augmentation (`augment.csv`): the strength p, and the measure that moved it (the
/// mean sign of D's scores on real images, smoothed) against its target.
pub fn augment_chart(rows: &[AdaAdjustment], target: f64) -> LineChart {
    let (first, last) = match (rows.first(), rows.last()) {
        (Some(f), Some(l)) => (f.step as f64, l.step as f64),
        _ => (0.0, 1.0),
    };
    LineChart {
        title: "Adaptive augmentation".into(),
        x_label: "step".into(),
        y_label: "probability / mean sign".into(),
        y_range: Some((-0.2, 1.0)),
        series: vec![
            Series {
                label: "p, each transform's probability".into(),
                points: rows.iter().map(|r| (r.step as f64, r.p)).collect(),
                colour: BLUE,
            },
            Series {
                label: "mean sign of D(x) (smoothed)".into(),
                points: smooth(
                    &rows
                        .iter()
                        .map(|r| (r.step as f64, r.overfitting.max(-0.2)))
                        .collect::<Vec<_>>(),
                    // One point per 4 steps: smoothed over about the last 200 steps.
                    0.98,
                ),
                colour: GREEN,
            },
            Series {
                label: format!("target {target}"),
                points: vec![(first, target), (last, target)],
                colour: RED,
            },
        ],
    }
}

/// Write `loss.{png,svg}`, `d_outputs.{png,svg}` and `progress.gif` into the run folder, and
/// `augment.{png,svg}` for a run that adapts its augmentation (it has an `augment.csv`).
pub fn draw_charts(run: &RunDir) -> Result<ChartFiles> {
    let rows = read_metrics(&run.metrics())?;
    if rows.is_empty() {
        return Err(Error::bad_input(
            run.metrics(),
            "no steps recorded yet: train first",
        ));
    }
    save_chart(&run.root, "loss", &loss_chart(&rows))?;
    save_chart(&run.root, "d_outputs", &discriminator_chart(&rows))?;
    let mut augment_moves = 0;
    if run.augment().exists() {
        let moves: Vec<AdaAdjustment> = crate::fsutil::read_csv(&run.augment())?;
        let target = super::run::RunRecord::load(run)?
            .config
            .ada_target
            .ok_or_else(|| {
                Error::bad_input(
                    run.augment(),
                    "the run's config.json sets no ada_target: this file is not the run's",
                )
            })?;
        if !moves.is_empty() {
            save_chart(&run.root, "augment", &augment_chart(&moves, target))?;
        }
        augment_moves = moves.len();
    }
    let mut grids: Vec<_> = std::fs::read_dir(run.samples())
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "png"))
                .collect()
        })
        .unwrap_or_default();
    grids.sort();
    let frames = grids
        .iter()
        .map(|p| {
            Ok(image::open(p)
                .map_err(|e| Error::bad_input(p, e.to_string()))?
                .to_rgb8())
        })
        .collect::<Result<Vec<_>>>()?;
    if !frames.is_empty() {
        save_gif(&run.root.join("progress.gif"), &frames, 400)?;
    }
    Ok(ChartFiles {
        steps: rows.len(),
        frames: frames.len(),
        augment_moves,
    })
}

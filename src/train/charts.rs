//! The pictures of a finished (or interrupted) run, made from its files alone: loss chart,
//! discriminator-output chart, progress GIF. `chapter-05 charts runs/<name>` re-makes them.

use crate::error::{Error, Result};
use crate::viz::gif::save_gif;
use crate::viz::plot::{save_chart, smooth, LineChart, Series, BLUE, GREEN, ORANGE, RED};

use super::loss_log::{read_metrics, StepMetrics};
use super::run::RunDir;

/// What [`draw_charts`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartFiles {
    pub steps: usize,
    pub frames: usize,
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

/// Write `loss.{png,svg}`, `d_outputs.{png,svg}` and `progress.gif` into the run folder.
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
    })
}

//! Line charts of a run's metrics and bar charts of a sweep's scores with plotters, as PNG (for the notebook and the book) and SVG
//! (for zooming in). Text is drawn with the DejaVu Sans font shipped in `data/fonts/`, so the
//! charts look the same on a machine without any system fonts.

use std::path::Path;
use std::sync::Once;

use image::RgbImage;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::fsutil::{save_png, write_atomic};

#[cfg(not(target_arch = "wasm32"))]
static FONT: &[u8] = include_bytes!("../../data/fonts/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

pub(crate) fn register_font() {
    REGISTER.call_once(|| {
        // The bytes are a valid TrueType font shipped with the crate; a failure is a build error.
        // (In the browser plotters draws text with the page's fonts: there is nothing to register,
        // and the pages draw no charts with plotters.)
        #[cfg(not(target_arch = "wasm32"))]
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).ok();
    });
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
    pub colour: RGBColor,
}

/// A chart: a title, axis names, a y range (or `None` to fit the data), and its lines.
#[derive(Debug, Clone)]
pub struct LineChart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub y_range: Option<(f64, f64)>,
    pub series: Vec<Series>,
}

/// Colours of the course's charts.
pub const BLUE: RGBColor = RGBColor(31, 119, 180);
pub const ORANGE: RGBColor = RGBColor(255, 127, 14);
pub const GREEN: RGBColor = RGBColor(44, 160, 44);
pub const RED: RGBColor = RGBColor(214, 39, 40);
pub const GREY: RGBColor = RGBColor(127, 127, 127);

/// Size of the charts, in pixels.
pub const CHART_SIZE: (u32, u32) = (900, 480);

fn plot_error(e: impl std::fmt::Display) -> Error {
    Error::config("plot", e.to_string())
}

/// Something plotters can draw on any backend (PNG and SVG alike).
pub trait Chart {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static;
}

impl Chart for LineChart {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        draw_lines(area, self)
    }
}

/// Horizontal bars, one per named value, top to bottom in the given order, with an optional
/// reference value drawn as a vertical line across them (e.g. the real-vs-real floor).
#[derive(Debug, Clone)]
pub struct BarChart {
    pub title: String,
    pub value_label: String,
    pub bars: Vec<(String, f64)>,
    pub reference: Option<(String, f64)>,
    /// A logarithmic value axis, for values that span several orders of magnitude (the
    /// calibration ladder's KID runs from about 20 to 40 000): bars start at 1, and values
    /// below 1 (a negative KID) get no bar, only their label.
    pub log_scale: bool,
}

impl Chart for BarChart {
    fn draw<DB: DrawingBackend>(&self, area: DrawingArea<DB, Shift>) -> Result<()>
    where
        DB::ErrorType: 'static,
    {
        area.fill(&WHITE).map_err(plot_error)?;
        let n = self.bars.len().max(1);
        let top = self
            .bars
            .iter()
            .map(|b| b.1)
            .chain(self.reference.as_ref().map(|r| r.1))
            .filter(|v| v.is_finite())
            .fold(0.0f64, f64::max);
        // Bars are drawn at `at(value)`: the value itself, or its log10 (at least 0) on a log
        // axis, whose ticks are labelled with the powers of ten they stand for.
        let log_scale = self.log_scale;
        let at = move |v: f64| if log_scale { v.max(1.0).log10() } else { v };
        // Room to the right of the longest bar for its label.
        let x_max = match (log_scale, top > 0.0) {
            (true, true) => at(top) + 0.8,
            (false, true) => top * 1.3,
            (_, false) => 1.0,
        };
        let names: Vec<String> = self.bars.iter().map(|b| b.0.clone()).collect();
        // Row 0 is drawn at the bottom: the first bar goes to the top row.
        let row = |i: usize| n - 1 - i;
        let mut ctx = ChartBuilder::on(&area)
            .caption(&self.title, ("sans-serif", 22))
            .margin(12)
            .x_label_area_size(40)
            // Wide enough for the longest name (about 7.5 px a character at this font size).
            .y_label_area_size(
                names.iter().map(|n| n.chars().count()).max().unwrap_or(0) as u32 * 15 / 2 + 16,
            )
            .build_cartesian_2d(0.0..x_max, (0..n).into_segmented())
            .map_err(plot_error)?;
        ctx.configure_mesh()
            .disable_y_mesh()
            .y_labels(n)
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(r) if *r < n => {
                    names.get(n - 1 - r).cloned().unwrap_or_default()
                }
                _ => String::new(),
            })
            .x_label_formatter(&|x| {
                if !log_scale {
                    axis_number(*x)
                } else if x.fract() == 0.0 {
                    axis_number(10f64.powf(*x))
                } else {
                    String::new()
                }
            })
            .x_desc(&self.value_label)
            .label_style(("sans-serif", 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()
            .map_err(plot_error)?;
        ctx.draw_series(self.bars.iter().enumerate().map(|(i, (_, v))| {
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row(i))),
                    (at(*v), SegmentValue::Exact(row(i) + 1)),
                ],
                BLUE.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))
        .map_err(plot_error)?;
        ctx.draw_series(self.bars.iter().enumerate().map(|(i, (_, v))| {
            Text::new(
                format!(" {v:.2}"),
                (at(*v), SegmentValue::CenterOf(row(i))),
                ("sans-serif", 13),
            )
        }))
        .map_err(plot_error)?;
        if let Some((label, v)) = &self.reference {
            ctx.draw_series(LineSeries::new(
                [
                    (at(*v), SegmentValue::Exact(0)),
                    (at(*v), SegmentValue::Exact(n)),
                ],
                GREY.stroke_width(3),
            ))
            .map_err(plot_error)?
            .label(format!("{label} ({v:.2})"))
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREY.stroke_width(3)));
            ctx.configure_series_labels()
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 14))
                .position(SeriesLabelPosition::UpperRight) // the empty row above the bars
                .draw()
                .map_err(plot_error)?;
        }
        area.present().map_err(plot_error)?;
        Ok(())
    }
}

/// An axis label: whole numbers without a decimal point (step 2000, not 2000.0), others with
/// the fewest decimals that tell neighbouring ticks apart (0.25, 1.5).
pub(crate) fn axis_number(v: f64) -> String {
    if v == 0.0 {
        "0".to_string()
    } else if v == v.round() && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        let text = format!("{v:.3}");
        text.trim_end_matches('0').to_string()
    }
}

fn draw_lines<DB: DrawingBackend>(area: DrawingArea<DB, Shift>, chart: &LineChart) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&WHITE).map_err(plot_error)?;
    let all = chart.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        if y.is_finite() {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x0 == x1 {
        x1 = x0 + 1.0;
    }
    let (y0, y1) = chart.y_range.unwrap_or_else(|| {
        let pad = ((y1 - y0) * 0.05).max(1e-3);
        (y0 - pad, y1 + pad)
    });
    let mut ctx = ChartBuilder::on(&area)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(plot_error)?;
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_label_formatter(&|v| axis_number(*v))
        .y_label_formatter(&|v| axis_number(*v))
        .label_style(("sans-serif", 14))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(plot_error)?;
    for s in &chart.series {
        let colour = s.colour;
        ctx.draw_series(LineSeries::new(
            s.points.iter().copied().filter(|p| p.1.is_finite()),
            colour.stroke_width(2),
        ))
        .map_err(plot_error)?
        .label(&s.label)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(3)));
    }
    ctx.configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_error)?;
    area.present().map_err(plot_error)?;
    Ok(())
}

/// Render a chart to an RGB image.
pub fn render_png(chart: &impl Chart) -> Result<RgbImage> {
    register_font();
    let (w, h) = CHART_SIZE;
    let mut buffer = vec![0u8; (w * h * 3) as usize];
    chart.draw(BitMapBackend::with_buffer(&mut buffer, (w, h)).into_drawing_area())?;
    Ok(RgbImage::from_raw(w, h, buffer).expect("buffer matches size"))
}

/// Render a chart to an SVG document.
pub fn render_svg(chart: &impl Chart) -> Result<String> {
    register_font();
    let mut svg = String::new();
    chart.draw(SVGBackend::with_string(&mut svg, CHART_SIZE).into_drawing_area())?;
    Ok(svg)
}

/// Write `<stem>.png` and `<stem>.svg` in `dir`.
pub fn save_chart(dir: &Path, stem: &str, chart: &impl Chart) -> Result<()> {
    save_png(&dir.join(format!("{stem}.png")), &render_png(chart)?)?;
    write_atomic(
        &dir.join(format!("{stem}.svg")),
        render_svg(chart)?.as_bytes(),
    )
}

/// Exponential moving average, for a readable trend over noisy per-step values.
pub fn smooth(points: &[(f64, f64)], weight: f64) -> Vec<(f64, f64)> {
    let mut out = Vec::with_capacity(points.len());
    let mut avg: Option<f64> = None;
    for &(x, y) in points {
        let a = match avg {
            Some(a) => weight * a + (1.0 - weight) * y,
            None => y,
        };
        avg = Some(a);
        out.push((x, a));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_labels_have_no_needless_decimals() {
        assert_eq!(axis_number(2000.0), "2000");
        assert_eq!(axis_number(-3.0), "-3");
        assert_eq!(axis_number(-0.0), "0");
        assert_eq!(axis_number(0.5), "0.5");
        assert_eq!(axis_number(0.25), "0.25");
        assert_eq!(axis_number(1.0 / 3.0), "0.333");
    }

    fn chart() -> LineChart {
        LineChart {
            title: "Losses".into(),
            x_label: "step".into(),
            y_label: "loss".into(),
            y_range: None,
            series: vec![Series {
                label: "discriminator".into(),
                points: vec![(1.0, 1.0), (2.0, 0.5), (3.0, f64::NAN)],
                colour: BLUE,
            }],
        }
    }

    #[test]
    fn png_has_drawn_text_and_lines() {
        let img = render_png(&chart()).unwrap();
        assert_eq!(img.dimensions(), CHART_SIZE);
        // Something other than white was drawn in the caption band (the title's glyphs).
        let caption_ink = (0..CHART_SIZE.0)
            .flat_map(|x| (0..30).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0 != [255, 255, 255])
            .count();
        assert!(
            caption_ink > 50,
            "title text was rendered: {caption_ink} pixels"
        );
        assert!(
            img.pixels().any(|p| p.0 == [BLUE.0, BLUE.1, BLUE.2]),
            "the series colour appears"
        );
    }

    /// The text of every `<text>` element of an SVG.
    fn svg_texts(svg: &str) -> Vec<&str> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                t.split_once('>')
                    .unwrap()
                    .1
                    .split('<')
                    .next()
                    .unwrap()
                    .trim()
            })
            .collect()
    }

    #[test]
    fn a_log_scale_bar_chart_labels_powers_of_ten_and_true_values() {
        let chart = BarChart {
            title: "ladder".into(),
            value_label: "KID".into(),
            bars: vec![
                ("copies".into(), -2.07),
                ("floor".into(), 23.8),
                ("blobs".into(), 37721.3),
            ],
            reference: Some(("floor".into(), 23.8)),
            log_scale: true,
        };
        let svg = render_svg(&chart).unwrap();
        let texts = svg_texts(&svg);
        // Ticks at powers of ten, up to the largest bar's.
        for tick in ["1", "10", "100", "1000", "10000"] {
            assert!(texts.contains(&tick), "no tick {tick} in {texts:?}");
        }
        // Bars are labelled with their values, a negative one too; nothing in between.
        for value in ["-2.07", "23.80", "37721.30"] {
            assert!(texts.contains(&value), "no label {value} in {texts:?}");
        }
        assert!(!texts.iter().any(|t| t.contains("3162")), "{texts:?}");
    }

    #[test]
    fn svg_names_series_and_axes() {
        let svg = render_svg(&chart()).unwrap();
        let texts = svg_texts(&svg);
        assert!(svg.starts_with("<svg"));
        for expected in ["Losses", "step", "loss", "discriminator"] {
            assert!(texts.contains(&expected), "{expected} in {texts:?}");
        }
    }

    #[test]
    fn smoothing_follows_the_trend() {
        let s = smooth(&[(0.0, 0.0), (1.0, 10.0), (2.0, 10.0)], 0.5);
        assert_eq!(s, vec![(0.0, 0.0), (1.0, 5.0), (2.0, 7.5)]);
    }
}

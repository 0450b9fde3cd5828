//! The training log (`log.csv`) and its curves (`loss.png`,
//! `validation.png`), redrawn at every validation.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Once;

use plotters::prelude::*;
use plotters::style::FontStyle;

pub const LOG_FILE: &str = "log.csv";
const HEADER: &str = "step,learning_rate,loss,seconds,validation_psnr,validation_psnr_1step,validation_psnr_unseen";
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSansMono.ttf");

/// One line of the log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRow {
    pub step: u64,
    pub learning_rate: f64,
    pub loss: f32,
    pub seconds: f64,
    /// The validation scores, when measured.
    pub validation: Option<Validation>,
}

/// The scores of one validation, in dB.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Validation {
    /// The training noise variant with the default steps.
    pub psnr: f64,
    /// The same with one step.
    pub one_step_psnr: f64,
    /// The unseen-camera variant with the default steps (logs written
    /// before 2026-12 have none).
    pub unseen_psnr: Option<f64>,
}

impl LogRow {
    fn to_csv(&self) -> String {
        let cell = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.4}"));
        let v = self.validation;
        let (psnr, one, unseen) = (cell(v.map(|v| v.psnr)), cell(v.map(|v| v.one_step_psnr)), cell(v.and_then(|v| v.unseen_psnr)));
        format!("{},{:.6e},{:.6},{:.3},{psnr},{one},{unseen}", self.step, self.learning_rate, self.loss, self.seconds)
    }

    /// A row of 7 columns, or of 6 (logs before the unseen variant).
    fn parse(line: &str) -> Option<Self> {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 6 && f.len() != 7 {
            return None;
        }
        let validation = match (f[4].parse::<f64>(), f[5].parse::<f64>()) {
            (Ok(psnr), Ok(one_step_psnr)) => Some(Validation { psnr, one_step_psnr, unseen_psnr: f.get(6).and_then(|v| v.parse().ok()) }),
            _ => None,
        };
        Some(Self { step: f[0].parse().ok()?, learning_rate: f[1].parse().ok()?, loss: f[2].parse().ok()?, seconds: f[3].parse().ok()?, validation })
    }
}

/// The log of one run, kept in memory for drawing.
pub struct Log {
    rows: Vec<LogRow>,
    file: File,
}

impl Log {
    /// Opens the run's log, dropping rows past `resume_step`: the steps
    /// after the last checkpoint are trained again and logged again.
    pub fn open(run_dir: &Path, resume_step: u64) -> std::io::Result<Self> {
        let path = run_dir.join(LOG_FILE);
        let rows: Vec<LogRow> = match File::open(&path) {
            Ok(f) => BufReader::new(f).lines().skip(1).map_while(Result::ok).filter_map(|l| LogRow::parse(&l)).filter(|r| r.step <= resume_step).collect(),
            Err(_) => Vec::new(),
        };
        let mut file = OpenOptions::new().create(true).write(true).truncate(true).open(&path)?;
        writeln!(file, "{HEADER}")?;
        for row in &rows {
            writeln!(file, "{}", row.to_csv())?;
        }
        file.flush()?;
        Ok(Self { rows, file })
    }

    pub fn push(&mut self, row: LogRow) -> std::io::Result<()> {
        writeln!(self.file, "{}", row.to_csv())?;
        self.file.flush()?;
        self.rows.push(row);
        Ok(())
    }

    pub fn rows(&self) -> &[LogRow] {
        &self.rows
    }

    /// Redraws both curves; a drawing failure is reported, never fatal.
    pub fn draw(&self, run_dir: &Path) {
        if let Err(e) = draw_loss(&self.rows, &run_dir.join("loss.png")) {
            eprintln!("warning: cannot draw loss.png: {e}");
        }
        if let Err(e) = draw_validation(&self.rows, &run_dir.join("validation.png")) {
            eprintln!("warning: cannot draw validation.png: {e}");
        }
    }
}

pub(crate) fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if plotters::style::register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            eprintln!("warning: the embedded font is unreadable; curves will have no labels");
        }
    });
}

/// Exponential moving average for a readable loss curve.
fn smooth(values: &[f64], weight: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(values.len());
    let mut acc = None;
    for &v in values {
        let next = match acc {
            None => v,
            Some(a) => weight * a + (1.0 - weight) * v,
        };
        acc = Some(next);
        out.push(next);
    }
    out
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

fn draw_loss(rows: &[LogRow], path: &Path) -> DrawResult {
    if rows.len() < 2 {
        return Ok(());
    }
    register_font();
    let steps: Vec<f64> = rows.iter().map(|r| r.step as f64).collect();
    let raw: Vec<f64> = rows.iter().map(|r| f64::from(r.loss)).collect();
    let smoothed = smooth(&raw, 0.95);
    let (lo, hi) = raw.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("training loss (Charbonnier)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        // Log scale: the first hundred steps fall by an order of magnitude and
        // would otherwise flatten everything after them.
        .build_cartesian_2d(steps[0]..steps[steps.len() - 1], ((lo * 0.9).max(1e-6)..hi * 1.1).log_scale())?;
    chart.configure_mesh().y_max_light_lines(0).y_labels(12).x_desc("step").y_desc("loss (log scale)").y_label_formatter(&|v| format!("{v:.3}")).draw()?;
    chart.draw_series(LineSeries::new(steps.iter().copied().zip(raw.iter().copied()), RGBColor(180, 200, 230)))?.label("per step").legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RGBColor(180, 200, 230)));
    chart.draw_series(LineSeries::new(steps.iter().copied().zip(smoothed), BLUE.stroke_width(2)))?.label("smoothed").legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

fn draw_validation(rows: &[LogRow], path: &Path) -> DrawResult {
    let points: Vec<(f64, f64, f64)> = rows.iter().filter_map(|r| r.validation.map(|v| (r.step as f64, v.psnr, v.one_step_psnr))).collect();
    let unseen: Vec<(f64, f64)> = rows.iter().filter_map(|r| r.validation.and_then(|v| v.unseen_psnr).map(|u| (r.step as f64, u))).collect();
    if points.is_empty() {
        return Ok(());
    }
    register_font();
    let (lo, hi) = points.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), &(_, a, b)| (l.min(a).min(b), h.max(a).max(b)));
    let (lo, hi) = unseen.iter().fold((lo, hi), |(l, h), &(_, u)| (l.min(u), h.max(u)));
    let x_end = points[points.len() - 1].0.max(1.0);
    let root = BitMapBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("validation PSNR (EMA weights)", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..x_end * 1.02, (lo - 0.5)..(hi + 0.5))?;
    chart.configure_mesh().x_desc("step").y_desc("PSNR (dB)").draw()?;
    chart.draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.1)), RED.stroke_width(2)))?.label("default steps, improved").legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], RED));
    chart.draw_series(points.iter().map(|p| Circle::new((p.0, p.1), 3, RED.filled())))?;
    chart.draw_series(LineSeries::new(points.iter().map(|p| (p.0, p.2)), GREEN.stroke_width(2)))?.label("1 step").legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], GREEN));
    if !unseen.is_empty() {
        chart.draw_series(LineSeries::new(unseen.iter().copied(), BLUE.stroke_width(2)))?.label("unseen camera, default steps").legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLUE));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw()?;
    root.present()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_csv() {
        let scores = Validation { psnr: 31.25, one_step_psnr: 30.5, unseen_psnr: Some(29.75) };
        let row = LogRow { step: 12, learning_rate: 3.5e-4, loss: 0.0421, seconds: 95.5, validation: Some(scores) };
        let back = LogRow::parse(&row.to_csv()).expect("parses");
        assert_eq!(back.step, 12);
        assert!((back.loss - 0.0421).abs() < 1e-6);
        assert_eq!(back.validation, Some(scores));
        // A row of a log written before the unseen variant.
        let old = LogRow::parse("7,1.0e-4,0.05,10.0,28.5,28.0").expect("parses a 6-column row");
        assert_eq!(old.validation, Some(Validation { psnr: 28.5, one_step_psnr: 28.0, unseen_psnr: None }));
        let plain = LogRow { validation: None, ..row };
        assert_eq!(LogRow::parse(&plain.to_csv()).and_then(|r| r.validation), None);
    }

    #[test]
    fn resuming_drops_rows_after_the_checkpoint() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut log = Log::open(dir.path(), 0).expect("open");
        for step in 1..=10 {
            log.push(LogRow { step, learning_rate: 1e-3, loss: 1.0 / step as f32, seconds: step as f64, validation: None }).expect("push");
        }
        drop(log);
        let resumed = Log::open(dir.path(), 6).expect("reopen");
        assert_eq!(resumed.rows().len(), 6);
        assert_eq!(resumed.rows().last().map(|r| r.step), Some(6));
    }
}

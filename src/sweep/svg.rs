//! The sweep's picture, drawn as SVG with plotters: two heat maps over the grid, one row per
//! `D` and one column per `T`. The first shades the share of the stream purchases flagged
//! (the count and share in each cell), the second the recommendation emails per day (the feed
//! highlights per day under them), or the emails over the whole stream when its purchases span
//! less than a day. Each has a colour legend; the batch log's own pair, when in the grid, has
//! a thick border and a `*` on its count, its row and its column.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{Cell, Report, cost, ratio, thousands};

/// Pixels per cell.
const CELL: (i32, i32) = (104, 50);
/// Left of the grid: the row labels.
const LEFT: i32 = 84;
/// Above a panel's grid: its title, subtitle and column labels.
const HEAD: i32 = 84;
/// Below a panel's grid: its legend and note.
const FOOT: i32 = 62;
/// Narrowest picture: the titles fit with a single column.
const MIN_WIDTH: i32 = 760;

/// The heat maps of `report` as an SVG document.
pub fn heat_map(report: &Report) -> String {
    let (columns, rows) = (
        report.grid.tracked.len() as i32,
        report.grid.degrees.len() as i32,
    );
    let panel = HEAD + CELL.1 * rows + FOOT;
    let size = (
        (LEFT + CELL.0 * columns + 24).max(MIN_WIDTH) as u32,
        (2 * panel + 12) as u32,
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        // Drawing into a string fails only on a bug: a half-drawn picture is still shown.
        let _ = draw(&root, report, panel).and_then(|()| root.present());
    }
    svg
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

/// One panel: what its cells say and how they are shaded.
struct Panel {
    title: String,
    subtitle: String,
    /// Per cell: the value that sets its shade, its big and its small line.
    cells: Vec<(u64, String, String)>,
    /// The colour of the highest value.
    full: (f64, f64, f64),
    /// The legend's words and how its two ends are written.
    legend: String,
    low: String,
    high: String,
}

fn draw(root: &Area<'_>, report: &Report, height: i32) -> DrawResult {
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(height);
    draw_panel(&top, report, &share_panel(report))?;
    draw_panel(&bottom, report, &email_panel(report))
}

/// The first panel: flagged purchases and their share.
fn share_panel(report: &Report) -> Panel {
    let marked = report.marked();
    let cells: Vec<_> = report
        .cells
        .iter()
        .enumerate()
        .map(|(i, cell)| {
            let tenths = ratio(cell.flagged, report.checked, 1000);
            let star = if Some(i) == marked { "*" } else { "" };
            (
                report.share_millionths(cell),
                format!("{}{star}", thousands(cell.flagged)),
                format!("{}.{}%", tenths / 10, tenths % 10),
            )
        })
        .collect();
    let highest = cells.iter().map(|c| c.0).max().unwrap_or(0);
    let percent = |millionths: u64| {
        let tenths = ratio(millionths, 1000, 1);
        format!("{}.{}%", tenths / 10, tenths % 10)
    };
    Panel {
        title: format!(
            "Share of the {} stream purchases flagged, by D and T",
            thousands(report.checked)
        ),
        subtitle: "rows, D: degrees of the network; columns, T: purchases in the baseline; \
                   cells: flagged purchases and their share"
            .to_string(),
        cells,
        full: (180.0, 30.0, 40.0),
        legend: "share flagged".to_string(),
        low: percent(0),
        high: percent(highest),
    }
}

/// The second panel: recommendation emails (and feed highlights) per day, or over the whole
/// stream when it spans less than a day.
fn email_panel(report: &Report) -> Panel {
    let span = &report.span;
    let daily = span.has_days();
    let value = |count: u64| {
        if daily {
            span.per_day_hundredths(count).unwrap_or(0)
        } else {
            100 * count
        }
    };
    let text = |count: u64| {
        if daily {
            cost::decimal(value(count), 1, true)
        } else {
            thousands(count)
        }
    };
    let cells: Vec<_> = report
        .cells
        .iter()
        .map(|cell: &Cell| {
            (
                value(cell.recommend),
                text(cell.recommend),
                format!("feed {}", text(cell.feed)),
            )
        })
        .collect();
    let highest = cells.iter().map(|c| c.0).max().unwrap_or(0);
    let (title, subtitle, legend) = if daily {
        (
            format!(
                "Recommendation emails per day, over the {} days of stream purchases",
                span.days_text()
            ),
            format!(
                "cells: emails per day, and feed highlights per day under them; purchases {}",
                span.range_text()
            ),
            "emails per day",
        )
    } else {
        let why = match span.range() {
            None => "the stream has no purchases".to_string(),
            Some(_) => format!("its purchases span less than a day ({})", span.clock_text()),
        };
        (
            "Recommendation emails over the whole stream: no daily rate".to_string(),
            format!("{why}; cells: emails, and feed highlights under them"),
            "emails",
        )
    };
    let end = |hundredths: u64| {
        if daily {
            cost::decimal(hundredths, 1, true)
        } else {
            thousands(hundredths / 100)
        }
    };
    Panel {
        title,
        subtitle,
        cells,
        full: (30.0, 90.0, 170.0),
        legend: legend.to_string(),
        low: end(0),
        high: end(highest),
    }
}

/// The shade of `heat` (0 to 1) from white to `full`.
fn shade(full: (f64, f64, f64), heat: f64) -> RGBColor {
    let channel = |full: f64| (255.0 - heat * (255.0 - full)).round() as u8;
    RGBColor(channel(full.0), channel(full.1), channel(full.2))
}

fn draw_panel(area: &Area<'_>, report: &Report, panel: &Panel) -> DrawResult {
    let marked = report.marked();
    let columns = report.grid.tracked.len();
    let at = |h, v| Pos::new(h, v);
    let font = |size: f64| TextStyle::from(("sans-serif", size).into_font());
    area.draw(&Text::new(
        panel.title.clone(),
        (16, 22),
        font(18.0).pos(at(HPos::Left, VPos::Center)),
    ))?;
    area.draw(&Text::new(
        panel.subtitle.clone(),
        (16, 44),
        font(12.0)
            .color(&RGBColor(90, 90, 90))
            .pos(at(HPos::Left, VPos::Center)),
    ))?;
    // Column and row labels; the batch log's own starred when its pair is in the grid.
    let own = marked.map(|i| (i / columns, i % columns));
    for (col, t) in report.grid.tracked.iter().enumerate() {
        let star = if own.is_some_and(|(_, c)| c == col) {
            "*"
        } else {
            ""
        };
        let x = LEFT + CELL.0 * col as i32 + CELL.0 / 2;
        area.draw(&Text::new(
            format!("T={t}{star}"),
            (x, HEAD - 12),
            font(14.0).pos(at(HPos::Center, VPos::Center)),
        ))?;
    }
    for (row, name) in report.degree_names.iter().enumerate() {
        let star = if own.is_some_and(|(r, _)| r == row) {
            "*"
        } else {
            ""
        };
        let y = HEAD + CELL.1 * row as i32 + CELL.1 / 2;
        area.draw(&Text::new(
            format!("D={name}{star}"),
            (LEFT - 10, y),
            font(14.0).pos(at(HPos::Right, VPos::Center)),
        ))?;
    }
    let highest = panel.cells.iter().map(|c| c.0).max().unwrap_or(0).max(1);
    for (i, (value, big, small)) in panel.cells.iter().enumerate() {
        let (row, col) = ((i / columns) as i32, (i % columns) as i32);
        let (x, y) = (LEFT + CELL.0 * col, HEAD + CELL.1 * row);
        let heat = *value as f64 / highest as f64;
        let corners = [(x, y), (x + CELL.0, y + CELL.1)];
        area.draw(&Rectangle::new(corners, shade(panel.full, heat).filled()))?;
        area.draw(&Rectangle::new(
            corners,
            RGBColor(200, 200, 200).stroke_width(1),
        ))?;
        let ink = if heat > 0.55 { WHITE } else { BLACK };
        let centre = at(HPos::Center, VPos::Center);
        let (cx, cy) = (x + CELL.0 / 2, y + CELL.1 / 2);
        area.draw(&Text::new(
            big.clone(),
            (cx, cy - 9),
            font(15.0).color(&ink).pos(centre),
        ))?;
        area.draw(&Text::new(
            small.clone(),
            (cx, cy + 11),
            font(11.0).color(&ink).pos(centre),
        ))?;
    }
    // The batch log's pair on top of its neighbours' borders.
    if let Some((row, col)) = own {
        let (x, y) = (LEFT + CELL.0 * col as i32, HEAD + CELL.1 * row as i32);
        area.draw(&Rectangle::new(
            [(x + 1, y + 1), (x + CELL.0 - 1, y + CELL.1 - 1)],
            BLACK.stroke_width(3),
        ))?;
    }
    // The legend: the colour scale from 0 to the panel's highest value.
    let rows = report.grid.degrees.len() as i32;
    let y = HEAD + CELL.1 * rows + 18;
    const STEPS: i32 = 20;
    const STEP: i32 = 10;
    let label = font(12.0).pos(at(HPos::Left, VPos::Center));
    area.draw(&Text::new(
        format!("{}:", panel.legend),
        (16, y + 7),
        label.clone(),
    ))?;
    // Room for the legend's words, then its low end.
    let bar = 200;
    area.draw(&Text::new(
        panel.low.clone(),
        (bar - 6, y + 7),
        font(12.0).pos(at(HPos::Right, VPos::Center)),
    ))?;
    for step in 0..STEPS {
        let x = bar + STEP * step;
        let heat = f64::from(step) / f64::from(STEPS - 1);
        area.draw(&Rectangle::new(
            [(x, y), (x + STEP, y + 14)],
            shade(panel.full, heat).filled(),
        ))?;
    }
    area.draw(&Rectangle::new(
        [(bar, y), (bar + STEP * STEPS, y + 14)],
        RGBColor(160, 160, 160).stroke_width(1),
    ))?;
    area.draw(&Text::new(
        panel.high.clone(),
        (bar + STEP * STEPS + 6, y + 7),
        label.clone(),
    ))?;
    if marked.is_some() {
        area.draw(&Text::new(
            format!(
                "* thick border: the batch log's own D={} T={}",
                report.own.degree, report.own.tracked
            ),
            (16, y + 34),
            label,
        ))?;
    }
    Ok(())
}

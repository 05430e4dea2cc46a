//! The sweep's picture: a heat map of the flagged share per `(D, T)`, the counts in the cells,
//! drawn as SVG with plotters.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Report;

/// Pixels per cell.
const CELL: (u32, u32) = (110, 56);

/// The heat map of `report` as an SVG document.
pub fn heat_map(report: &Report) -> String {
    let (columns, rows) = (report.grid.tracked.len(), report.grid.degrees.len());
    // Wide enough for the title and the axis descriptions with a single cell.
    let size = (
        (150 + CELL.0 * columns as u32).max(560),
        (150 + CELL.1 * rows as u32).max(260),
    );
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        // Drawing into a string fails only on a bug: a half-drawn picture is still shown.
        let _ = draw(&root, report).and_then(|()| root.present());
    }
    svg
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn draw(root: &Area<'_>, report: &Report) -> DrawResult {
    root.fill(&WHITE)?;
    let (columns, rows) = (report.grid.tracked.len(), report.grid.degrees.len());
    let title = format!(
        "Share of the {} stream purchases flagged, by D and T",
        report.checked
    );
    let mut chart = ChartBuilder::on(root)
        .caption(title, ("sans-serif", 18))
        .margin(16)
        .x_label_area_size(46)
        .y_label_area_size(64)
        .build_cartesian_2d(0.0..columns as f64, 0.0..rows as f64)?;
    // Row 0 (the smallest D) on top, as in the table.
    let row_at = |row: usize| (rows - 1 - row) as f64;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_labels(0)
        .y_labels(0)
        .x_desc("T: purchases in the baseline   (* the batch log's own)")
        .y_desc("D: degrees of the network")
        .axis_desc_style(("sans-serif", 15))
        .draw()?;
    // The ticks' labels, at the middle of each column and row.
    let star = |own: bool| if own { "*" } else { "" };
    for (col, t) in report.grid.tracked.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(col as f64 + 0.5, 0.0));
        let style =
            TextStyle::from(("sans-serif", 14).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        let label = format!("{t}{}", star(*t == report.own.tracked));
        root.draw(&Text::new(label, (x, y + 8), style))?;
    }
    for (row, (d, name)) in report
        .grid
        .degrees
        .iter()
        .zip(&report.degree_names)
        .enumerate()
    {
        let (x, y) = chart.backend_coord(&(0.0, row_at(row) + 0.5));
        let style = TextStyle::from(("sans-serif", 14).into_font())
            .pos(Pos::new(HPos::Right, VPos::Center));
        let label = format!("{name}{}", star(*d == report.own.degree));
        root.draw(&Text::new(label, (x - 8, y), style))?;
    }

    let highest = report
        .cells
        .iter()
        .map(|c| report.share_millionths(c))
        .max()
        .unwrap_or(0)
        .max(1);
    let marked = report.marked();
    for (i, cell) in report.cells.iter().enumerate() {
        let (row, col) = (i / columns, (i % columns) as f64);
        let y = row_at(row);
        let share = report.share_millionths(cell);
        // White for no flags, deep red for the grid's highest share.
        let heat = share as f64 / highest as f64;
        let shade = |full: f64| (255.0 - heat * (255.0 - full)).round() as u8;
        let color = RGBColor(shade(180.0), shade(30.0), shade(40.0));
        let corners = [(col, y), (col + 1.0, y + 1.0)];
        chart.draw_series([Rectangle::new(corners, color.filled())])?;
        let border = if Some(i) == marked {
            BLACK.stroke_width(3)
        } else {
            RGBColor(200, 200, 200).stroke_width(1)
        };
        chart.draw_series([Rectangle::new(corners, border)])?;
        let ink = if heat > 0.55 { WHITE } else { BLACK };
        let centre = Pos::new(HPos::Center, VPos::Center);
        let big = TextStyle::from(("sans-serif", 16).into_font())
            .color(&ink)
            .pos(centre);
        let small = TextStyle::from(("sans-serif", 12).into_font())
            .color(&ink)
            .pos(centre);
        let tenths = super::ratio(cell.flagged, report.checked, 1000);
        let at = (col + 0.5, y + 0.5);
        chart.draw_series([EmptyElement::at(at)
            + Text::new(cell.flagged.to_string(), (0, -9), big)
            + Text::new(format!("{}.{}%", tenths / 10, tenths % 10), (0, 11), small)])?;
    }
    Ok(())
}

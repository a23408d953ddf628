//! Charts drawn on the server as SVG: no script, no inline style (the
//! Content-Security-Policy allows neither), layers told apart by pattern as
//! well as shade so they read without colour. Every chart comes with its
//! numbers: each mark carries its value (`data-value`, and a `<title>` a
//! pointer or a screen reader finds), and the views print the table.

use maud::{Markup, html};

/// One column of a stacked column chart: its label and one value per layer.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) label: String,
    pub(crate) values: Vec<i64>,
}

/// How each layer is filled, bottom first: solid, hatched, dotted.
const FILLS: [&str; 3] = ["#1d4f7a", "url(#hatch)", "url(#dots)"];

const WIDTH: f64 = 800.0;
const HEIGHT: f64 = 240.0;
const LEFT: f64 = 56.0;
const BOTTOM: f64 = 24.0;
const TOP: f64 = 8.0;
/// At most this many labels under the columns.
const X_LABELS: usize = 8;

/// A stacked column chart of `columns`, layers named by `layers` (at most
/// three), with a legend.
pub(crate) fn columns(id: &str, title: &str, layers: &[&str], columns: &[Column]) -> Markup {
    let max = columns
        .iter()
        .map(|column| column.values.iter().map(|v| (*v).max(0)).sum::<i64>())
        .max()
        .unwrap_or(0);
    let top = nice_ceiling(max);
    let plot_width = WIDTH - LEFT;
    let plot_height = HEIGHT - BOTTOM - TOP;
    let slot = plot_width / columns.len().max(1) as f64;
    let bar = (slot * 0.8).max(1.0);
    let scale = |value: i64| value as f64 / top as f64 * plot_height;
    let every = columns.len().div_ceil(X_LABELS).max(1);
    html! {
        figure.chart {
            svg id=(id) viewBox={ "0 0 " (WIDTH) " " (HEIGHT) } role="img"
                aria-labelledby={ (id) "-title" } {
                title id={ (id) "-title" } { (title) }
                defs {
                    pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse"
                        patternTransform="rotate(45)" {
                        rect width="6" height="6" fill="#f2c18d" {}
                        line x1="0" y1="0" x2="0" y2="6" stroke="#8a4b08" stroke-width="3" {}
                    }
                    pattern id="dots" width="5" height="5" patternUnits="userSpaceOnUse" {
                        rect width="5" height="5" fill="#d7e8d2" {}
                        circle cx="2.5" cy="2.5" r="1.3" fill="#2f6b2a" {}
                    }
                }
                @for (i, tick) in [top, top / 2, 0].iter().enumerate() {
                    @let y = TOP + plot_height - scale(*tick);
                    line.grid x1=(LEFT) x2=(WIDTH) y1=(y) y2=(y)
                        stroke="#b8b8b8" stroke-dasharray=(if i == 2 { "" } else { "3 3" }) {}
                    text x=(LEFT - 6.0) y=(y + 4.0) text-anchor="end" font-size="12" { (tick) }
                }
                @for (i, column) in columns.iter().enumerate() {
                    @let x = LEFT + slot * i as f64 + (slot - bar) / 2.0;
                    @let mut base = TOP + plot_height;
                    g data-label=(column.label) {
                        @for (layer, value) in column.values.iter().enumerate() {
                            @let height = scale((*value).max(0));
                            @let y = { base -= height; base };
                            rect x=(x) y=(y) width=(bar) height=(height)
                                fill=(FILLS[layer % FILLS.len()]) stroke="#222" stroke-width="0.3"
                                data-layer=(layers.get(layer).copied().unwrap_or("")) data-value=(value) {
                                title { (column.label) ": " (layers.get(layer).copied().unwrap_or("")) " " (value) }
                            }
                        }
                    }
                    @if i % every == 0 || i + 1 == columns.len() {
                        text x=(x + bar / 2.0) y=(HEIGHT - 6.0) text-anchor="middle" font-size="12" {
                            (column.label)
                        }
                    }
                }
            }
            figcaption {
                (title) ". "
                ul.legend {
                    @for (layer, name) in layers.iter().enumerate() {
                        li {
                            svg.swatch viewBox="0 0 14 14" aria-hidden="true" {
                                rect width="14" height="14" fill=(FILLS[layer % FILLS.len()]) stroke="#222" {}
                            }
                            " " (name)
                        }
                    }
                }
            }
        }
    }
}

/// A ranked list as a table of bars: each value, its count, its share of
/// `total`, and a bar as long as its count against the largest.
pub(crate) fn bars(caption: &str, heading: &str, rows: &[(String, i64)], total: i64) -> Markup {
    let max = rows.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    html! {
        table.bars {
            caption { (caption) }
            thead { tr { th scope="col" { (heading) } th scope="col" { "Clicks" } th scope="col" { "Share" } th scope="col" { span.visually-hidden { "Bar" } } } }
            tbody {
                @for (value, clicks) in rows {
                    tr {
                        th scope="row" { (value) }
                        td.number data-value=(clicks) { (clicks) }
                        td.number { (share(*clicks, total)) }
                        td.bar {
                            svg viewBox="0 0 100 10" preserveAspectRatio="none" aria-hidden="true" {
                                rect width=(*clicks as f64 / max as f64 * 100.0) height="10" fill="#1d4f7a" {}
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `part` of `total` as a percentage with one decimal.
pub(crate) fn share(part: i64, total: i64) -> String {
    if total <= 0 {
        return "–".to_owned();
    }
    format!("{:.1}%", part as f64 * 100.0 / total as f64)
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `value`
/// (at least 1), so the axis reads in round numbers.
fn nice_ceiling(value: i64) -> i64 {
    let mut step = 1_i64;
    loop {
        for multiple in [1, 2, 5] {
            let candidate = step.saturating_mul(multiple);
            if candidate >= value || candidate == i64::MAX {
                return candidate;
            }
        }
        step = step.saturating_mul(10);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        let cases = [
            (0, 1),
            (1, 1),
            (3, 5),
            (7, 10),
            (11, 20),
            (120, 200),
            (999, 1_000),
            (1_001, 2_000),
        ];
        for (value, ceiling) in cases {
            assert_eq!(nice_ceiling(value), ceiling, "{value}");
        }
        assert_eq!(nice_ceiling(i64::MAX), i64::MAX);
    }

    #[test]
    fn each_mark_carries_its_value() {
        let chart = columns(
            "c",
            "Clicks",
            &["people", "bots"],
            &[
                Column {
                    label: "2026-01-01".into(),
                    values: vec![3, 1],
                },
                Column {
                    label: "2026-01-02".into(),
                    values: vec![0, 2],
                },
            ],
        )
        .into_string();
        for mark in [
            r#"data-layer="people" data-value="3""#,
            r#"data-layer="bots" data-value="1""#,
            r#"data-layer="people" data-value="0""#,
            r#"data-layer="bots" data-value="2""#,
        ] {
            assert!(chart.contains(mark), "{mark} in {chart}");
        }
        assert!(!chart.contains("style="), "the CSP refuses inline style");
    }

    #[test]
    fn shares_are_of_the_total() {
        assert_eq!(share(1, 3), "33.3%");
        assert_eq!(share(0, 0), "–");
    }
}

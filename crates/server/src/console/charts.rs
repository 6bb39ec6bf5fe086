//! Line charts as SVG, drawn on the server with `plotters` (its SVG backend only: the browser lays out
//! the text, no font is loaded here). Each chart has a title (the figure's caption), axis labels, a legend,
//! and the same numbers as a table inside `<details>` for people who do not see the chart; the SVG itself
//! is an image named by its title, its parts hidden from screen readers, which read the table instead.

use maud::{Markup, PreEscaped, html};
use plotters::prelude::*;

/// Colours of the series, in order: distinguishable, and each at least 3:1 against the white background.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0x1f, 0x5f, 0xbf),
    RGBColor(0xb3, 0x40, 0x0a),
    RGBColor(0x17, 0x66, 0x3a),
    RGBColor(0x7b, 0x2c, 0x9e),
    RGBColor(0xa4, 0x26, 0x2c),
    RGBColor(0x00, 0x6d, 0x77),
    RGBColor(0x6b, 0x5b, 0x00),
    RGBColor(0x4d, 0x58, 0x68),
];

const WIDTH: u32 = 760;
const HEIGHT: u32 = 300;

/// One line of a chart: its name (in the legend and the table's header) and a value per bucket.
pub struct Line {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A chart of lines over the same buckets.
pub struct Chart<'a> {
    /// An id for the page (`chart-<id>`).
    pub id: &'a str,
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    /// The buckets' labels, as the x axis and the table's first column show them.
    pub buckets: Vec<String>,
    pub lines: Vec<Line>,
    /// Values are percentages (0 to 100), shown with one decimal.
    pub percent: bool,
    /// The summary of the `<details>` holding the table.
    pub table_label: String,
    /// What the table shows where a bucket has no value.
    pub none: String,
}

impl Chart<'_> {
    fn value(&self, v: Option<f64>) -> String {
        match v {
            None => self.none.clone(),
            Some(v) if self.percent => format!("{v:.1} %"),
            Some(v) => format!("{v:.0}"),
        }
    }

    /// The chart as a `<figure>`: the caption, the SVG, and the table.
    pub fn render(&self) -> Markup {
        let svg = self.svg().unwrap_or_else(|e| {
            tracing::warn!(error = %e, chart = self.id, "drawing a chart failed");
            String::new()
        });
        html! {
            figure class="chart" id={ "chart-" (self.id) } {
                figcaption { (self.title) }
                (PreEscaped(svg))
                details {
                    summary { (self.table_label) }
                    div class="scroll" tabindex="0" {
                        table {
                            caption class="vh" { (self.title) }
                            thead { tr {
                                th scope="col" { (self.x_label) }
                                @for line in &self.lines { th scope="col" { (line.name) } }
                            } }
                            tbody {
                                @for (i, bucket) in self.buckets.iter().enumerate() {
                                    tr {
                                        th scope="row" data-label=(self.x_label) { (bucket) }
                                        @for line in &self.lines {
                                            td data-label=(line.name) { (self.value(line.values.get(i).copied().flatten())) }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// The SVG, scaled by the page (no fixed size), named by the title for assistive technology.
    fn svg(&self) -> Result<String, Box<dyn std::error::Error>> {
        let mut out = String::new();
        {
            let root = SVGBackend::with_string(&mut out, (WIDTH, HEIGHT)).into_drawing_area();
            root.fill(&WHITE)?;
            let n = self.buckets.len().max(1);
            let top =
                self.lines.iter().flat_map(|l| l.values.iter().flatten()).fold(0.0_f64, |a, b| a.max(*b));
            let top = if self.percent { 100.0 } else { nice_top(top).max(5.0) };
            let mut chart = ChartBuilder::on(&root)
                .margin(12)
                .x_label_area_size(44)
                .y_label_area_size(56)
                .build_cartesian_2d(0..n - 1, 0.0..top)?;
            let labels = &self.buckets;
            let step = (n / 8).max(1);
            chart
                .configure_mesh()
                .x_desc(self.x_label.as_str())
                .y_desc(self.y_label.as_str())
                .x_labels(n.min(12))
                .y_labels(6)
                .x_label_formatter(&|i: &usize| {
                    if i.is_multiple_of(step) || *i == n - 1 {
                        labels.get(*i).cloned().unwrap_or_default()
                    } else {
                        String::new()
                    }
                })
                .y_label_formatter(&|v: &f64| {
                    if self.percent { format!("{v:.0} %") } else { format!("{v:.0}") }
                })
                .light_line_style(RGBColor(0xec, 0xef, 0xf3))
                .bold_line_style(RGBColor(0xd5, 0xdb, 0xe3))
                .axis_desc_style(("sans-serif", 17))
                .label_style(("sans-serif", 15))
                .draw()?;
            for (i, line) in self.lines.iter().enumerate() {
                let colour = PALETTE[i % PALETTE.len()];
                let style = ShapeStyle { color: colour.to_rgba(), filled: false, stroke_width: 2 };
                // A bucket without a value breaks the line rather than dropping to zero.
                let mut segments: Vec<Vec<(usize, f64)>> = vec![Vec::new()];
                for (x, v) in line.values.iter().enumerate() {
                    match (v, segments.last_mut()) {
                        (Some(v), Some(segment)) => segment.push((x, *v)),
                        _ => segments.push(Vec::new()),
                    }
                }
                let mut first = true;
                for segment in segments.into_iter().filter(|s| !s.is_empty()) {
                    let points = segment.clone();
                    let drawn = chart.draw_series(LineSeries::new(segment, style))?;
                    if first {
                        drawn.label(line.name.as_str()).legend(move |(x, y)| {
                            PathElement::new(
                                vec![(x, y), (x + 18, y)],
                                ShapeStyle { stroke_width: 3, ..style },
                            )
                        });
                        first = false;
                    }
                    chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, style.filled())))?;
                }
            }
            if !self.lines.is_empty() {
                chart
                    .configure_series_labels()
                    .position(SeriesLabelPosition::UpperLeft)
                    .background_style(WHITE.mix(0.9))
                    .border_style(RGBColor(0xd5, 0xdb, 0xe3))
                    .label_font(("sans-serif", 16))
                    .draw()?;
            }
            root.present()?;
        }
        // plotters puts every element and text on lines of its own: joined, the text is the element's
        // whole content and the page is smaller.
        Ok(accessible(&out.replace(">\n", ">").replace("\n<", "<"), &self.title))
    }
}

/// A round upper bound above `max` (at least 1), so the axis reads 0, 5, 10 rather than 0, 3.7, 7.4.
fn nice_top(max: f64) -> f64 {
    if max <= 1.0 {
        return 1.0;
    }
    let magnitude = 10_f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * magnitude).find(|t| *t >= max * 1.05).unwrap_or(max)
}

/// plotters' SVG made to scale with the page and named by `title`: the fixed size goes (the `viewBox`
/// stays), the image gets `role="img"` and a label, and its drawn parts are hidden from assistive technology.
fn accessible(svg: &str, title: &str) -> String {
    let Some(end) = svg.find('>') else { return String::new() };
    let (open, rest) = svg.split_at(end);
    let open = strip_attr(&strip_attr(open, "width"), "height");
    let label = maud::html! { (title) }.into_string();
    format!("{open} class=\"plot\" role=\"img\" aria-label=\"{label}\" focusable=\"false\"{rest}")
}

fn strip_attr(tag: &str, name: &str) -> String {
    let needle = format!(" {name}=\"");
    match tag.find(&needle) {
        Some(at) => {
            let after = &tag[at + needle.len()..];
            let close = after.find('"').map_or(after.len(), |i| i + 1);
            format!("{}{}", &tag[..at], &after[close..])
        }
        None => tag.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(lines: Vec<Line>) -> Chart<'static> {
        Chart {
            id: "t",
            title: "Grants <per> day".into(),
            x_label: "Day".into(),
            y_label: "Events".into(),
            buckets: vec!["1 Mar".into(), "2 Mar".into(), "3 Mar".into()],
            lines,
            percent: false,
            table_label: "As a table".into(),
            none: "–".into(),
        }
    }

    #[test]
    fn a_chart_is_an_svg_with_its_legend_and_the_same_numbers_as_a_table() {
        let c = chart(vec![
            Line { name: "analytics".into(), values: vec![Some(1.0), Some(4.0), None] },
            Line { name: "marketing".into(), values: vec![Some(0.0), Some(2.0), Some(3.0)] },
        ]);
        let html = c.render().into_string();
        let svg_at = html.find("<svg").expect("an SVG");
        let svg = &html[svg_at..html.find("</svg>").expect("its end")];
        assert!(svg.contains("role=\"img\" aria-label=\"Grants &lt;per&gt; day\""), "{svg}");
        assert!(!svg[..svg.find('>').unwrap_or(0)].contains(" width=\""), "scales with the page");
        for text in ["analytics", "marketing", "Day", "Events", "2 Mar"] {
            assert!(svg.contains(&format!(">{text}<")), "{text} drawn: {svg}");
        }
        assert!(!svg.contains("style=\""), "no inline style (the CSP forbids it)");
        let table = &html[html.find("<table").expect("a table")..];
        let row = |day: &str, a: &str, m: &str| {
            format!(
                "<th scope=\"row\" data-label=\"Day\">{day}</th><td data-label=\"analytics\">{a}</td>\
                 <td data-label=\"marketing\">{m}</td>"
            )
        };
        assert!(table.contains(&row("2 Mar", "4", "2")), "{table}");
        assert!(table.contains(&row("3 Mar", "–", "3")), "{table}");
    }

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_top(0.0), 1.0);
        assert_eq!(nice_top(7.4), 10.0);
        assert_eq!(nice_top(19.5), 25.0);
        assert_eq!(nice_top(180.0), 200.0);
    }
}

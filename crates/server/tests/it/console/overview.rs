//! The overview: where people stand per purpose, and the charts over time with the same numbers as their
//! tables, from the rollups the worker folds from the ledger.

use std::time::Duration;

use serde_json::json;

use super::{server_with_keys, sign_in};
use crate::preferences::{Page, Visitor};
use crate::utils::{Backend, TestServer, both_backends, grant, withdraw};

/// Three people's answers: alice agrees to both purposes, bob agrees to news and withdraws, carol refuses
/// analytics.
pub async fn seed(server: &TestServer) {
    server.record("alice", &grant("marketing.direct", &[])).await;
    server.record("alice", &grant("analytics", &[])).await;
    server.record("bob", &grant("marketing.direct", &[])).await;
    server.record("bob", &withdraw("marketing.direct")).await;
    server.record("carol", &json!({"changes": [{"purpose": "analytics", "action": "deny"}]})).await;
}

/// The text between `start` (included) and the next `end` after it.
pub fn slice<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let at = text.find(start).unwrap_or_else(|| panic!("{start} in {text}"));
    let len = text[at..].find(end).unwrap_or_else(|| panic!("{end} after {start}"));
    &text[at..at + len]
}

/// The cells of a table's row whose header cell starts with `row`, by the column headers: (header, cell).
pub fn row(table: &str, row: &str) -> Vec<(String, String)> {
    let cells = |html: &str, tag: &str| -> Vec<String> {
        html.split(&format!("<{tag}"))
            .skip(1)
            .filter_map(|c| {
                c.split_once('>')
                    .map(|(_, rest)| rest.split(&format!("</{tag}>")).next().unwrap_or("").to_owned())
            })
            .collect()
    };
    let head = cells(&slice(table, "<thead>", "</thead>")["<thead>".len()..], "th");
    let body = slice(table, "<tbody>", "</tbody>");
    let line = body
        .split("<tr>")
        .find(|r| {
            r.starts_with("<th scope=\"row\"")
                && r.split_once('>').is_some_and(|(_, rest)| rest.starts_with(row))
        })
        .unwrap_or_else(|| panic!("row {row} in {body}"));
    let values = cells(line, "td");
    head.into_iter().skip(1).zip(values).collect()
}

/// The overview of `range` once the rollups and the tally include everything recorded (the workers fold
/// and count every second or two).
pub async fn settled(v: &mut Visitor<'_>, range: &str, done: impl Fn(&str) -> bool) -> Page {
    for _ in 0..100 {
        let page = v.get(&format!("/console?range={range}")).await;
        assert_eq!(page.status, 200, "{}", page.text);
        if !page.text.contains("Counting: the charts include") && done(&page.text) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the overview did not settle");
}

fn today() -> String {
    consentry_core::Timestamp::now().to_string()[..10].to_owned()
}

async fn the_overview_counts_from_the_rollups(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    seed(&server).await;
    let mut v = Visitor::new(&server);
    sign_in(&mut v, &read).await;
    let cell = |cells: &[(String, String)], name: &str| {
        cells
            .iter()
            .find(|(h, _)| h == name)
            .map(|(_, c)| c.clone())
            .unwrap_or_else(|| panic!("{name}: {cells:?}"))
    };
    let news = |page: &str| {
        let news = row(slice(page, "<table id=\"standing\"", "</table>"), "News and offers");
        ["Agreed", "Refused", "Withdrew", "Never answered", "Opt-in rate"].map(|h| cell(&news, h))
    };
    let analytics = |page: &str| {
        let analytics = row(slice(page, "<table id=\"standing\"", "</table>"), "Usage analytics");
        ["Agreed", "Refused", "Never answered"].map(|h| cell(&analytics, h))
    };
    // Today's news grants in the grants chart, from the rollups.
    let grants_today = |page: &str| {
        let figure = slice(page, "<figure class=\"chart\" id=\"chart-grants\"", "</figure>");
        cell(&row(slice(figure, "<table", "</table>"), &today()), "News and offers")
    };
    // The standing comes from the gauges' last tally, and the charts from the rollups, folded every 2 s; either
    // may have run half-way through the seeding: wait for a page where both hold all of it (carol's refusal is
    // the last answer recorded, and both of today's news grants are folded; `settled` also waits for the
    // page's "counting" note to go).
    let page = settled(&mut v, "7d", |t| analytics(t)[1] == "1" && grants_today(t) == "2").await;
    assert_eq!(news(&page.text), ["1", "0", "1", "1", "33.3 %"]);
    assert_eq!(analytics(&page.text), ["1", "1", "1"]);

    // Each chart is an SVG with a line per purpose in its legend, and its table has the same numbers.
    for (chart, news_today, analytics_today) in
        [("grants", "2", "1"), ("withdrawals", "1", "0"), ("opt-in", "66.7 %", "50.0 %")]
    {
        let figure = slice(&page.text, &format!("<figure class=\"chart\" id=\"chart-{chart}\""), "</figure>");
        let svg = slice(figure, "<svg", "</svg>");
        assert!(svg.contains("role=\"img\""), "{chart}: {svg}");
        for series in ["News and offers", "Usage analytics"] {
            assert!(svg.contains(&format!(">{series}<")), "{chart}: the legend names {series}");
        }
        let table = slice(figure, "<table", "</table>");
        let cells = row(table, &today());
        assert_eq!(cell(&cells, "News and offers"), news_today, "{chart}");
        assert_eq!(cell(&cells, "Usage analytics"), analytics_today, "{chart}");
        assert_eq!(table.matches("<tr>").count(), 8, "{chart}: the header and seven days");
    }
    // Twelve months: one bucket a month.
    let year = v.get("/console?range=12m").await;
    let table = slice(slice(&year.text, "id=\"chart-grants\"", "</figure>"), "<table", "</table>");
    assert_eq!(table.matches("<tr>").count(), 13);
    assert_eq!(cell(&row(table, &today()[..7]), "News and offers"), "2");
    assert_eq!(v.get("/console?range=5y").await.status, 400);

    // Lost rollups are rebuilt from the ledger, to the same numbers.
    consentry_service::console::rollups::rebuild(server.state.store.as_ref()).await.expect("rebuild");
    let again = v.get("/console?range=7d").await;
    let table = slice(slice(&again.text, "id=\"chart-grants\"", "</figure>"), "<table", "</table>");
    assert_eq!(cell(&row(table, &today()), "News and offers"), "2");
}

both_backends!(the_overview_counts_from_the_rollups);

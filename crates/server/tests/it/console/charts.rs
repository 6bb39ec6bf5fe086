//! The overview's and the deliveries' newer charts: checks per purpose and how many were denied (counted in
//! memory, written by a worker every few seconds and at shutdown, added up in the store).

use serde_json::json;

use super::overview::{row, seed, settled, slice};
use super::{server_with_keys, sign_in};
use crate::preferences::Visitor;
use crate::utils::{ADMIN_KEY, Backend, TestServer, both_backends};

fn today() -> String {
    consentry_core::Timestamp::now().to_string()[..10].to_owned()
}

/// The cell under `column` in the row of today of chart `chart`'s table on `page`.
fn today_in(page: &str, chart: &str, column: &str) -> String {
    let figure = slice(page, &format!("<figure class=\"chart\" id=\"chart-{chart}\""), "</figure>");
    let table = slice(figure, "<table", "</table>");
    row(table, &today())
        .into_iter()
        .find(|(h, _)| h == column)
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("{column} in {chart}: {table}"))
}

async fn checks_are_counted_per_purpose_with_the_denied(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    seed(&server).await;
    // News and offers: alice twice (allowed), bob (withdrew: denied); analytics: alice (allowed), carol
    // (refused) and dave (never answered) in a batch.
    for subject in ["alice", "alice", "bob"] {
        server.check(subject, "marketing.direct", None).await;
    }
    let batch = json!({"checks": [
        {"subject": "alice", "purpose": "analytics"},
        {"subject": "carol", "purpose": "analytics"},
        {"subject": "dave", "purpose": "analytics"},
    ]});
    let answers = server.post("/v1/check/batch", ADMIN_KEY, &batch, 200).await;
    let allowed: Vec<bool> =
        answers["results"].as_array().expect("results").iter().map(|r| r["allowed"] == true).collect();
    assert_eq!(allowed, [true, false, false]);
    // A check the engine refuses (unknown purpose) counts nowhere.
    server.post("/v1/check", ADMIN_KEY, &json!({"subject": "alice", "purpose": "nope"}), 422).await;

    let mut v = Visitor::new(&server);
    sign_in(&mut v, &read).await;
    let page = settled(&mut v, "7d", |t| today_in(t, "checks", "Usage analytics") == "3").await;
    for (chart, news, analytics) in [("checks", "3", "3"), ("denied", "1", "2")] {
        assert_eq!(today_in(&page.text, chart, "News and offers"), news, "{chart}");
        assert_eq!(today_in(&page.text, chart, "Usage analytics"), analytics, "{chart}");
        let svg = slice(slice(&page.text, &format!("id=\"chart-{chart}\""), "</figure>"), "<svg", "</svg>");
        assert!(svg.contains(">News and offers<") && svg.contains(">Usage analytics<"), "{chart}: legend");
    }
    let german = v.get("/console?range=7d&lang=de").await;
    assert!(german.text.contains("Abgelehnte Abfragen je Zweck"), "{}", german.text);
    assert_eq!(today_in(&german.text, "denied", "Nutzungsanalyse"), "2");

    // Checks counted after the last periodic write are written at shutdown, and add to the day's row.
    server.check("carol", "analytics", None).await;
    let storage = server.stop().await;
    let server = TestServer::start_in(storage, |c| c.delivery_backoff_ms = vec![20, 20]).await;
    let mut v = Visitor::new(&server);
    sign_in(&mut v, &read).await;
    let page = v.get("/console?range=30d").await;
    assert_eq!(today_in(&page.text, "checks", "Usage analytics"), "4", "written at shutdown");
    assert_eq!(today_in(&page.text, "denied", "Usage analytics"), "3");
    assert_eq!(today_in(&page.text, "checks", "News and offers"), "3");
}

both_backends!(checks_are_counted_per_purpose_with_the_denied);

async fn requests_per_day_are_charted(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    // Two requests today; bob's objection completed once its one task is.
    let (crm, _, objection) = super::requests::seed_requests(&server).await;
    let done = format!("/v1/requests/{objection}/tasks/{crm}/complete");
    let completed = server.post(&done, ADMIN_KEY, &json!({}), 200).await;
    assert_eq!(completed["status"], "completed", "{completed}");
    // One received forty days ago, its CRM task still pending: marked overdue now.
    let long_ago = consentry_core::Timestamp::now().plus_seconds(-40 * 86_400);
    server
        .state
        .store
        .create_request(consentry_store::requests::NewRequest {
            id: "req_0000000000000042".into(),
            subject: consentry_core::SubjectId::new("dora").expect("id"),
            kind: consentry_store::requests::RequestKind::Objection,
            details: None,
            received_at: long_ago,
            destinations: vec![crm.clone()],
            actor: "key:test".into(),
            messages: Vec::new(),
        })
        .await
        .expect("create");
    let marked = consentry_service::workers::requests::sweep(
        &server.state,
        consentry_core::Timestamp::now(),
        std::time::Duration::from_secs(60),
    )
    .await
    .expect("sweep");
    assert_eq!(marked, 1);

    let mut v = Visitor::new(&server);
    sign_in(&mut v, &read).await;
    let page = v.get("/console?range=30d").await;
    for (column, n) in [("Received", "2"), ("Completed", "1"), ("Gone overdue", "1")] {
        assert_eq!(today_in(&page.text, "requests", column), n, "{column}");
    }
    let figure = slice(&page.text, "<figure class=\"chart\" id=\"chart-requests\"", "</figure>");
    assert!(slice(figure, "<svg", "</svg>").contains(">Gone overdue<"), "the legend");
    assert!(page.text.contains("Overdue requests: 1"), "{}", page.text);
    // The one received forty days ago is outside thirty days, on its own day in twelve months.
    let table = slice(figure, "<table", "</table>");
    assert_eq!(table.matches("<td data-label=\"Received\">1</td>").count(), 0, "{table}");
    let german = v.get("/console?range=30d&lang=de").await;
    assert_eq!(today_in(&german.text, "requests", "Überfällig geworden"), "1");
}

both_backends!(requests_per_day_are_charted);

/// A webhook receiver on loopback that refuses the first delivery (503) and accepts every later one.
async fn fails_once() -> (String, tokio::task::JoinHandle<()>) {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use axum::extract::State;
    use axum::http::StatusCode;
    let seen = Arc::new(AtomicU32::new(0));
    let answer = |State(seen): State<Arc<AtomicU32>>| async move {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::OK
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", listener.local_addr().expect("address"));
    let app = axum::Router::new().route("/hook", axum::routing::post(answer)).with_state(seen);
    (
        url,
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        }),
    )
}

async fn delivery_success_rates_per_destination(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    // The CRM refuses every connection: its two request messages fail three times each and go dead.
    let (crm, _, _) = super::requests::seed_requests(&server).await;
    // The shop refuses its one message once, then takes it.
    let (url, receiver) = fails_once().await;
    let body = json!({"name": "shop", "kind": "webhook", "url": url, "event_types": ["consent.*"]});
    let shop =
        crate::utils::str_of(&server.post("/v1/destinations", ADMIN_KEY, &body, 201).await["id"]).to_owned();
    server.record("alice", &crate::utils::grant("analytics", &[])).await;

    let mut v = Visitor::new(&server);
    sign_in(&mut v, &read).await;
    let cell = |list: &str, id: &str, column: &str| {
        let line = slice(list, &format!("href=\"/console/deliveries/{id}\""), "</tr>");
        slice(line, &format!("<td data-label=\"{column}\">"), "</td>")
            [format!("<td data-label=\"{column}\">").len()..]
            .to_owned()
    };
    // The hour's and the day's totals are read one after the other: an attempt recorded in between is in the
    // day's alone until the next look, so wait for the cells themselves.
    let mut list = String::new();
    for _ in 0..300 {
        list = v.get("/console/deliveries").await.text;
        if cell(&list, &crm, "Success, last hour") == "0.0 % of 6"
            && cell(&list, &shop, "Success, last hour") == "50.0 % of 2"
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(cell(&list, &crm, "Success, last hour"), "0.0 % of 6", "{list}");
    assert_eq!(cell(&list, &crm, "Success, last day"), "0.0 % of 6");
    assert_eq!(cell(&list, &shop, "Success, last hour"), "50.0 % of 2");

    // A destination's page: the success rate per minute of the last hour and per hour of the last day, as
    // SVG and as tables (60 and 24 rows); the recent failures with their coarse error below.
    let page = v.get(&format!("/console/deliveries/{crm}")).await;
    for (chart, rows) in [("success-hour", 60), ("success-day", 24)] {
        let figure = slice(&page.text, &format!("<figure class=\"chart\" id=\"chart-{chart}\""), "</figure>");
        assert!(slice(figure, "<svg", "</svg>").contains(">Successful attempts<"), "{chart}: the legend");
        let table = slice(figure, "<table", "</table>");
        assert_eq!(table.matches("<tr>").count(), rows + 1, "{chart}");
        assert!(table.contains("<td data-label=\"Successful attempts\">0.0 %</td>"), "{chart}: {table}");
        assert!(!table.contains("100.0 %") && !table.contains("50.0 %"), "{chart}: only failures");
    }
    let shop_page = v.get(&format!("/console/deliveries/{shop}?lang=de")).await;
    let day = slice(&shop_page.text, "<figure class=\"chart\" id=\"chart-success-day\"", "</figure>");
    assert!(day.contains("Erfolgreiche Zustellversuche, letzter Tag"), "{day}");
    let rates: Vec<&str> = day
        .split("<td data-label=\"Erfolgreiche Zustellversuche\">")
        .skip(1)
        .filter_map(|c| c.split("</td>").next())
        .filter(|c| *c != "–")
        .collect();
    // Both attempts fall in this hour, or (across an hour's end) one in each.
    assert!(rates == ["50.0 %"] || rates == ["0.0 %", "100.0 %"], "{rates:?}");
    receiver.abort();
}

both_backends!(delivery_success_rates_per_destination);

//! The audit page's latest signed checkpoints of the transparency log: newest first, ten a page, the
//! newest's signed note in full, older ones a page at a time.

use super::{server_with_keys, sign_in};
use crate::preferences::Visitor;
use crate::utils::{Backend, both_backends, grant};

/// The tree sizes in the page's checkpoint table, top to bottom.
fn sizes(page: &str) -> Vec<u64> {
    let Some(table) = page.split("id=\"checkpoints\"").nth(1).and_then(|t| t.split("</table>").next()) else {
        return vec![];
    };
    table
        .split("<th scope=\"row\"")
        .skip(1)
        .filter_map(|row| row.split('>').nth(1)?.split('<').next()?.parse().ok())
        .collect()
}

async fn the_latest_checkpoints_are_listed(backend: Backend) {
    let (server, read, _) = server_with_keys(backend).await;
    let mut v = Visitor::new(&server);
    sign_in(&mut v, &read).await;
    // One write after another, a moment apart, until the log holds more than ten checkpoints (writes that
    // commit together share one): bounded at 300 writes.
    let mut page = v.get("/console/keys").await;
    let mut written = 0;
    while !page.text.contains("/console/keys?before=") && written < 300 {
        server.record(&format!("cp-{written}"), &grant("analytics", &[])).await;
        written += 1;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        page = v.get("/console/keys").await;
    }
    // Signing follows the commits: wait (60 s at most) for the checkpoint of every event.
    for _ in 0..300 {
        if sizes(&page.text).first().is_some_and(|s| *s >= written) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        page = v.get("/console/keys").await;
    }
    assert_eq!(page.status, 200, "{}", page.text);
    let first = sizes(&page.text);
    let head = written;
    assert_eq!(first.first(), Some(&head), "the newest first: {first:?}");
    // Each write is answered with its own checkpoint, so there are more than ten: the page shows ten.
    assert!(first.len() == 10 && first.windows(2).all(|w| w[0] > w[1]), "{first:?}");
    assert!(page.text.contains(&format!("The signed note of the newest checkpoint ({head} events)")));
    let last = first[9];
    let link = format!("/console/keys?before={last}");
    assert!(page.text.contains(&format!("href=\"{link}\"")), "a link to older ones: {}", page.text);
    let older = sizes(&v.get(&link).await.text);
    assert!(!older.is_empty() && older.iter().all(|s| *s < last), "{older:?} after {first:?}");
    let german = v.get("/console/keys?lang=de").await;
    assert!(german.text.contains("Neueste signierte Prüfpunkte"), "{}", german.text);
}

both_backends!(the_latest_checkpoints_are_listed);

//! The writers of the delivery benchmark: keep-alive connections offering consent changes on a schedule
//! (open loop) or back to back, each answered write noted with its event's seq and times.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::task::JoinSet;

use crate::http1::Client;
use crate::node::post_request;
use crate::receivers::{CloudEventId, seq_of};
use crate::{GRANT_BODY, SUBJECTS, WITHDRAW_BODY, WRITERS, subject};

#[derive(Deserialize)]
struct Recorded {
    events: Vec<CloudEventId>,
}

/// One answered write.
#[derive(Debug, Clone, Copy)]
pub struct Write {
    pub seq: u64,
    /// When its slot was due, when it was sent, when its 201 had been read.
    pub due: Instant,
    pub sent: Instant,
    pub done: Instant,
}

#[derive(Default)]
pub struct LoadResult {
    pub writes: Vec<Write>,
    /// Non-201 answers; the first one's text.
    pub errors: u64,
    pub first_error: Option<String>,
    pub start: Option<Instant>,
}

/// Each subject's grant and withdraw requests.
pub fn requests(addr: SocketAddr) -> Vec<[Vec<u8>; 2]> {
    (0..SUBJECTS)
        .map(|s| {
            let path = format!("/v1/subjects/{}/consents", subject(s));
            [post_request(addr, &path, GRANT_BODY), post_request(addr, &path, WITHDRAW_BODY)]
        })
        .collect()
}

/// Writes slots `first .. first + count` (global numbering: slot `g` changes subject `g % SUBJECTS`, a
/// grant on even passes over the subjects and a withdrawal on odd ones), slot `k` of this run due `k / rate`
/// seconds after the start; `rate` `None` sends back to back (closed loop).
pub async fn load(
    addr: SocketAddr,
    requests: Arc<Vec<[Vec<u8>; 2]>>,
    first: u64,
    count: u64,
    rate: Option<f64>,
) -> Result<LoadResult, String> {
    let start = Instant::now() + Duration::from_millis(20);
    let next = Arc::new(AtomicU64::new(0));
    let mut set = JoinSet::new();
    for _ in 0..WRITERS {
        let (next, requests) = (Arc::clone(&next), Arc::clone(&requests));
        set.spawn(async move {
            let mut client = Client::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
            let mut out = LoadResult::default();
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    return Ok::<_, String>(out);
                }
                let due = match rate {
                    Some(r) => start + Duration::from_secs_f64(k as f64 / r),
                    None => start,
                };
                tokio::time::sleep_until(due.into()).await;
                let g = first + k;
                let request = &requests[(g % SUBJECTS) as usize][((g / SUBJECTS) & 1) as usize];
                let sent = Instant::now();
                let status = client.send(request).await.map_err(|e| format!("write: {e}"))?;
                let done = Instant::now();
                let seq = (status == 201)
                    .then(|| serde_json::from_slice::<Recorded>(client.body()).ok())
                    .flatten()
                    .and_then(|r| r.events.first().and_then(|e| seq_of(&e.id)));
                match seq {
                    Some(seq) => out.writes.push(Write { seq, due, sent, done }),
                    None => {
                        out.errors += 1;
                        if out.first_error.is_none() {
                            let body = String::from_utf8_lossy(client.body()).into_owned();
                            out.first_error = Some(format!("{status} {body}"));
                        }
                    }
                }
            }
        });
    }
    let mut all = LoadResult { start: Some(start), ..LoadResult::default() };
    while let Some(joined) = set.join_next().await {
        let part = joined.map_err(|e| e.to_string())??;
        all.writes.extend(part.writes);
        all.errors += part.errors;
        all.first_error = all.first_error.or(part.first_error);
    }
    all.writes.sort_by_key(|w| w.seq);
    Ok(all)
}

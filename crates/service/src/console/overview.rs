//! What the console's overview shows: per consent purpose, where people stand now (from the last tally of
//! the in-memory engine, which the consent gauges' worker keeps), and over a range of days what happened
//! (from the rollups, one indexed read of at most a year of day rows, never the ledger).
//!
//! Ranges are seven days, thirty days (one bucket a day) and twelve months (one bucket a calendar month,
//! so a chart and its table stay readable). A bucket's opt-in rate is the share of agreements among the
//! answers given in it (agreed, refused, withdrew); a bucket without answers has none. Checks per purpose
//! and how many were denied come from the day counters the check path's counts are written to
//! ([`super::checks`]).

use std::collections::HashMap;

use consentry_core::{Action, Reason, Timestamp};

use super::rollups::{GPC, day_of, start_of};
use crate::error::Result;
use crate::state::Services;

/// The span an overview covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    Week,
    Month,
    Year,
}

impl Range {
    pub const ALL: [Range; 3] = [Range::Week, Range::Month, Range::Year];

    /// Its form in an address (`?range=`).
    pub fn code(self) -> &'static str {
        match self {
            Range::Week => "7d",
            Range::Month => "30d",
            Range::Year => "12m",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.code() == text)
    }
}

/// One bucket of a range: the days `first..=last` (days since 1970-01-01, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub first: i64,
    pub last: i64,
}

impl Bucket {
    pub fn start(self) -> Timestamp {
        start_of(self.first)
    }
}

/// Where people stand on one consent purpose now: how many subjects a check of the whole purpose answers
/// each way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    pub purpose: String,
    pub agreed: u64,
    pub refused: u64,
    pub withdrew: u64,
    /// Expired, objected, restricted or opted out by Global Privacy Control.
    pub other: u64,
    pub never_answered: u64,
}

impl Standing {
    pub fn total(&self) -> u64 {
        self.agreed + self.refused + self.withdrew + self.other + self.never_answered
    }

    /// Agreed among everyone counted, in percent; none when no one is.
    pub fn opt_in_rate(&self) -> Option<f64> {
        let total = self.total();
        (total > 0).then(|| self.agreed as f64 * 100.0 / total as f64)
    }
}

/// One purpose's events per bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub purpose: String,
    pub grants: Vec<u64>,
    pub refusals: Vec<u64>,
    pub withdrawals: Vec<u64>,
    /// Checks the API answered for the purpose ([`super::checks`]), and how many of them were denied.
    pub checks: Vec<u64>,
    pub denied: Vec<u64>,
}

impl Series {
    /// Per bucket, agreements among the answers given in it, in percent.
    pub fn opt_in_rate(&self) -> Vec<Option<f64>> {
        (0..self.grants.len())
            .map(|i| {
                let answers = self.grants[i] + self.refusals[i] + self.withdrawals[i];
                (answers > 0).then(|| self.grants[i] as f64 * 100.0 / answers as f64)
            })
            .collect()
    }
}

/// Requests per bucket: received, completed (not rejected), and gone overdue (marked past their due date
/// while still open).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requests {
    pub received: Vec<u64>,
    pub completed: Vec<u64>,
    pub overdue: Vec<u64>,
}

/// The overview of one range.
#[derive(Debug, Clone)]
pub struct Overview {
    pub range: Range,
    pub buckets: Vec<Bucket>,
    pub standing: Vec<Standing>,
    pub series: Vec<Series>,
    /// Events the Global Privacy Control signal made, per bucket (every purpose together).
    pub gpc: Vec<u64>,
    /// Requests received, completed and gone overdue per bucket.
    pub requests: Requests,
    /// Open requests past their due date, and their pending tasks, now.
    pub overdue_requests: u64,
    pub overdue_tasks: u64,
    /// The last ledger position the rollups hold, and the ledger's head: the charts are this far along.
    pub counted_to: u64,
    pub ledger_head: u64,
}

/// The buckets of `range` ending on `today` (a day number), oldest first.
pub fn buckets(range: Range, today: i64) -> Vec<Bucket> {
    match range {
        Range::Week => (today - 6..=today).map(|d| Bucket { first: d, last: d }).collect(),
        Range::Month => (today - 29..=today).map(|d| Bucket { first: d, last: d }).collect(),
        Range::Year => {
            let date = start_of(today).to_offset().date();
            let (mut year, mut month) = (date.year(), u8::from(date.month()));
            let mut firsts = Vec::with_capacity(12);
            for _ in 0..12 {
                firsts.push(month_start(year, month));
                (year, month) = if month == 1 { (year - 1, 12) } else { (year, month - 1) };
            }
            firsts.reverse();
            let mut out: Vec<Bucket> =
                firsts.windows(2).map(|w| Bucket { first: w[0], last: w[1] - 1 }).collect();
            if let Some(&first) = firsts.last() {
                out.push(Bucket { first, last: today });
            }
            out
        }
    }
}

fn month_start(year: i32, month: u8) -> i64 {
    let month = time::Month::try_from(month).unwrap_or(time::Month::January);
    time::Date::from_calendar_date(year, month, 1)
        .map(|d| d.midnight().assume_utc())
        .map_or(0, |t| day_of(Timestamp::from_offset(t)))
}

fn standing(tally: &consentry_core::PurposeTally) -> Standing {
    let n = |r: Reason| tally.counts[r.index()];
    let counted: u64 = tally.counts.iter().sum();
    let agreed = n(Reason::Granted);
    let refused = n(Reason::Denied);
    let withdrew = n(Reason::Withdrawn);
    let never_answered = n(Reason::NoConsent);
    Standing {
        purpose: tally.purpose.clone(),
        agreed,
        refused,
        withdrew,
        other: counted - agreed - refused - withdrew - never_answered,
        never_answered,
    }
}

/// The overview of `range` ending today.
pub async fn overview(services: &Services, range: Range) -> Result<Overview> {
    overview_at(services, range, Timestamp::now()).await
}

/// The overview of `range` ending on the day of `now`.
pub async fn overview_at(services: &Services, range: Range, now: Timestamp) -> Result<Overview> {
    let buckets = buckets(range, day_of(now));
    let (first, last) = (buckets.first().map_or(0, |b| b.first), buckets.last().map_or(0, |b| b.last));
    // Before the rollups: a fold moves the cursor and its counts in one transaction, so the counts read after
    // include at least every event up to this cursor, and the page's "counting" note is never missing while
    // the charts it shows lack events (read after, a fold in between made it so).
    let counted_to = services.store.rollup_cursor().await?;
    let ledger_head = services.store.ledger_head().await?.events;
    let rows = services.store.rollups(first, last).await?;
    let standing: Vec<Standing> = services.metrics.consent_tallies().iter().map(standing).collect();
    let index = |day: i64| buckets.partition_point(|b| b.last < day);
    let mut series: Vec<Series> = Vec::new();
    let mut at: HashMap<String, usize> = HashMap::new();
    let empty = |purpose: &str| Series {
        purpose: purpose.to_owned(),
        grants: vec![0; buckets.len()],
        refusals: vec![0; buckets.len()],
        withdrawals: vec![0; buckets.len()],
        checks: vec![0; buckets.len()],
        denied: vec![0; buckets.len()],
    };
    for s in &standing {
        at.insert(s.purpose.clone(), series.len());
        series.push(empty(&s.purpose));
    }
    let mut gpc = vec![0; buckets.len()];
    for row in rows {
        let i = index(row.day);
        if i >= buckets.len() {
            continue;
        }
        if row.metric == GPC {
            gpc[i] += row.count;
            continue;
        }
        let Some(&s) = at.get(&row.purpose) else { continue };
        let target = match row.metric.as_str() {
            m if m == Action::Grant.as_str() => &mut series[s].grants,
            m if m == Action::Deny.as_str() => &mut series[s].refusals,
            m if m == Action::Withdraw.as_str() => &mut series[s].withdrawals,
            _ => continue,
        };
        target[i] += row.count;
    }
    for row in services.store.purpose_checks(first, last).await? {
        let i = index(row.day);
        let Some(&s) = at.get(&row.purpose) else { continue };
        if i < buckets.len() {
            series[s].checks[i] += row.checks;
            series[s].denied[i] += row.denied;
        }
    }
    let zeros = vec![0; buckets.len()];
    let mut requests = Requests { received: zeros.clone(), completed: zeros.clone(), overdue: zeros };
    for day in services.store.request_days(first, last).await? {
        let i = index(day.day);
        if i < buckets.len() {
            requests.received[i] += day.received;
            requests.completed[i] += day.completed;
            requests.overdue[i] += day.overdue;
        }
    }
    let (overdue_requests, overdue_tasks) = services.store.overdue_counts(now).await?;
    Ok(Overview {
        range,
        buckets,
        standing,
        series,
        gpc,
        requests,
        overdue_requests,
        overdue_tasks,
        counted_to,
        ledger_head,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_have_their_buckets() {
        let today = day_of(Timestamp::parse("2026-03-15T10:00:00Z").expect("time"));
        let week = buckets(Range::Week, today);
        assert_eq!((week.len(), week[6]), (7, Bucket { first: today, last: today }));
        assert_eq!(buckets(Range::Month, today).len(), 30);
        let year = buckets(Range::Year, today);
        assert_eq!(year.len(), 12);
        assert_eq!(year[0].start().to_string(), "2025-04-01T00:00:00.000000Z");
        assert_eq!(year[10].start().to_string(), "2026-02-01T00:00:00.000000Z");
        assert_eq!(year[10].last - year[10].first, 27, "February 2026 has 28 days");
        assert_eq!(
            year[11],
            Bucket { first: day_of(Timestamp::parse("2026-03-01T00:00:00Z").expect("t")), last: today }
        );
        assert!(year.windows(2).all(|w| w[0].last + 1 == w[1].first), "no gaps");
        for r in Range::ALL {
            assert_eq!(Range::parse(r.code()), Some(r));
        }
    }

    #[test]
    fn opt_in_rates() {
        let s = Series {
            purpose: "p".into(),
            grants: vec![3, 0],
            refusals: vec![1, 0],
            withdrawals: vec![0, 0],
            checks: vec![0, 0],
            denied: vec![0, 0],
        };
        assert_eq!(s.opt_in_rate(), [Some(75.0), None]);
        let now =
            Standing { purpose: "p".into(), agreed: 1, refused: 1, withdrew: 1, other: 0, never_answered: 1 };
        assert_eq!(now.opt_in_rate(), Some(25.0));
    }
}

//! The delivery benchmark's report: one line per phase (offered and achieved load, delivery latency,
//! losses, the group commits and dispatcher bursts behind them, the floor and CPU of the moment).

use std::time::Instant;

use crate::floor::Floor;
use crate::phases::{DrainEnd, PhaseResult, summarise};
use crate::{
    BURST_GAP, COMMAND, DRAIN_CAP, LATE, NO_SINK, PHASE_SECS, STALL, SUBJECTS, WARMUP_SECS, WRITERS,
};

/// Everything one run measured.
pub struct Measured {
    pub cpus: usize,
    /// Where the NATS phases ran, or why they were skipped.
    pub nats_note: String,
    /// The floor measured first, before anything else of the run.
    pub floor: Floor,
    /// The control, then each sink's phases.
    pub phases: Vec<PhaseResult>,
    /// Received bodies without an `evt_<seq>` id.
    pub unreadable: u64,
    /// Sinks whose phases could not complete, and why.
    pub problems: Vec<String>,
}

/// Prints the report of a run that began at `started`.
pub fn print(measured: Measured, started: Instant) {
    let Measured { cpus, nats_note, floor, phases, unreadable, problems } = measured;
    println!("consentry-server delivery benchmark; command: {COMMAND}");
    println!(
        "setup: loopback, {cpus} CPUs; server in-process on the embedded store (temp dir), runtime {cpus} workers; {WRITERS} open-loop writers on 1 thread; receivers on 1 thread; {SUBJECTS} subjects, 1 change per write, alternating grant/withdraw; {PHASE_SECS:.0} s per phase after a {WARMUP_SECS:.0} s warm-up per destination"
    );
    println!("{nats_note}");
    println!(
        "fsync floor: {:.0} durable single-row SQLite tx/s, commit p50 {:.2} ms, p99 {:.2} ms",
        floor.rate, floor.p50_ms, floor.p99_ms
    );
    println!(
        "latency = writer has read the 201 -> receiver has the event (matched by CloudEvent id); lost = not arrived when the wait ended"
    );
    println!(
        "{:<7} {:>7} {:>8} {:>5} {:>7} {:>7} {:>7} {:>4} {:>3} {:>5} {:>7} {:>5} {:>7} {:>5} {:>6} {:>5} {:>7} {:>9}  drain",
        "sink",
        "offered",
        "achieved",
        "writes",
        "p50 ms",
        "p99 ms",
        "max ms",
        "lost",
        "dup",
        "early",
        "w99 ms",
        "late",
        "commits",
        "ev/c",
        "bursts",
        "ev/b",
        "fsync/s",
        "cpu p/m"
    );
    for p in &phases {
        let s = summarise(p);
        let drain = match p.drain {
            DrainEnd::Complete(d) => format!("complete {:.0} ms after the last 201", d.as_secs_f64() * 1e3),
            DrainEnd::Stalled => format!("stalled ({} s without an arrival)", STALL.as_secs()),
            DrainEnd::Capped => format!("cut at {} s, still arriving", DRAIN_CAP.as_secs()),
            DrainEnd::NotExpected => "no destination (control)".to_owned(),
        };
        let delivery = if p.sink == NO_SINK {
            format!("{:>7} {:>7} {:>7} {:>4} {:>3} {:>5}", "-", "-", "-", "-", "-", "-")
        } else {
            format!(
                "{:>7.2} {:>7.2} {:>7.2} {:>4} {:>3} {:>5}",
                s.p50, s.p99, s.max, s.lost, s.duplicates, s.early
            )
        };
        println!(
            "{:<7} {:>5}/s {:>6.1}/s {:>6} {delivery} {:>7.2} {:>5} {:>7.0} {:>5.1} {:>6} {:>5.1} {:>7.0} {:>9}  {drain}",
            p.sink,
            p.rate,
            s.achieved,
            s.writes,
            s.write_p99,
            s.late,
            p.commits.1,
            p.commits.0 / p.commits.1.max(1.0),
            s.bursts,
            p.arrivals.len() as f64 / s.bursts.max(1) as f64,
            p.floor,
            p.cpu.map_or_else(|| "-".to_owned(), |(p, m)| format!("{p:.2}/{m:.2}")),
        );
        if p.load.errors > 0 || p.strays > 0 {
            println!(
                "        write errors {} (first: {}); arrivals of other events {}",
                p.load.errors,
                p.load.first_error.as_deref().unwrap_or("-"),
                p.strays
            );
        }
    }
    println!(
        "columns: w99 = write (request -> 201) p99; late = sends > {} ms behind schedule; commits, ev/c = ledger group commits in the phase, events per commit; bursts, ev/b = runs of arrivals without a {} ms gap (~ dispatcher rounds), events per run; fsync/s = the floor sampled just before the phase; cpu p/m = CPUs busy in this process / the whole machine",
        LATE.as_millis(),
        BURST_GAP.as_millis()
    );
    if unreadable > 0 {
        println!("{unreadable} received bodies had no evt_<seq> id");
    }
    for p in &problems {
        println!("{p}");
    }
    println!("total {:.0} s", started.elapsed().as_secs_f64());
    println!("total {:.0} s", started.elapsed().as_secs_f64());
}

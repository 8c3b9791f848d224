//! Runs `decide` a fixed number of times on the benchmark history, so a CPU-time counter
//! such as `perf stat -e task-clock` gives the cost per decision even on a busy machine.
//!
//! Usage: `decide_loop approve|defer|deny COUNT`. `approve` uses a history whose latest
//! contact is 40 days old, and `defer` one whose latest contact is 2 days old. `deny`
//! proposes content with a generic greeting to the `defer` history.

use std::hint::black_box;
use std::time::Instant;

use tact_domain::{Policy, decide};

#[path = "../benches/support/history.rs"]
mod history;

fn main() {
    let mut arguments = std::env::args().skip(1);
    let case = arguments.next().unwrap_or_else(|| "approve".to_owned());
    let count: u32 = arguments
        .next()
        .and_then(|text| text.parse().ok())
        .unwrap_or(1_000_000);
    let last_days_ago = if case == "approve" { 40 } else { 2 };

    let policy = Policy::default();
    let proposal = history::proposal(case == "deny");
    let view = history::history(last_days_ago);
    let kind = decide(&proposal, &view, &policy, history::now()).kind();

    let started = Instant::now();
    for _ in 0..count {
        black_box(decide(
            black_box(&proposal),
            black_box(&view),
            &policy,
            history::now(),
        ));
    }
    let elapsed = started.elapsed();
    let per_decision = elapsed.as_nanos() / u128::from(count.max(1));
    println!("{count} decisions ({kind}) in {elapsed:?} wall clock, {per_decision} ns each");
}

//! Throughput of `decide` on a customer with 50 past contacts and 20 signals.
//!
//! Run with `cargo bench -p tact-domain --bench decide`.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use tact_domain::{Channel, CustomerId, Policy, Proposal, Purpose, decide};

#[path = "support/history.rs"]
mod history;

use history::{history, now};

fn bench_decide(c: &mut Criterion) {
    let policy = Policy::default();
    let proposal = Proposal::new(CustomerId(1), Channel::EMAIL, Purpose::Value);
    let quiet = history(40);
    let busy = history(2);

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    group.bench_function("approve_50_contacts_20_signals", |b| {
        b.iter(|| decide(black_box(&proposal), black_box(&quiet), &policy, now()))
    });
    group.bench_function("defer_50_contacts_20_signals", |b| {
        b.iter(|| decide(black_box(&proposal), black_box(&busy), &policy, now()))
    });
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);

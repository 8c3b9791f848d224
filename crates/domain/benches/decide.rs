//! Throughput of `decide` on a customer with 50 past contacts and 20 signals.
//!
//! Run with `cargo bench -p tact-domain --bench decide`.

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use tact_domain::{Policy, decide};

#[path = "support/history.rs"]
mod history;

use history::{history, now, proposal};

fn bench_decide(c: &mut Criterion) {
    let policy = Policy::default();
    let newsletter = proposal(false);
    let generic = proposal(true);
    let quiet = history(40);
    let busy = history(2);

    let mut group = c.benchmark_group("decide");
    group.throughput(Throughput::Elements(1));
    group.bench_function("approve_50_contacts_20_signals", |b| {
        b.iter(|| decide(black_box(&newsletter), black_box(&quiet), &policy, now()))
    });
    group.bench_function("defer_50_contacts_20_signals", |b| {
        b.iter(|| decide(black_box(&newsletter), black_box(&busy), &policy, now()))
    });
    group.bench_function("deny_50_contacts_20_signals", |b| {
        b.iter(|| decide(black_box(&generic), black_box(&busy), &policy, now()))
    });
    group.finish();
}

criterion_group!(benches, bench_decide);
criterion_main!(benches);

//! `tact serve`: the daemon.

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::Context;
use crate::scheduler::{Scheduler, configured_channel};
use crate::server::{self, AppState};

/// Send latency buckets, in seconds.
const SEND_SECONDS_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 30.0];

/// Threads for database work. Each takes a connection lock, and the scheduler's work
/// shares one connection, so a few suffice. With tokio's default of 512, a thread started
/// for almost every store call under load, each with cold caches and fresh allocator pages.
const BLOCKING_THREADS: usize = 8;

/// How long a stopping daemon waits for its channel to close its connections (SMTP `QUIT`)
/// after the last send. A server that does not reply does not hold the stop up longer.
const CLOSE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

/// Runs the HTTP server and the scheduler until SIGTERM or Ctrl-C, then drains in-flight
/// sends and exits.
///
/// # Errors
///
/// Fails when the configuration lacks the API token or link key, the database cannot be
/// opened, or the address cannot be bound.
pub fn run(context: Context) -> anyhow::Result<ExitCode> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(BLOCKING_THREADS)
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve(context))?;
    Ok(ExitCode::SUCCESS)
}

fn install_metrics() -> anyhow::Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Full("tact_send_seconds".to_owned()),
            &SEND_SECONDS_BUCKETS,
        )?
        .install_recorder()
        .context("cannot install the metrics recorder")
}

async fn serve(context: Context) -> anyhow::Result<()> {
    let settings = context.settings.clone();
    let metrics = install_metrics()?;
    let shutdown = CancellationToken::new();
    let state = AppState::new(settings.clone(), context.clock.clone(), Some(metrics))?;
    let channel = configured_channel(&settings)?;
    let scheduler = Arc::new(Scheduler::new(
        settings.clone(),
        context.clock.clone(),
        channel.clone(),
        shutdown.clone(),
    )?);

    let listen = settings.config.http.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    // Tests and scripts read this line to find a port chosen by the system (port 0).
    println!("listening on http://{address}");
    std::io::stdout().flush()?;
    tracing::info!(%address, database = %settings.database.display(), "tact started");

    tokio::spawn(wait_for_signal(shutdown.clone()));
    let worker = tokio::spawn(scheduler.run());
    let served = server::serve(listener, state, shutdown.clone()).await;
    shutdown.cancel();
    worker.await.context("scheduler task failed")?;
    if tokio::time::timeout(CLOSE_TIMEOUT, channel.close())
        .await
        .is_err()
    {
        tracing::warn!(
            timeout_seconds = CLOSE_TIMEOUT.as_secs(),
            "the delivery channel did not close its connections in time; they are dropped"
        );
    }
    served?;
    tracing::info!("tact stopped");
    Ok(())
}

async fn wait_for_signal(shutdown: CancellationToken) {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(error) => {
                tracing::warn!(error = %error, "cannot watch SIGTERM; only Ctrl-C stops tact");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("stopping: finishing in-flight sends");
    shutdown.cancel();
}

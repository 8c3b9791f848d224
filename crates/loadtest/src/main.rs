//! `tact-loadtest`: sends `POST /api/v1/decisions` with `record: true` from many concurrent
//! clients for a fixed time, prints throughput, latency percentiles and errors, then reads
//! the database and checks that no customer got more contacts than the caps allow.
//!
//! ```text
//! tact-loadtest --url http://127.0.0.1:8025 --token "$TOKEN" --customers 100000 \
//!     --clients 64 --seconds 30 --database tact.db
//! ```
//!
//! Customers are `c1` … `cN`, as `tact-loadgen` writes them. Half of the requests go to
//! the first `--hot` customers, so concurrent bookings for the same customer are frequent.
//! `crates/loadtest/bench-http.sh` imports the customers, starts the daemon and runs this.

mod caps;

use anyhow::Context as _;
use clap::Parser;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Load test tact's decision API and check the caps afterwards.
#[derive(Debug, Parser)]
#[command(name = "tact-loadtest", version)]
struct Arguments {
    /// Base URL of the daemon; only loopback addresses are accepted.
    #[arg(long, default_value = "http://127.0.0.1:8025")]
    url: String,
    /// API token (`http.api_token`).
    #[arg(long, env = "TACT_HTTP_API_TOKEN")]
    token: String,
    /// Number of customers `c1` … `cN` in the database.
    #[arg(long, default_value_t = 100_000)]
    customers: u64,
    /// Customers that receive half of all requests.
    #[arg(long, default_value_t = 200)]
    hot: u64,
    /// Concurrent clients, each with one request in flight.
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Length of the run, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The daemon's database file, read after the run to check the caps.
    #[arg(long)]
    database: PathBuf,
    /// Minimum gap between two contacts of one customer, in seconds (`policy.min_gap`).
    #[arg(long, default_value_t = 86_400)]
    min_gap_s: i64,
    /// Maximum contacts of one customer per `--window-s` (`policy.overall.max`).
    #[arg(long, default_value_t = 8)]
    max_contacts: usize,
    /// Window of `--max-contacts`, in seconds (`policy.overall.per`).
    #[arg(long, default_value_t = 30 * 86_400)]
    window_s: i64,
}

/// The latencies, errors and approvals one client recorded.
#[derive(Debug, Default)]
struct ClientReport {
    latencies_us: Vec<u32>,
    errors: u64,
    approvals: u64,
    first_error: Option<String>,
}

/// A xorshift generator. Each client has its own seed, so it requests the same customers in
/// every run.
struct Random(u64);

impl Random {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % bound
    }
}

fn main() -> anyhow::Result<()> {
    let arguments = Arguments::parse();
    let host = arguments.url.trim_start_matches("http://");
    anyhow::ensure!(
        host.starts_with("127.0.0.1:")
            || host.starts_with("[::1]:")
            || host.starts_with("localhost:"),
        "--url {} is not a loopback address; this load generator only targets 127.0.0.1 or ::1",
        arguments.url
    );
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    let started = runtime.block_on(run_load(&arguments))?;
    let violations = caps::check(
        &arguments.database,
        started,
        arguments.min_gap_s,
        arguments.max_contacts,
        arguments.window_s,
    )?;
    println!("{violations}");
    anyhow::ensure!(violations.is_clean(), "caps were exceeded");
    Ok(())
}

/// Runs the clients and prints the figures; returns the start time in Unix milliseconds.
async fn run_load(arguments: &Arguments) -> anyhow::Result<i64> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(arguments.clients)
        .timeout(Duration::from_secs(10))
        .build()?;
    let url = format!("{}/api/v1/decisions", arguments.url.trim_end_matches('/'));
    let started_ms = unix_ms();
    let deadline = Instant::now() + Duration::from_secs(arguments.seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..arguments.clients {
        let client = client.clone();
        let url = url.clone();
        let token = arguments.token.clone();
        let (customers, hot) = (arguments.customers, arguments.hot.max(1));
        let seed = 0x9E37_79B9_7F4A_7C15_u64.wrapping_mul(index as u64 + 1);
        tasks.spawn(async move {
            run_client(
                &client,
                &url,
                &token,
                customers,
                hot,
                Random(seed),
                deadline,
            )
            .await
        });
    }
    let mut total = ClientReport::default();
    while let Some(report) = tasks.join_next().await {
        let report = report?;
        total.latencies_us.extend(report.latencies_us);
        total.errors += report.errors;
        total.approvals += report.approvals;
        total.first_error = total.first_error.or(report.first_error);
    }
    print_figures(&mut total, arguments);
    Ok(started_ms)
}

async fn run_client(
    client: &reqwest::Client,
    url: &str,
    token: &str,
    customers: u64,
    hot: u64,
    mut random: Random,
    deadline: Instant,
) -> ClientReport {
    let mut report = ClientReport::default();
    let purposes = ["value", "sales", "survey"];
    while Instant::now() < deadline {
        let customer = if random.below(2) == 0 {
            random.below(hot) + 1
        } else {
            random.below(customers) + 1
        };
        let purpose = purposes[random.below(3) as usize];
        let body = serde_json::json!({
            "customer": format!("c{customer}"),
            "channel": "email",
            "purpose": purpose,
            "record": true,
        });
        let sent = Instant::now();
        let response = client.post(url).bearer_auth(token).json(&body).send().await;
        let outcome = match response {
            Ok(response) if response.status().is_success() => response.text().await.ok(),
            Ok(response) => {
                report
                    .first_error
                    .get_or_insert(format!("HTTP {}", response.status()));
                None
            }
            Err(error) => {
                report.first_error.get_or_insert(error.to_string());
                None
            }
        };
        let elapsed = u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX);
        report.latencies_us.push(elapsed);
        match outcome {
            Some(text) if text.contains("\"decision\":\"approve\"") => report.approvals += 1,
            Some(_) => {}
            None => report.errors += 1,
        }
    }
    report
}

fn print_figures(total: &mut ClientReport, arguments: &Arguments) {
    total.latencies_us.sort_unstable();
    let count = total.latencies_us.len();
    let percentile = |share: f64| -> f64 {
        if count == 0 {
            return 0.0;
        }
        let index = ((count as f64 * share).ceil() as usize).clamp(1, count) - 1;
        f64::from(total.latencies_us[index]) / 1000.0
    };
    println!(
        "{count} requests from {} clients in {} s: {:.0} requests/s",
        arguments.clients,
        arguments.seconds,
        count as f64 / arguments.seconds as f64
    );
    println!(
        "latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        percentile(0.50),
        percentile(0.99),
        percentile(1.0)
    );
    println!(
        "{} approved and recorded, {} errors",
        total.approvals, total.errors
    );
    if let Some(error) = &total.first_error {
        println!("first error: {error}");
    }
}

#[allow(clippy::disallowed_methods)]
fn unix_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

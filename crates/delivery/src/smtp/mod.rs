//! The email channel: SMTP through lettre's async connection on tokio.
//!
//! lettre 0.11.23's own transport never sets `TCP_NODELAY`, so on a reused connection each
//! message waits for the peer's delayed ACK (about 40 ms on Linux loopback), its pool sends
//! a `NOOP` before every reuse, and it waits for each reply before the next command. This
//! channel opens the TCP stream itself with `TCP_NODELAY` set and hands it to lettre's
//! [`AsyncSmtpConnection`]. Messages wait in one queue for up to `pool_size` connection
//! workers ([`worker`]), which reuse their connection without a `NOOP` and pipeline the
//! commands of consecutive messages ([`session`]). The workers run on a thread of their
//! own ([`ConnectionThread`]), so a reply is read as soon as it arrives, however busy the
//! caller's runtime is with rendering and composing messages. A connection that the server
//! closed while idle fails before any message data is sent, so the message goes again once
//! on a new connection.

use async_trait::async_trait;
use lettre::transport::smtp::authentication::{Credentials, Mechanism};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::commands::Ehlo;
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use serde::Deserialize;
use std::fmt;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tact_domain::Channel as DomainChannel;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::message::{Composer, trim_message_end};
use session::{Content, Session};
use worker::Job;

mod session;
mod worker;
use crate::ratelimit::DomainLimiter;
use crate::{Channel, Error, MessageConfig, Ready, Receipt, SendError};

type SmtpError = lettre::transport::smtp::Error;

/// Transport security of the connection to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TlsMode {
    /// Plain text. Only for a server on the same host or a trusted network.
    None,
    /// Plain connection upgraded with `STARTTLS`; the send fails if the server does not
    /// offer it. Default port 587.
    #[default]
    Starttls,
    /// TLS from the first byte ("implicit TLS", SMTPS). Default port 465.
    Tls,
}

/// A per-domain rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Messages per second to one recipient domain.
    pub per_second: f64,
    /// Messages that may go out at once before the rate applies. Default 1.
    #[serde(default = "one")]
    pub burst: u32,
}

fn one() -> u32 {
    1
}

/// SMTP server settings, as in the `[smtp]` table of the configuration.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// The server's host name or IP address.
    pub host: String,
    /// The port. Default 25 for `none`, 587 for `starttls` and 465 for `tls`.
    #[serde(default)]
    pub port: Option<u16>,
    /// Transport security. Default `starttls`.
    #[serde(default)]
    pub tls: TlsMode,
    /// The user name for `AUTH` (PLAIN or LOGIN). No authentication when absent.
    #[serde(default)]
    pub username: Option<String>,
    /// The password for `AUTH`.
    #[serde(default)]
    pub password: Option<String>,
    /// Timeout of connecting and of each SMTP command, in seconds. Default 30.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// Maximum open connections, which is also the maximum of concurrent transactions.
    /// Default 4.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    /// A connection idle for this many seconds is closed with `QUIT`. Default 60.
    #[serde(default = "default_max_idle")]
    pub max_idle_seconds: u64,
    /// Limit per recipient domain. Default none.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Set `TCP_NODELAY` on plain and `STARTTLS` connections. Default true; turn it off only
    /// to measure its effect.
    #[serde(default = "default_true")]
    pub tcp_nodelay: bool,
    /// Send `MAIL`, `RCPT` and `DATA` in one write when the server offers `PIPELINING`
    /// (RFC 2920), which saves two round trips per message, and behind the previous
    /// message's data when a message is queued, which saves one more. Default true.
    #[serde(default = "default_true")]
    pub pipelining: bool,
    /// The name sent with `EHLO`. Default the host's name.
    #[serde(default)]
    pub hello_name: Option<String>,
    /// A PEM file of extra root certificates to trust, for a server with a private CA.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_timeout() -> u64 {
    30
}

fn default_pool_size() -> usize {
    4
}

fn default_max_idle() -> u64 {
    60
}

fn default_true() -> bool {
    true
}

impl SmtpConfig {
    /// Settings for `host` and `port` with every other field at its default.
    pub fn new(host: impl Into<String>, port: u16, tls: TlsMode) -> SmtpConfig {
        SmtpConfig {
            host: host.into(),
            port: Some(port),
            tls,
            username: None,
            password: None,
            timeout_seconds: default_timeout(),
            pool_size: default_pool_size(),
            max_idle_seconds: default_max_idle(),
            rate_limit: None,
            tcp_nodelay: true,
            pipelining: true,
            hello_name: None,
            ca_file: None,
        }
    }

    /// The port, or the default of the TLS mode.
    pub fn effective_port(&self) -> u16 {
        self.port.unwrap_or(match self.tls {
            TlsMode::None => 25,
            TlsMode::Starttls => 587,
            TlsMode::Tls => 465,
        })
    }
}

impl fmt::Debug for SmtpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SmtpConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("timeout_seconds", &self.timeout_seconds)
            .field("pool_size", &self.pool_size)
            .field("max_idle_seconds", &self.max_idle_seconds)
            .field("rate_limit", &self.rate_limit)
            .field("tcp_nodelay", &self.tcp_nodelay)
            .field("pipelining", &self.pipelining)
            .field("hello_name", &self.hello_name)
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

/// Sends email over SMTP with a bounded pool of reused connections. Delivers approvals for
/// the `email` channel.
pub struct EmailChannel {
    server: Arc<Server>,
    /// Runs the connection workers; stops them when the channel is dropped.
    _thread: ConnectionThread,
    /// The queue's sending end; `None` once the channel is closed.
    queue: Mutex<Option<mpsc::UnboundedSender<Job>>>,
    composer: Composer,
    limiter: Option<DomainLimiter>,
    kind: DomainChannel,
}

/// The SMTP server's settings and the state its connection workers share.
struct Server {
    config: SmtpConfig,
    port: u16,
    timeout: Duration,
    hello: ClientId,
    tls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    /// The queue's receiving end, held by the worker that waits for the next message.
    jobs: tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    /// Running workers, at most `pool_size`.
    workers: AtomicUsize,
    /// Workers that wait for a message or are about to.
    available: AtomicUsize,
    /// Notified whenever a worker stops.
    stopped: Notify,
    /// The runtime of the channel's [`ConnectionThread`], which the workers are spawned on.
    runtime: tokio::runtime::Handle,
}

/// A thread with a single-threaded runtime for the connection workers.
///
/// A connection carries one message per round trip, and each round trip ends with its
/// worker reading the reply and writing the next message. On the caller's runtime, that
/// worker waited behind the tasks that render and compose messages, which at thousands of
/// messages per second are most of the runtime's work, and the connections sat idle
/// meanwhile. On this thread the worker runs as soon as the reply arrives.
struct ConnectionThread {
    /// Dropping it ends the thread, which drops the runtime and any worker still on it.
    _stop: oneshot::Sender<()>,
}

impl ConnectionThread {
    /// Starts the thread and returns it with a handle to its runtime. The runtime is built
    /// and dropped on the thread itself, never on the caller's, which may be inside another
    /// runtime where dropping one panics.
    fn start() -> Result<(ConnectionThread, tokio::runtime::Handle), Error> {
        let (stop, stopped) = oneshot::channel::<()>();
        let (handle_sender, handle) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("tact-smtp".to_owned())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                match runtime {
                    Ok(runtime) => {
                        let _ = handle_sender.send(Ok(runtime.handle().clone()));
                        // Returns when the channel drops `stop`.
                        let _ = runtime.block_on(stopped);
                    }
                    Err(error) => {
                        let _ = handle_sender.send(Err(error));
                    }
                }
            })
            .map_err(Error::Thread)?;
        let handle = handle
            .recv()
            .map_err(|_| Error::Thread(std::io::Error::other("the thread ended at its start")))?
            .map_err(Error::Thread)?;
        Ok((ConnectionThread { _stop: stop }, handle))
    }
}

impl fmt::Debug for EmailChannel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailChannel")
            .field("config", &self.server.config)
            .field("composer", &self.composer)
            .finish_non_exhaustive()
    }
}

impl EmailChannel {
    /// Validates the settings and starts the thread that runs the connections, which are
    /// opened on the first send.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] for a pool size of 0, a zero timeout, a rate limit that is
    /// not positive, a password without a user name, or an unreadable `ca_file`,
    /// [`Error::Thread`] when the thread cannot start, and the errors of [`Composer::new`].
    pub fn new(config: SmtpConfig, message: &MessageConfig) -> Result<EmailChannel, Error> {
        check_config(&config)?;
        let tls = match config.tls {
            TlsMode::None => None,
            TlsMode::Starttls | TlsMode::Tls => Some(tls_parameters(&config)?),
        };
        let credentials = config.username.as_ref().map(|user| {
            Credentials::new(user.clone(), config.password.clone().unwrap_or_default())
        });
        let hello = config
            .hello_name
            .clone()
            .map_or_else(ClientId::default, ClientId::Domain);
        let (queue, jobs) = mpsc::unbounded_channel();
        let (thread, runtime) = ConnectionThread::start()?;
        Ok(EmailChannel {
            _thread: thread,
            composer: Composer::new(message)?,
            limiter: config
                .rate_limit
                .map(|limit| DomainLimiter::new(limit.per_second, limit.burst)),
            kind: DomainChannel::EMAIL,
            queue: Mutex::new(Some(queue)),
            server: Arc::new(Server {
                port: config.effective_port(),
                timeout: Duration::from_secs(config.timeout_seconds),
                hello,
                tls,
                credentials,
                jobs: tokio::sync::Mutex::new(jobs),
                workers: AtomicUsize::new(0),
                available: AtomicUsize::new(0),
                stopped: Notify::new(),
                runtime,
                config,
            }),
        })
    }

    fn lock_queue(&self) -> std::sync::MutexGuard<'_, Option<mpsc::UnboundedSender<Job>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a message for the next free connection and waits for the server's reply.
    async fn submit(
        &self,
        envelope: lettre::address::Envelope,
        content: Content,
    ) -> Result<Response, SendError> {
        let (reply, response) = oneshot::channel();
        let closed = || {
            self.server
                .connection_error("the channel is closed".into(), None)
        };
        {
            let queue = self.lock_queue();
            let queue = queue.as_ref().ok_or_else(closed)?;
            let job = Job {
                envelope,
                content,
                reply,
            };
            queue.send(job).map_err(|_| closed())?;
        }
        // A worker counts itself available before it replies to its last message, and every
        // waiting worker takes from the queue, so a message queued while one is available
        // needs no new worker. A worker that panics stops without taking it, so the wait
        // starts a replacement whenever a worker stops.
        tokio::pin!(response);
        loop {
            let stopped = self.server.stopped.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if self.server.available.load(Ordering::SeqCst) == 0 {
                self.server.start_worker();
            }
            tokio::select! {
                replied = &mut response => {
                    return replied.map_err(|_| {
                        self.server
                            .connection_error("the connection's worker stopped".into(), None)
                    })?;
                }
                () = stopped => {}
            }
        }
    }

    async fn wait_for_rate_limit(&self, domain: &str) {
        if let Some(limiter) = &self.limiter {
            let wait = limiter.reserve(domain, Instant::now());
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

impl Server {
    /// Starts a worker unless `pool_size` are running.
    fn start_worker(self: &Arc<Self>) {
        let mut running = self.workers.load(Ordering::SeqCst);
        while running < self.config.pool_size {
            let started = self.workers.compare_exchange(
                running,
                running + 1,
                Ordering::SeqCst,
                Ordering::SeqCst,
            );
            match started {
                Ok(_) => {
                    self.runtime.spawn(worker::run(Arc::clone(self)));
                    return;
                }
                Err(now) => running = now,
            }
        }
    }

    async fn timed<T>(
        &self,
        future: impl Future<Output = Result<T, SmtpError>>,
    ) -> Result<T, TimedError> {
        match tokio::time::timeout(self.timeout, future).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(TimedError::Smtp(error)),
            Err(_) => Err(TimedError::Elapsed),
        }
    }

    async fn connect(&self) -> Result<Session, SendError> {
        let host = self.config.host.as_str();
        let mut connection = match (self.config.tls, &self.tls) {
            (TlsMode::Tls, Some(tls)) => {
                // NOTE: implicit TLS uses lettre's own connect, which does not set
                // TCP_NODELAY, because lettre offers no way to start a session on a TLS
                // stream opened elsewhere.
                let connect = AsyncSmtpConnection::connect_tokio1(
                    (host, self.port),
                    Some(self.timeout),
                    &self.hello,
                    Some(tls.clone()),
                    None,
                );
                self.timed(connect).await.map_err(|e| self.setup_error(e))?
            }
            _ => self.connect_plain().await?,
        };
        if let (TlsMode::Starttls, Some(tls)) = (self.config.tls, &self.tls) {
            let upgrade = connection.starttls(tls.clone(), &self.hello);
            self.timed(upgrade).await.map_err(|e| self.setup_error(e))?;
        }
        let pipelining = self.config.pipelining && self.offers_pipelining(&mut connection).await?;
        if let Some(credentials) = &self.credentials {
            let auth = connection.auth(&[Mechanism::Plain, Mechanism::Login], credentials);
            self.timed(auth).await.map_err(|e| self.setup_error(e))?;
        }
        Ok(Session {
            connection,
            pipelining,
        })
    }

    /// Sends `EHLO` again to read the `PIPELINING` keyword, which lettre does not keep.
    /// This runs before `AUTH`, because `EHLO` after it would reset the session.
    async fn offers_pipelining(
        &self,
        connection: &mut AsyncSmtpConnection,
    ) -> Result<bool, SendError> {
        let ehlo = connection.command(Ehlo::new(self.hello.clone()));
        let response = self.timed(ehlo).await.map_err(|e| self.setup_error(e))?;
        Ok(response.message().skip(1).any(|line| {
            let keyword = line.split_whitespace().next().unwrap_or("");
            keyword.eq_ignore_ascii_case("PIPELINING")
        }))
    }

    async fn connect_plain(&self) -> Result<AsyncSmtpConnection, SendError> {
        let host = self.config.host.as_str();
        let stream = tokio::time::timeout(self.timeout, TcpStream::connect((host, self.port)))
            .await
            .map_err(|_| self.timeout_error())?
            .map_err(|error| self.connection_error(error.to_string(), None))?;
        stream
            .set_nodelay(self.config.tcp_nodelay)
            .map_err(|error| self.connection_error(error.to_string(), None))?;
        let greet = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello);
        self.timed(greet).await.map_err(|e| self.setup_error(e))
    }

    fn stage_error(&self, stage: &'static str, error: TimedError) -> SendError {
        match error {
            TimedError::Elapsed => self.timeout_error(),
            TimedError::Smtp(error) => match error.status() {
                Some(code) if error.is_transient() || error.is_permanent() => SendError::Rejected {
                    host: self.config.host.clone(),
                    stage,
                    code: code.into(),
                    reply: reply_text(&error),
                },
                _ if error.is_timeout() => self.timeout_error(),
                _ => self.connection_error(describe(&error), None),
            },
        }
    }

    fn setup_error(&self, error: TimedError) -> SendError {
        match error {
            TimedError::Elapsed => self.timeout_error(),
            TimedError::Smtp(error) if error.is_timeout() => self.timeout_error(),
            TimedError::Smtp(error) => {
                let code = error.status().map(u16::from);
                self.connection_error(describe(&error), code)
            }
        }
    }

    fn timeout_error(&self) -> SendError {
        SendError::Timeout {
            host: self.config.host.clone(),
            after: self.timeout,
        }
    }

    fn connection_error(&self, detail: String, code: Option<u16>) -> SendError {
        SendError::Connection {
            host: self.config.host.clone(),
            detail,
            code,
        }
    }
}

enum TimedError {
    Smtp(SmtpError),
    Elapsed,
}

#[async_trait]
impl Channel for EmailChannel {
    fn kind(&self) -> &DomainChannel {
        &self.kind
    }

    /// Sends the messages already queued, then closes every connection with `QUIT`.
    /// Returns once the last one is closed; later sends fail.
    async fn close(&self) {
        drop(self.lock_queue().take());
        loop {
            let stopped = self.server.stopped.notified();
            tokio::pin!(stopped);
            stopped.as_mut().enable();
            if self.server.workers.load(Ordering::SeqCst) == 0 {
                return;
            }
            stopped.await;
        }
    }

    async fn deliver(&self, ready: Ready<'_>) -> Result<Receipt, SendError> {
        let email = self
            .composer
            .compose(ready)
            .map_err(SendError::InvalidMessage)?;
        let envelope = email.envelope().clone();
        if let Some(recipient) = envelope.to().first() {
            self.wait_for_rate_limit(recipient.domain()).await;
        }
        let formatted = email.formatted();
        let content = Content::new(trim_message_end(&formatted));
        let response = self.submit(envelope, content).await?;
        let lines: Vec<&str> = response.message().collect();
        let reply = format!("{} {}", u16::from(response.code()), lines.join(" "));
        tracing::debug!(delivery.id = ready.message().delivery().0, smtp.reply = %reply,
            "message accepted");
        Ok(Receipt {
            message_id: self.composer.message_id(ready.message()),
            reply,
        })
    }
}

fn check_config(config: &SmtpConfig) -> Result<(), Error> {
    let invalid = |key, reason: &str| {
        Err(Error::InvalidConfig {
            key,
            reason: reason.to_owned(),
        })
    };
    if config.pool_size == 0 {
        return invalid("smtp.pool_size", "use at least 1 connection");
    }
    if config.timeout_seconds == 0 {
        return invalid("smtp.timeout_seconds", "use at least 1 second");
    }
    if config.password.is_some() && config.username.is_none() {
        return invalid(
            "smtp.username",
            "a password is set, so set the user name too",
        );
    }
    if let Some(limit) = config.rate_limit {
        if !(limit.per_second.is_finite() && limit.per_second > 0.0) {
            return invalid("smtp.rate_limit.per_second", "use a positive number");
        }
    }
    Ok(())
}

fn tls_parameters(config: &SmtpConfig) -> Result<TlsParameters, Error> {
    let mut builder = TlsParameters::builder(config.host.clone());
    if let Some(path) = &config.ca_file {
        let pem = std::fs::read(path).map_err(|error| Error::InvalidConfig {
            key: "smtp.ca_file",
            reason: format!("cannot read {}: {error}", path.display()),
        })?;
        let certificate = Certificate::from_pem(&pem).map_err(|error| Error::InvalidConfig {
            key: "smtp.ca_file",
            reason: format!("{} is not a PEM certificate: {error}", path.display()),
        })?;
        builder = builder.add_root_certificate(certificate);
    }
    builder.build().map_err(|error| Error::InvalidConfig {
        key: "smtp.tls",
        reason: describe(&error),
    })
}

/// Whether an error came from the network rather than from a server reply.
fn is_network(error: &SmtpError) -> bool {
    !error.is_response() && !error.is_transient() && !error.is_permanent() && !error.is_client()
}

/// Returns whether the server closed the connection: a network error, the end of the
/// stream (which lettre reports as an incomplete response), or `421`. With `421` a server
/// announces that it closes the connection (RFC 5321, section 3.8), for example after an
/// idle timeout.
fn closed_by_server(error: &SmtpError) -> bool {
    is_network(error)
        || error.is_response()
        || error.status().is_some_and(|code| u16::from(code) == 421)
}

fn reply_text(error: &SmtpError) -> String {
    std::error::Error::source(error).map_or_else(String::new, ToString::to_string)
}

fn describe(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

//! The connection workers: each owns at most one SMTP connection and sends the queued
//! messages on it one transaction after another.
//!
//! A worker takes the next message from the shared queue while the current one's content
//! is still to be written, so on a busy pool the next transaction's commands travel with
//! the current content (see [`super::session`]). Workers start on demand, up to the pool
//! size, when a message is queued while none waits for work, and again when a worker stops
//! while a send still waits, which only a panic makes it do. A worker closes its
//! connection with `QUIT` once it has been idle for `max_idle_seconds`, and stops when the
//! channel is closed and the queue is empty.

use lettre::address::Envelope;
use lettre::transport::smtp::response::Response;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

use super::Server;
use super::session::{Content, NotOpened, Session};
use crate::SendError;

/// One message waiting for a connection.
pub(super) struct Job {
    pub(super) envelope: Envelope,
    pub(super) content: Content,
    pub(super) reply: oneshot::Sender<Result<Response, SendError>>,
}

impl Job {
    /// Returns whether the send that queued the message stopped waiting for it, for
    /// example because the daemon aborted it at shutdown. Such a message must not be sent.
    fn abandoned(&self) -> bool {
        self.reply.is_closed()
    }
}

/// A queued message's reply, sent once the worker is ready for more work.
type Reply = (
    oneshot::Sender<Result<Response, SendError>>,
    Result<Response, SendError>,
);

/// The state that serving one message leaves behind.
struct Served {
    /// The connection, when it can carry another transaction.
    session: Option<Session>,
    /// A message taken from the queue during the transaction, and whether its
    /// transaction is already open on `session`.
    carried: Option<(Job, bool)>,
    replies: Vec<Reply>,
}

/// A worker's registration in the server's counts, undone when the worker ends, including
/// when it panics or its runtime drops it.
struct Registration {
    server: Arc<Server>,
    available: bool,
}

impl Registration {
    fn set_available(&mut self, available: bool) {
        if self.available != available {
            self.available = available;
            if available {
                self.server.available.fetch_add(1, Ordering::SeqCst);
            } else {
                self.server.available.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.set_available(false);
        self.server.workers.fetch_sub(1, Ordering::SeqCst);
        self.server.stopped.notify_waiters();
    }
}

/// Runs one worker until the queue is closed and empty. The caller has counted it in
/// `server.workers`.
pub(super) async fn run(server: Arc<Server>) {
    let mut registration = Registration {
        server: Arc::clone(&server),
        available: false,
    };
    let mut session: Option<Session> = None;
    let mut idle_since = Instant::now();
    let mut carried: Option<(Job, bool)> = None;
    loop {
        let (job, opened) = match carried.take() {
            Some(carried) => carried,
            None => {
                let next = server
                    .next_job(&mut registration, &mut session, idle_since)
                    .await;
                match next {
                    Some(job) => (job, false),
                    None => break,
                }
            }
        };
        let served = server.serve(job, session.take(), opened).await;
        session = served.session;
        carried = served.carried;
        idle_since = Instant::now();
        // Counted as available before replying, so that a caller who queues its next
        // message right after the reply finds this worker instead of starting another.
        if carried.is_none() {
            registration.set_available(true);
        }
        for (reply, result) in served.replies {
            // A caller that stopped waiting no longer needs the reply.
            let _ = reply.send(result);
        }
    }
    if let Some(mut session) = session {
        let _ = server.timed(session.connection.quit()).await;
    }
}

impl Server {
    /// Waits for the next message that someone still waits for. Closes the connection with
    /// `QUIT` once it has been idle for `max_idle_seconds`. Returns `None` when the channel
    /// is closed and the queue is empty.
    async fn next_job(
        &self,
        registration: &mut Registration,
        session: &mut Option<Session>,
        idle_since: Instant,
    ) -> Option<Job> {
        registration.set_available(true);
        let max_idle = Duration::from_secs(self.config.max_idle_seconds);
        loop {
            let wait = async { self.jobs.lock().await.recv().await };
            let job = match session {
                Some(open) => {
                    let left = max_idle.saturating_sub(idle_since.elapsed());
                    match tokio::time::timeout(left, wait).await {
                        Ok(job) => job,
                        Err(_) => {
                            let _ = self.timed(open.connection.quit()).await;
                            *session = None;
                            continue;
                        }
                    }
                }
                None => wait.await,
            };
            match job {
                Some(job) if job.abandoned() => continue,
                Some(job) => {
                    registration.set_available(false);
                    return Some(job);
                }
                None => return None,
            }
        }
    }

    /// Takes the next queued message without waiting, unless an idle worker has locked the
    /// queue to wait for one.
    fn try_next_job(&self) -> Option<Job> {
        let mut jobs = self.jobs.try_lock().ok()?;
        loop {
            let job = jobs.try_recv().ok()?;
            if !job.abandoned() {
                return Some(job);
            }
        }
    }

    /// Sends `job` on `session` (or on a new connection), taking the next queued message
    /// along when the server pipelines. `opened` is true when `job`'s transaction is
    /// already open on `session`.
    async fn serve(&self, job: Job, session: Option<Session>, opened: bool) -> Served {
        let mut served = Served {
            session: None,
            carried: None,
            replies: Vec::new(),
        };
        if job.abandoned() {
            // After `DATA` was accepted, only dropping the connection ends the transaction.
            served.session = if opened { None } else { session };
            return served;
        }
        let (mut session, mut reused) = match session {
            Some(session) => (session, true),
            None => match self.connect().await {
                Ok(session) => (session, false),
                Err(error) => {
                    served.replies.push((job.reply, Err(error)));
                    return served;
                }
            },
        };
        if !opened {
            loop {
                match self.open(&mut session, &job.envelope, reused).await {
                    Ok(()) => break,
                    Err(NotOpened::Stale(detail)) => {
                        tracing::debug!(smtp.host = %self.config.host, error = %detail,
                            "reused SMTP connection was closed; reconnecting");
                        match self.connect().await {
                            Ok(fresh) => (session, reused) = (fresh, false),
                            Err(error) => {
                                served.replies.push((job.reply, Err(error)));
                                return served;
                            }
                        }
                    }
                    Err(NotOpened::Failed { error, reusable }) => {
                        served.replies.push((job.reply, Err(error)));
                        if reusable {
                            served.session = self.recover(session).await;
                        }
                        return served;
                    }
                }
            }
            if job.abandoned() {
                return served;
            }
        }

        let next = match job.content {
            Content::Block(_) if session.pipelining => self.try_next_job(),
            _ => None,
        };
        let finished = self
            .finish(
                &mut session,
                &job.content,
                next.as_ref().map(|next| &next.envelope),
            )
            .await;
        served.replies.push((job.reply, finished.result));
        let keep = finished.reusable;
        match (next, finished.next) {
            (Some(next), Some(Ok(()))) => served.carried = Some((next, true)),
            (Some(next), Some(Err(NotOpened::Stale(detail)))) => {
                tracing::debug!(smtp.host = %self.config.host, error = %detail,
                    "SMTP connection failed before the next message's data; reconnecting");
                served.carried = Some((next, false));
                return served;
            }
            (Some(next), Some(Err(NotOpened::Failed { error, reusable }))) => {
                served.replies.push((next.reply, Err(error)));
                if reusable {
                    served.session = self.recover(session).await;
                }
                return served;
            }
            (Some(next), None) => served.carried = Some((next, false)),
            (None, _) => {}
        }
        if keep && !session.connection.has_broken() {
            served.session = Some(session);
        } else if let Some((_, opened)) = &mut served.carried {
            *opened = false;
        }
        served
    }
}

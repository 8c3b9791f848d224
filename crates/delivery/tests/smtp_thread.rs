//! The email channel's connection thread against SMTP servers that fail: one that accepts
//! TCP and never replies, and one that closes the connection after reading a message's
//! data. Both servers are written here, listen on 127.0.0.1 and stop when dropped.
//!
//! The tests count the threads named `tact-smtp` in this process, so they take
//! [`SERIAL`] and run one at a time.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tact_delivery::{Channel, EmailChannel, Outgoing, SmtpConfig, TlsMode};

mod common;
use common::{message_config, now};

static SERIAL: Mutex<()> = Mutex::new(());

/// How the test server treats each connection.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Accepts the connection and never writes to it.
    Silent,
    /// Replies up to `DATA`, reads the message data and closes without a reply.
    CloseAfterData,
}

/// A test SMTP server on 127.0.0.1 that serves connections on threads of its own.
struct FaultyServer {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Messages whose data, up to the terminating `.`, the server read.
    data_received: Arc<AtomicUsize>,
    connections: Arc<AtomicUsize>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultyServer {
    fn start(behaviour: Behaviour) -> FaultyServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let data_received = Arc::new(AtomicUsize::new(0));
        let connections = Arc::new(AtomicUsize::new(0));
        let acceptor = {
            let (stop, data_received, connections) =
                (stop.clone(), data_received.clone(), connections.clone());
            std::thread::spawn(move || {
                let mut open = Vec::new();
                // Bounded: at most 60 s of 10 ms polls.
                for _ in 0..6000 {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match listener.accept() {
                        Ok((stream, _)) => {
                            connections.fetch_add(1, Ordering::SeqCst);
                            stream.set_nonblocking(false).unwrap();
                            match behaviour {
                                Behaviour::Silent => open.push(stream),
                                Behaviour::CloseAfterData => {
                                    let data_received = data_received.clone();
                                    std::thread::spawn(move || {
                                        let _ = serve_until_data(stream, &data_received);
                                    });
                                }
                            }
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(10)),
                    }
                }
                drop(open);
            })
        };
        FaultyServer {
            port,
            stop,
            data_received,
            connections,
            acceptor: Some(acceptor),
        }
    }

    fn channel(&self, pool_size: usize, timeout_seconds: u64) -> EmailChannel {
        let mut config = SmtpConfig::new("127.0.0.1", self.port, TlsMode::None);
        config.hello_name = Some("client.test".into());
        config.timeout_seconds = timeout_seconds;
        config.pool_size = pool_size;
        EmailChannel::new(config, &message_config()).unwrap()
    }
}

impl Drop for FaultyServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Speaks SMTP up to the end of the first message's data, then closes the connection.
fn serve_until_data(stream: TcpStream, data_received: &AtomicUsize) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    writer.write_all(b"220 faulty.test ESMTP\r\n")?;
    let mut line = String::new();
    // Bounded: a session of at most 1,000 command lines.
    for _ in 0..1000 {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let command = line.trim_end().to_ascii_uppercase();
        if command.starts_with("EHLO") {
            writer.write_all(b"250-faulty.test\r\n250 8BITMIME\r\n")?;
        } else if command.starts_with("DATA") {
            writer.write_all(b"354 go ahead\r\n")?;
            // Bounded: at most 100,000 lines of message data.
            for _ in 0..100_000 {
                line.clear();
                if reader.read_line(&mut line)? == 0 {
                    return Ok(());
                }
                if line == ".\r\n" {
                    data_received.fetch_add(1, Ordering::SeqCst);
                    // Closes without a reply, so the client cannot know the outcome.
                    return Ok(());
                }
            }
            return Ok(());
        } else if command.starts_with("QUIT") {
            writer.write_all(b"221 bye\r\n")?;
            return Ok(());
        } else {
            writer.write_all(b"250 ok\r\n")?;
        }
    }
    Ok(())
}

/// Counts the threads of this process named `tact-smtp`.
fn smtp_threads() -> usize {
    let mut count = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap() {
        let comm = std::fs::read_to_string(task.unwrap().path().join("comm")).unwrap_or_default();
        if comm.trim_end() == "tact-smtp" {
            count += 1;
        }
    }
    count
}

/// Waits up to `limit` for the `tact-smtp` threads to number `expected`, and returns the
/// last count.
fn wait_for_smtp_threads(expected: usize, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    loop {
        let count = smtp_threads();
        if count == expected || Instant::now() >= deadline {
            return count;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Builds a message to customer `id`, as the channel's callers hand it over.
fn outgoing(id: i64) -> Outgoing {
    common::outgoing(id, "Ann", &format!("ann{id}@example.com"), "Tips")
}

#[test]
fn dropped_channels_end_their_threads() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = FaultyServer::start(Behaviour::Silent);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let before = smtp_threads();

    for round in 0..20 {
        let pool_size = if round % 2 == 0 { 1 } else { 8 };
        let channel = server.channel(pool_size, 30);
        // Each send gives up while its worker still waits for the greeting, so the
        // channel is dropped with workers running on its thread.
        runtime.block_on(async {
            for id in 0..pool_size as i64 {
                let message = outgoing(id);
                let send = channel.send(&message, now());
                let gave_up = tokio::time::timeout(Duration::from_millis(10), send).await;
                assert!(gave_up.is_err(), "a silent server accepted a message");
            }
        });
        assert!(
            smtp_threads() > before,
            "no tact-smtp thread while the channel lives"
        );
        drop(channel);
    }

    let after = wait_for_smtp_threads(before, Duration::from_secs(5));
    assert_eq!(after, before, "tact-smtp threads left running");
    drop(runtime);
}

#[test]
fn silent_server_times_out_each_send() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = FaultyServer::start(Behaviour::Silent);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let channel = Arc::new(server.channel(2, 1));

    let started = Instant::now();
    let results = runtime.block_on(async {
        let mut sends = tokio::task::JoinSet::new();
        for id in 0..4 {
            let channel = Arc::clone(&channel);
            sends.spawn(async move {
                let message = outgoing(id);
                let send = channel.send(&message, now());
                tokio::time::timeout(Duration::from_secs(20), send).await
            });
        }
        sends.join_all().await
    });

    for result in results {
        let error = result
            .expect("send hung past the SMTP timeout")
            .unwrap_err();
        assert!(error.is_transient(), "{error}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    drop(channel);
    assert_eq!(wait_for_smtp_threads(0, Duration::from_secs(5)), 0);
}

#[test]
fn close_after_data_sends_once() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let server = FaultyServer::start(Behaviour::CloseAfterData);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let channel = server.channel(1, 5);

    let result = runtime.block_on(channel.send(&outgoing(1), now()));

    let error = result.unwrap_err();
    assert!(error.is_transient(), "{error}");
    assert_eq!(server.data_received.load(Ordering::SeqCst), 1);
    assert_eq!(server.connections.load(Ordering::SeqCst), 1);
    drop(channel);
    assert_eq!(wait_for_smtp_threads(0, Duration::from_secs(5)), 0);
}

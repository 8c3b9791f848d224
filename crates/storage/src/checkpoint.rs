//! Copying the write-ahead log into the database file on a thread of its own.
//!
//! In WAL mode a commit appends pages to the log, and by default the connection whose commit
//! takes the log past 1,000 pages then copies the log into the database file and syncs both,
//! before its caller goes on. Planning's writer commits all the time, and `perf` put about a
//! sixth of planning's samples in that copy. A [`Checkpointer`] does the copying on its own
//! thread and connection while the writer appends, and [`Store::defer_checkpoints`] makes a
//! writer leave it to the checkpointer.

use std::path::Path;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{Result, Store};

/// The log size after which a connection that defers checkpoints copies the log itself
/// (16 MiB, which is 4,096 pages of 4 KiB): a backstop for when no checkpointer runs or it
/// falls behind, so the log stays bounded. While a writer commits all the time, the log
/// rarely starts over between the checkpointer's copies and grows to about this size.
const BACKSTOP: i64 = 16 * 1024 * 1024;

/// The size, in bytes, that a log file grown past it is cut back to once the log starts
/// over, so that a burst of writes, such as an import's, does not leave a large file
/// behind. It is above the size the backstop lets the log reach, because cutting the file
/// at every start slowed planning down.
const LOG_SIZE_LIMIT: i64 = 32 * 1024 * 1024;

/// The backstop for a writer whose transactions write megabytes each (128 MiB). It is well
/// above what one transaction of planning writes (about 28 MiB for 10,000 customers at
/// 1,000,000 customers). With a 16 MiB backstop the writer copied the log itself after
/// nearly every commit.
const LARGE_BACKSTOP: i64 = 128 * 1024 * 1024;

/// The log size limit for such a writer. It is above the size its backstop lets the log
/// reach, so that the file is not cut at every start and allocated again by the file
/// system as the log grows.
const LARGE_LOG_SIZE_LIMIT: i64 = 256 * 1024 * 1024;

/// A thread that copies the write-ahead log into the database file every so often, until it
/// is dropped.
#[derive(Debug)]
pub struct Checkpointer {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Checkpointer {
    /// Starts a thread with its own connection to the database file at `path` that runs a
    /// passive checkpoint every `every`. A passive checkpoint copies what the log contains
    /// without waiting for readers or writers, so no connection waits for it either.
    ///
    /// A checkpoint that fails, for instance while another process checkpoints, is tried
    /// again at the next tick. Meanwhile the backstop of [`Store::defer_checkpoints`] bounds
    /// the log.
    ///
    /// # Errors
    ///
    /// As [`Store::open`], and [`crate::Error::Io`] when the thread cannot be started.
    pub fn start(path: &Path, every: Duration) -> Result<Checkpointer> {
        let store = Store::open(path)?;
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("tact-checkpoint".to_owned())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let _ = store.checkpoint();
                }
            })?;
        Ok(Checkpointer {
            stop: Some(stop),
            thread: Some(thread),
        })
    }
}

impl Drop for Checkpointer {
    /// Stops the thread and waits for its checkpoint in progress, if any.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Store {
    /// Leaves checkpoints to a [`Checkpointer`]: this connection copies the log into the
    /// database file itself only once the log reaches 16 MiB, instead of SQLite's 1,000
    /// pages, and cuts the log file back to 32 MiB when the log starts over.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Sqlite`] when a setting cannot be changed.
    pub fn defer_checkpoints(&self) -> Result<()> {
        self.defer_checkpoints_to(BACKSTOP, LOG_SIZE_LIMIT)
    }

    /// Leaves checkpoints to a [`Checkpointer`] for a connection whose transactions write
    /// megabytes each, such as planning's: it copies the log itself only once the log
    /// reaches 128 MiB, and cuts the log file back to 256 MiB. The log file of a
    /// process that writes this way for a long time stays at up to that size, so
    /// `tact serve`'s own writer uses [`Store::defer_checkpoints`].
    ///
    /// # Errors
    ///
    /// [`crate::Error::Sqlite`] when a setting cannot be changed.
    pub fn defer_checkpoints_for_large_commits(&self) -> Result<()> {
        self.defer_checkpoints_to(LARGE_BACKSTOP, LARGE_LOG_SIZE_LIMIT)
    }

    fn defer_checkpoints_to(&self, backstop: i64, log_size_limit: i64) -> Result<()> {
        let _limit: i64 = self.connection.query_row(
            &format!("PRAGMA journal_size_limit = {log_size_limit}"),
            [],
            |row| row.get(0),
        )?;
        self.set_autocheckpoint(backstop / self.page_size()?)
    }

    /// Returns the size of the database file's pages in bytes.
    pub(crate) fn page_size(&self) -> Result<i64> {
        Ok(self
            .connection
            .pragma_query_value(None, "page_size", |row| row.get(0))?)
    }

    /// Returns the log pages after which this connection checkpoints by itself.
    pub(crate) fn autocheckpoint(&self) -> Result<i64> {
        Ok(self
            .connection
            .pragma_query_value(None, "wal_autocheckpoint", |row| row.get(0))?)
    }

    pub(crate) fn set_autocheckpoint(&self, pages: i64) -> Result<()> {
        Ok(self
            .connection
            .pragma_update(None, "wal_autocheckpoint", pages)?)
    }

    /// Copies what the write-ahead log contains into the database file, without waiting for
    /// other connections.
    pub(crate) fn checkpoint(&self) -> Result<()> {
        self.connection
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log_size_limit(store: &Store) -> i64 {
        store
            .connection
            .pragma_query_value(None, "journal_size_limit", |row| row.get(0))
            .unwrap()
    }

    #[test]
    fn deferring_sets_backstop_and_limit() {
        let folder = tempfile::tempdir().unwrap();
        let daemon = Store::open(folder.path().join("tact.db")).unwrap();
        let planning = Store::open(folder.path().join("tact.db")).unwrap();

        daemon.defer_checkpoints().unwrap();
        planning.defer_checkpoints_for_large_commits().unwrap();

        assert_eq!(daemon.page_size().unwrap(), 4_096);
        assert_eq!(daemon.autocheckpoint().unwrap(), 4_096);
        assert_eq!(log_size_limit(&daemon), 32 * 1024 * 1024);
        assert_eq!(planning.autocheckpoint().unwrap(), 32_768);
        assert_eq!(log_size_limit(&planning), 256 * 1024 * 1024);
    }
}

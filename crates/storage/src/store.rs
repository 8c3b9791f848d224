//! The [`Store`]: one connection to the database file.

use rusqlite::Connection;
use std::path::{Path, PathBuf};

use crate::Result;
use crate::schema;

/// One connection to a tact database file.
///
/// Opening is cheap (a file open and a few pragmas once the schema is current), so each
/// worker thread opens its own `Store` on the same file. A `Store` is `Send` but not `Sync`:
/// move it into the thread or `spawn_blocking` task that uses it, never share one between
/// threads at once.
///
/// The file is in WAL mode: readers never wait for the writer, and writers take turns.
/// Every write runs in one `BEGIN IMMEDIATE` transaction, which waits up to 5 seconds for
/// another writer to finish before failing with [`crate::Error::Busy`].
/// `synchronous = NORMAL` means a committed transaction survives a crash of the process;
/// after a power failure the last transactions before it may be lost, but the file is never
/// corrupt.
#[derive(Debug)]
pub struct Store {
    pub(crate) connection: Connection,
    /// The database file; `None` for a database in memory.
    path: Option<PathBuf>,
}

impl Store {
    /// Opens the database file at `path`, creating it when it does not exist, and brings the
    /// schema up to date.
    ///
    /// # Errors
    ///
    /// [`crate::Error::SchemaTooNew`] when a newer build wrote the file; the file is left
    /// unchanged. [`crate::Error::Sqlite`] when the file cannot be opened or is not a
    /// database, and [`crate::Error::Migration`] when a migration fails.
    pub fn open(path: impl AsRef<Path>) -> Result<Store> {
        create_private(path.as_ref());
        let connection = schema::open_connection(path.as_ref())?;
        Ok(Store {
            connection,
            path: Some(path.as_ref().to_path_buf()),
        })
    }

    /// Opens a private database in memory, for unit tests. Nothing is shared with any other
    /// `Store`.
    ///
    /// # Errors
    ///
    /// As [`Store::open`].
    pub fn open_in_memory() -> Result<Store> {
        let mut connection = Connection::open_in_memory()?;
        schema::configure(&mut connection)?;
        Ok(Store {
            connection,
            path: None,
        })
    }

    /// Opens a connection to the file at `path` that only reads, for loading views beside
    /// a connection that writes. Its page cache holds up to 8 MiB: it reads customers
    /// all over the file, which the operating system's cache serves as well.
    ///
    /// # Errors
    ///
    /// As [`Store::open`].
    pub fn open_reader(path: impl AsRef<Path>) -> Result<Store> {
        Store::open_reader_with_cache(path.as_ref(), 8 * 1024)
    }

    /// Opens another connection to the same file for reading only, with a page cache of
    /// `cache_kib` KiB. Used by the threads of [`Store::scan_views`].
    pub(crate) fn open_reader_with_cache(path: &Path, cache_kib: i64) -> Result<Store> {
        let store = Store::open(path)?;
        store
            .connection
            .pragma_update(None, "cache_size", -cache_kib)?;
        store.connection.pragma_update(None, "query_only", true)?;
        Ok(store)
    }

    /// Returns the database file, or `None` for a database in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Copies the whole database to a new file at `path` while other connections go on
    /// reading and writing. The copy is a consistent snapshot.
    ///
    /// # Errors
    ///
    /// [`crate::Error::Sqlite`] when the target cannot be written.
    pub fn backup_to(&self, path: impl AsRef<Path>) -> Result<()> {
        create_private(path.as_ref());
        let mut target = Connection::open(path.as_ref())?;
        let backup = rusqlite::backup::Backup::new(&self.connection, &mut target)?;
        backup.run_to_completion(1024, std::time::Duration::from_millis(5), None)?;
        Ok(())
    }

    /// Runs `work` with this connection's foreign key checks off, and turns them on again
    /// afterwards, also when `work` fails or panics. SQLite ignores the switch inside a
    /// transaction, so `work` must begin its own. Only for writes whose caller checks
    /// every reference itself in the same transaction.
    pub(crate) fn without_foreign_keys<T>(&self, work: impl FnOnce() -> Result<T>) -> Result<T> {
        struct Restore<'a>(&'a Connection);
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                // Drop cannot return the error. Only a broken connection fails here, and
                // its next statement then fails too.
                let _ = self.0.pragma_update(None, "foreign_keys", true);
            }
        }
        self.connection.pragma_update(None, "foreign_keys", false)?;
        let _restore = Restore(&self.connection);
        work()
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction and commits it when `work` succeeds.
    pub(crate) fn write<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.transaction("BEGIN IMMEDIATE", work)
    }

    /// Runs `work` in one read transaction, so every query in it sees the same snapshot.
    pub(crate) fn read<T>(&self, work: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        self.transaction("BEGIN DEFERRED", work)
    }

    /// Runs `work` between `begin` and `COMMIT`, or `ROLLBACK` when it fails or panics.
    ///
    /// The three statements come from the connection's statement cache: parsing them again
    /// for every transaction cost a tenth of loading one customer's view.
    fn transaction<T>(
        &self,
        begin: &str,
        work: impl FnOnce(&Connection) -> Result<T>,
    ) -> Result<T> {
        self.connection.prepare_cached(begin)?.execute([])?;
        let mut open = OpenTransaction {
            connection: &self.connection,
            finished: false,
        };
        let value = work(&self.connection)?;
        self.connection.prepare_cached("COMMIT")?.execute([])?;
        open.finished = true;
        Ok(value)
    }
}

/// Creates `path` as an empty file that only its owner may read and write, unless it exists,
/// because the database contains customers' personal data. SQLite gives the `-wal` and `-shm`
/// files it creates beside a database the database file's permissions.
///
/// When the file cannot be created here, SQLite's own open reports why, so the error is
/// left to it.
fn create_private(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        let _ = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// Rolls back the transaction it guards when dropped before the commit, so an error or a
/// panic in the middle leaves nothing half-written.
struct OpenTransaction<'a> {
    connection: &'a Connection,
    finished: bool,
}

impl Drop for OpenTransaction<'_> {
    fn drop(&mut self) {
        // After a failed COMMIT, or an error that SQLite already rolled back, there may be
        // no transaction left, so the result is ignored.
        if !self.finished && !self.connection.is_autocommit() {
            let _ = self.connection.execute_batch("ROLLBACK");
        }
    }
}

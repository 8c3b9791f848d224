//! The storage error type.

/// Errors of the storage layer. Each variant names the entity, row or value that failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A row that the caller named does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// The kind of row, such as `customer` or `delivery`.
        entity: &'static str,
        /// The id or external id that was looked up.
        id: String,
    },
    /// The file was written by a newer version of tact. Nothing in it was changed.
    #[error(
        "database schema version {found} is newer than this build supports ({supported}); \
         upgrade tact or open a backup made by this version"
    )]
    SchemaTooNew {
        /// The schema version stored in the file (`PRAGMA user_version`).
        found: i64,
        /// The newest schema version this build knows.
        supported: i64,
    },
    /// Another connection held the write lock for longer than the busy timeout.
    #[error("database is locked by another writer (waited {waited_ms} ms); retry later")]
    Busy {
        /// How long the connection waited before giving up, in milliseconds.
        waited_ms: u64,
    },
    /// A stored row could not be turned back into a domain value.
    #[error("invalid {entity} row {id}: {reason}")]
    InvalidRow {
        /// The kind of row.
        entity: &'static str,
        /// The row id.
        id: i64,
        /// What is wrong with it.
        reason: String,
    },
    /// A value passed in is invalid, so nothing was written.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidField {
        /// The field, such as `email` or `time_zone`.
        field: &'static str,
        /// The rejected value (at most 80 characters of it).
        value: String,
        /// What is wrong and what to write instead.
        reason: String,
    },
    /// A delivery is not in the state the operation needs.
    #[error("delivery {delivery} is {state}, expected {expected}")]
    InvalidState {
        /// The delivery id.
        delivery: i64,
        /// Its current state.
        state: String,
        /// The states the operation accepts.
        expected: &'static str,
    },
    /// The domain rejected a change, such as lifting a customer's own opt-out.
    #[error(transparent)]
    Domain(#[from] tact_domain::Error),
    /// Schema migration failed.
    #[error("schema migration failed: {0}")]
    Migration(#[from] rusqlite_migration::Error),
    /// Any other SQLite failure.
    #[error("sqlite: {0}")]
    Sqlite(rusqlite::Error),
    /// Reading a CSV file failed.
    #[error("reading CSV failed: {0}")]
    Csv(#[from] csv::Error),
    /// Reading or writing a file failed.
    #[error("I/O failed: {0}")]
    Io(#[from] std::io::Error),
}

/// The busy timeout of every connection, in milliseconds.
pub(crate) const BUSY_TIMEOUT_MS: u64 = 5_000;

impl From<rusqlite::Error> for Error {
    fn from(error: rusqlite::Error) -> Self {
        let busy = matches!(
            error.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        );
        if busy {
            Error::Busy {
                waited_ms: BUSY_TIMEOUT_MS,
            }
        } else {
            Error::Sqlite(error)
        }
    }
}

impl Error {
    pub(crate) fn not_found(entity: &'static str, id: impl ToString) -> Error {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }

    pub(crate) fn invalid_field(
        field: &'static str,
        value: &str,
        reason: impl Into<String>,
    ) -> Error {
        Error::InvalidField {
            field,
            value: value.chars().take(80).collect(),
            reason: reason.into(),
        }
    }
}

/// Result with the storage [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

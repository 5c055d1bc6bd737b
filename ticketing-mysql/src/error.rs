//! From sqlx errors to the library's errors, keeping the source.

use sqlx::mysql::MySqlDatabaseError;
use ticketing_core::Error;

/// What went wrong below the store, kept as the source of the library's [`Error`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MySqlError {
    /// A row breaks an invariant the schema keeps (a bug or a hand edit).
    #[error("inconsistent row: {0}")]
    Corrupt(&'static str),
    /// An instant column out of the range of `chrono` (microseconds since the epoch).
    #[error("instant out of range: {0} microseconds since the epoch")]
    Instant(i64),
    /// A JSON column that does not parse, or a value that does not encode.
    #[error("JSON of {what}")]
    Json {
        /// The column or value.
        what: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
    /// The driver or the server failed.
    #[error(transparent)]
    Sqlx(#[from] sqlx::Error),
}

/// Why a transaction attempt ended early.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Lost a compare-and-set or a deadlock: try the whole transaction again (bounded).
    Retry(Error),
    /// A final answer.
    Err(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Fail::Err(e)
    }
}

impl From<sqlx::Error> for Fail {
    fn from(e: sqlx::Error) -> Self {
        match number(&e) {
            // Deadlock (the server rolled the transaction back); "record has changed since
            // last read" (MariaDB's snapshot isolation check).
            Some(1213 | 1020) => Fail::Retry(db(e)),
            _ => Fail::Err(db(e)),
        }
    }
}

impl From<MySqlError> for Fail {
    fn from(e: MySqlError) -> Self {
        Fail::Err(row(e))
    }
}

/// The server's error number of a database error (1213 deadlock, 1205 lock wait timeout, ...).
pub(crate) fn number(e: &sqlx::Error) -> Option<u16> {
    e.as_database_error()
        .and_then(|d| d.try_downcast_ref::<MySqlDatabaseError>())
        .map(MySqlDatabaseError::number)
}

/// Whether the error is a lock that could not be had: `NOWAIT` (MariaDB answers 1205, MySQL
/// 3572) or `innodb_lock_wait_timeout` ran out (1205).
pub(crate) fn lock_not_available(e: &sqlx::Error) -> bool {
    matches!(number(e), Some(1205 | 3572))
}

/// Whether a failed `COMMIT` was answered by the server with a refusal, so the transaction did
/// not happen. Any other failure, a lost or killed connection above all (2013, 1927), leaves
/// the outcome unknown.
pub(crate) fn commit_refused(e: &sqlx::Error) -> bool {
    if matches!(number(e), Some(1213 | 1205 | 1020)) {
        return true;
    }
    let state = e
        .as_database_error()
        .and_then(|d| d.code().map(|c| c.into_owned()));
    matches!(state.as_deref(), Some(c) if c.starts_with("40") || c.starts_with("23"))
}

/// A row that could not be read: the store cannot answer, and retrying will not help.
pub(crate) fn row(e: MySqlError) -> Error {
    match e {
        MySqlError::Sqlx(e) => db(e),
        other => Error::backend("mysql: reading a row", false, other),
    }
}

/// What a server error number means to a caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A unique key: the thing already exists (`invalid_request`).
    Duplicate,
    /// A constraint or value the caller's data breaks (`invalid_request`).
    Invalid,
    /// A conflict with another transaction or a time limit: retryable `unavailable`.
    Conflict,
    /// The same statement would fail again: `unavailable`, not retryable.
    Permanent,
    /// Anything else from the driver or the server.
    Other,
}

fn kind(number: Option<u16>) -> Kind {
    match number {
        Some(1062) => Kind::Duplicate,
        // Foreign key (1452, 1451), CHECK (MariaDB 4025, MySQL 3819), out of range (1264),
        // too long (1406), NULL (1048), not a valid value (1366).
        Some(1452 | 1451 | 4025 | 3819 | 1264 | 1406 | 1048 | 1366) => Kind::Invalid,
        // Deadlock, lock wait timeout or NOWAIT, snapshot check, statement time limits.
        Some(1213 | 1205 | 3572 | 1020 | 1969 | 3024) => Kind::Conflict,
        // Too many placeholders (1390), too many prepared statements on the server (1461), no
        // such table (1146) or column (1054), a syntax error (1064), a write the binlog format
        // refuses (1665: READ COMMITTED needs ROW or MIXED binlog_format).
        Some(1390 | 1461 | 1146 | 1054 | 1064 | 1665) => Kind::Permanent,
        _ => Kind::Other,
    }
}

/// Map a database error: constraint violations are the caller's fault (`invalid_request`),
/// everything else means the store is unavailable, with whether a retry may help.
pub(crate) fn db(e: sqlx::Error) -> Error {
    match kind(number(&e)) {
        Kind::Duplicate => Error::InvalidRequest(format!("already exists: {e}")),
        Kind::Invalid => Error::InvalidRequest(e.to_string()),
        Kind::Conflict => Error::backend(
            "transaction conflict or lock timeout",
            true,
            MySqlError::from(e),
        ),
        Kind::Permanent => Error::backend(
            "mysql: schema, statement or server configuration",
            false,
            MySqlError::from(e),
        ),
        Kind::Other => {
            let retryable = matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::Database(_)
            );
            Error::backend("mysql", retryable, MySqlError::from(e))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ticketing_core::ErrorCode;

    /// Errors that are not the server's keep their kind: a pool timeout may be retried, a
    /// decoding problem not, and both keep their source.
    #[test]
    fn driver_errors_map_to_unavailable_with_their_source() {
        let timed_out = db(sqlx::Error::PoolTimedOut);
        assert_eq!(timed_out.code(), ErrorCode::Unavailable);
        assert!(timed_out.is_retryable());
        assert!(std::error::Error::source(&timed_out).is_some());
        let corrupt = row(MySqlError::Corrupt("seat status"));
        assert_eq!(corrupt.code(), ErrorCode::Unavailable);
        assert!(!corrupt.is_retryable());
        assert!(matches!(
            Fail::from(sqlx::Error::PoolTimedOut),
            Fail::Err(_)
        ));
        assert!(!commit_refused(&sqlx::Error::PoolTimedOut));
    }

    /// Errors that a retry would meet again (a statement with too many placeholders, the
    /// server's prepared statements exhausted, a missing table or column, bad syntax, a binlog
    /// format READ COMMITTED cannot write with) are not retryable; lock conflicts are. (The
    /// driver's error type has no public constructor: the number is classified here, and
    /// [`db`] maps each kind as `Kind::Permanent` shows in its match.)
    #[test]
    fn schema_syntax_and_configuration_errors_are_not_retryable() {
        for number in [1390, 1461, 1146, 1054, 1064, 1665] {
            assert_eq!(kind(Some(number)), Kind::Permanent, "{number}");
        }
        for number in [1213, 1205, 3572, 1020] {
            assert_eq!(kind(Some(number)), Kind::Conflict, "{number}");
        }
        assert_eq!(kind(Some(1062)), Kind::Duplicate);
        assert_eq!(kind(Some(4025)), Kind::Invalid);
        assert_eq!(kind(Some(2006)), Kind::Other);
        assert_eq!(kind(None), Kind::Other);
    }
}

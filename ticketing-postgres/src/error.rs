//! From sqlx errors to the library's errors, keeping the source.

use ticketing_core::Error;

/// Why a transaction attempt ended early.
#[derive(Debug)]
pub(crate) enum Fail {
    /// Lost a compare-and-set, a serialization check or a deadlock: try the whole transaction
    /// again (bounded).
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
        match code(&e).as_deref() {
            Some("40001" | "40P01") => Fail::Retry(db(e)),
            _ => Fail::Err(db(e)),
        }
    }
}

/// The SQLSTATE of a database error.
pub(crate) fn code(e: &sqlx::Error) -> Option<String> {
    match e {
        sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Whether a failed `COMMIT` was refused by the server, so the transaction did not happen
/// (serialization failure, deadlock, a deferred constraint). Any other failure, a lost
/// connection above all, leaves the outcome unknown. 40003 (statement completion unknown) is
/// the one class-40 code that is not a refusal.
pub(crate) fn commit_refused(e: &sqlx::Error) -> bool {
    matches!(code(e).as_deref(), Some(c) if (c.starts_with("40") && c != "40003") || c.starts_with("23"))
}

/// Map a database error: constraint violations are the caller's fault (`invalid_request`),
/// everything else means the store is unavailable, with whether a retry may help.
pub(crate) fn db(e: sqlx::Error) -> Error {
    let sqlstate = code(&e);
    match sqlstate.as_deref() {
        Some("23505") => Error::InvalidRequest(format!("already exists: {e}")),
        Some("23503" | "23514" | "22003" | "22P02") => Error::InvalidRequest(e.to_string()),
        Some("40001" | "40P01" | "55P03" | "57014") => {
            Error::backend("transaction conflict or lock timeout", true, e)
        }
        _ => {
            let retryable = matches!(
                e,
                sqlx::Error::Io(_)
                    | sqlx::Error::PoolTimedOut
                    | sqlx::Error::PoolClosed
                    | sqlx::Error::WorkerCrashed
                    | sqlx::Error::Protocol(_)
                    | sqlx::Error::Database(_)
            );
            Error::backend("postgres", retryable, e)
        }
    }
}

//! Statements with lists: MySQL has no array parameters, so `{ids}` and `{values}` are expanded
//! to placeholders.
//!
//! Every distinct expansion is a statement of its own, prepared and cached per connection by
//! sqlx (and counted against the server's `max_prepared_stmt_count`, error 1461), and a
//! statement takes at most 65,535 placeholders (error 1390). So:
//! - an `IN ({ids})` list is padded to the next power of two by repeating its last id
//!   ([`in_list`]): with the lists bounded by the callers (at most
//!   [`crate::MAX_SEATS_PER_COMMAND`] seats a command, chunks elsewhere), a connection caches at
//!   most a dozen variants of each statement;
//! - a multi-row `{values}` `INSERT` is run unprepared-cached ([`values`] marks it
//!   `persistent(false)`): its length follows the data, and padding rows would insert them.

use sqlx::mysql::MySqlArguments;
use sqlx::query::Query;
use sqlx::{AssertSqlSafe, MySql};

/// A query of `'static` SQL text built here.
pub(super) type ListQuery = Query<'static, MySql, MySqlArguments>;

/// `n` placeholders, comma separated.
fn placeholders(n: usize) -> String {
    vec!["?"; n].join(", ")
}

/// How many placeholders a list of `n` ids gets: the next power of two.
pub(super) fn padded_len(n: usize) -> usize {
    n.max(1).next_power_of_two()
}

/// A statement whose `{ids}` is expanded to `padded_len(n)` placeholders.
fn with_ids(sql: &'static str, n: usize) -> AssertSqlSafe<String> {
    AssertSqlSafe(sql.replace("{ids}", &placeholders(padded_len(n))))
}

/// A statement whose `{values}` is expanded to `rows` rows of `columns` placeholders.
fn with_values(sql: &'static str, rows: usize, columns: usize) -> AssertSqlSafe<String> {
    let row = format!("({})", placeholders(columns));
    AssertSqlSafe(sql.replace("{values}", &vec![row; rows].join(", ")))
}

/// `sql` with its `{ids}` list bound to `ids`, padded by repeating the last one (an `IN` list
/// means the same with a repeated member). `ids` must not be empty.
pub(super) fn in_list<T>(sql: &'static str, ids: &[T]) -> ListQuery
where
    T: Clone + Send + 'static,
    T: for<'q> sqlx::Encode<'q, MySql> + sqlx::Type<MySql>,
{
    let mut q = sqlx::query(with_ids(sql, ids.len()));
    for id in ids {
        q = q.bind(id.clone());
    }
    if let Some(last) = ids.last() {
        for _ in ids.len()..padded_len(ids.len()) {
            q = q.bind(last.clone());
        }
    }
    q
}

/// `sql` with its `{values}` expanded to `rows` rows of `columns` placeholders, not kept in the
/// connection's statement cache (bind the rows' values next).
pub(super) fn values(sql: &'static str, rows: usize, columns: usize) -> ListQuery {
    sqlx::query(with_values(sql, rows, columns)).persistent(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Execute;

    #[test]
    fn lists_expand_to_placeholders() {
        let q = with_ids("SELECT 1 FROM t WHERE id IN ({ids})", 4);
        assert_eq!(q.0, "SELECT 1 FROM t WHERE id IN (?, ?, ?, ?)");
        let q = with_values("INSERT INTO t (a, b) VALUES {values}", 2, 2);
        assert_eq!(q.0, "INSERT INTO t (a, b) VALUES (?, ?), (?, ?)");
    }

    /// Lists are padded to the next power of two by repeating the last id, so a connection
    /// prepares a few variants of a statement, not one per length.
    #[test]
    fn id_lists_are_padded_to_a_power_of_two() {
        assert_eq!(
            (1..=1_024)
                .map(padded_len)
                .collect::<std::collections::BTreeSet<_>>(),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1_024].into()
        );
        let mut q = in_list("SELECT 1 FROM t WHERE id IN ({ids})", &[7_i64, 8, 9]);
        assert!(Execute::persistent(&q));
        let args = q.take_arguments().expect("arguments").expect("some");
        assert_eq!(sqlx::Arguments::len(&args), 4);
        assert_eq!(q.sql().as_str(), "SELECT 1 FROM t WHERE id IN (?, ?, ?, ?)");
        assert!(!Execute::persistent(&values(
            "INSERT INTO t (a) VALUES {values}",
            3,
            1
        )));
    }
}

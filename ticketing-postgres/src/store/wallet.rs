//! The per-user lock, wallets, balances and the ledger.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use ticketing_core::{Error, Points, ReservationId, Result, UserId};
use uuid::Uuid;

use super::PgStore;
use crate::error::Fail;

impl PgStore {
    /// Check that `user` owns the reservation (`forbidden` otherwise), then lock the user and
    /// the wallet as [`Self::lock_wallet`] does; returns the balance.
    pub(super) async fn lock_owner(
        &self,
        conn: &mut PgConnection,
        id: ReservationId,
        user: UserId,
    ) -> Result<Points, Fail> {
        let peek = self.fetch_reservation(conn, id, false).await?;
        if peek.user_id != user {
            return Err(Error::Forbidden.into());
        }
        self.lock_wallet(conn, user).await
    }

    /// Take the per-user lock (a transaction-level advisory lock, the migration
    /// `20261206000001_user_locks.sql` says why): every change of one user's reservations,
    /// idempotency keys and wallet happens under it, taken before any row lock. Writes nothing.
    pub(super) async fn lock_user(
        &self,
        conn: &mut PgConnection,
        user: UserId,
    ) -> Result<(), Fail> {
        // Negative control: no per-user lock where this is the only one taken: holds and
        // refund settles (scripts/controls.sh).
        #[cfg(ticketing_control = "no_user_lock")]
        if true {
            let _ = (conn, user);
            return Ok(());
        }
        sqlx::query(sql!("user_lock"))
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    /// Take the per-user lock, then lock the user's wallet row (creating it at 0 if there is
    /// none), in one round trip; returns the balance.
    pub(super) async fn lock_wallet(
        &self,
        conn: &mut PgConnection,
        user: UserId,
    ) -> Result<Points, Fail> {
        let balance = sqlx::query_scalar::<_, i64>(sql!("wallet_lock"))
            .bind(user.0)
            .fetch_one(&mut *conn)
            .await?;
        Ok(Points(balance))
    }

    pub(super) async fn ledger(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        kind: &str,
        amount: Points,
        reference: Option<Uuid>,
        at: DateTime<Utc>,
    ) -> Result<(), Fail> {
        if amount.is_positive() {
            sqlx::query(sql!("ledger_insert"))
                .bind(user.0)
                .bind(kind)
                .bind(amount.0)
                .bind(reference)
                .bind(at)
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn set_balance(
        &self,
        conn: &mut PgConnection,
        user: UserId,
        balance: Points,
    ) -> Result<(), Fail> {
        sqlx::query(sql!("wallet_set"))
            .bind(user.0)
            .bind(balance.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

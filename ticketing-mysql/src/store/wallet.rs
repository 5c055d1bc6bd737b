//! Wallets: the per-user lock (the wallet row), balances and the ledger.

use chrono::{DateTime, Utc};
use sqlx::MySqlConnection;
use ticketing_core::{Error, Points, ReservationId, UserId};
use uuid::Uuid;

use super::MySqlStore;
use crate::error::Fail;
use crate::rows::micros;

impl MySqlStore {
    /// Check that `user` owns the reservation (`forbidden` otherwise), then lock the user as
    /// [`Self::lock_user`] does; returns the balance.
    pub(super) async fn lock_owner(
        &self,
        conn: &mut MySqlConnection,
        id: ReservationId,
        user: UserId,
    ) -> Result<Points, Fail> {
        let peek = self.fetch_reservation(conn, id, false).await?;
        if peek.user_id != user {
            return Err(Error::Forbidden.into());
        }
        self.lock_user(conn, user).await
    }

    /// Lock the user's wallet row (creating it at 0 if there is none); returns the balance.
    /// An existing wallet is locked without being written.
    pub(super) async fn lock_user(
        &self,
        conn: &mut MySqlConnection,
        user: UserId,
    ) -> Result<Points, Fail> {
        let lock = || sqlx::query_scalar::<_, i64>(sql!("wallet_lock")).bind(user.0);
        if let Some(balance) = lock().fetch_optional(&mut *conn).await? {
            return Ok(Points(balance));
        }
        sqlx::query(sql!("wallet_create"))
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(Points(lock().fetch_one(&mut *conn).await?))
    }

    pub(super) async fn ledger(
        &self,
        conn: &mut MySqlConnection,
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
                .bind(micros(at))
                .execute(&mut *conn)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn set_balance(
        &self,
        conn: &mut MySqlConnection,
        user: UserId,
        balance: Points,
    ) -> Result<(), Fail> {
        sqlx::query(sql!("wallet_set"))
            .bind(balance.0)
            .bind(user.0)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

//! Seeding a catalog in one transaction, and changing a sale window.

use chrono::{DateTime, Utc};
use ticketing_core::rules;
use ticketing_core::{Catalog, Error, OptionId, ShowOption};

use super::sql_lists::values;
use super::{MySqlStore, SEED_CHUNK, commit};
use crate::error::Fail;
use crate::rows::{self, micros, micros_opt};

impl MySqlStore {
    /// Seed in one transaction: ids taken, negative prices, options of unknown concerts and
    /// seats of unknown options are refused by the schema's keys and checks, and the whole
    /// transaction is rolled back.
    pub(super) async fn try_seed(&self, catalog: &Catalog) -> Result<(), Fail> {
        for o in &catalog.options {
            rules::validate_sale_window(&o.sale_window())?;
        }
        let mut tx = self.begin().await?;
        for chunk in catalog.concerts.chunks(SEED_CHUNK) {
            let mut q = values(sql!("seed_concerts"), chunk.len(), 3);
            for c in chunk {
                q = q.bind(c.id.0).bind(c.title.clone()).bind(c.venue.clone());
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in catalog.options.chunks(SEED_CHUNK) {
            let mut q = values(sql!("seed_options"), chunk.len(), 5);
            for o in chunk {
                q = q
                    .bind(o.id.0)
                    .bind(o.concert_id.0)
                    .bind(micros(o.starts_at))
                    .bind(micros_opt(o.sale_opens_at))
                    .bind(micros_opt(o.sale_closes_at));
            }
            q.execute(&mut *tx).await?;
        }
        for chunk in catalog.seats.chunks(SEED_CHUNK) {
            let mut q = values(sql!("seed_seats"), chunk.len(), 5);
            for s in chunk {
                q = q
                    .bind(s.id.0)
                    .bind(s.option_id.0)
                    .bind(s.seat_no.clone())
                    .bind(s.grade.clone())
                    .bind(s.price.0);
            }
            q.execute(&mut *tx).await?;
        }
        commit(tx).await?;
        Ok(())
    }

    /// Set a window: bump (and so lock, in id order) every seat of the option, then the window,
    /// in one transaction (see `sale_window`).
    pub(super) async fn try_set_sale_window(
        &self,
        option: OptionId,
        opens_at: Option<DateTime<Utc>>,
        closes_at: Option<DateTime<Utc>>,
    ) -> Result<ShowOption, Fail> {
        let mut tx = self.begin().await?;
        sqlx::query(sql!("option_sale_fence"))
            .bind(option.0)
            .execute(&mut *tx)
            .await?;
        sqlx::query(sql!("option_sale_set"))
            .bind(micros_opt(opens_at))
            .bind(micros_opt(closes_at))
            .bind(option.0)
            .execute(&mut *tx)
            .await?;
        // Read back rather than trust the row count: under sqlx it counts matched rows
        // (CLIENT_FOUND_ROWS), the protocol's default counts changed ones; the row read is the
        // window stored, whichever the connection does.
        let row = sqlx::query(sql!("option"))
            .bind(option.0)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| Error::not_found("option", option))?;
        let stored = rows::option(&row)?;
        commit(tx).await?;
        Ok(stored)
    }
}

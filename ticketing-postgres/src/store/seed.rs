//! Seeding a catalog in one transaction.

use ticketing_core::rules;
use ticketing_core::{Catalog, Result};

use super::{PgStore, commit};
use crate::error::Fail;

impl PgStore {
    pub(super) async fn try_seed(&self, catalog: &Catalog) -> Result<(), Fail> {
        for o in &catalog.options {
            rules::validate_sale_window(&o.sale_window())?;
        }
        let mut tx = self.begin().await?;
        let c = &catalog.concerts;
        sqlx::query(sql!("seed_concerts"))
            .bind(c.iter().map(|c| c.id.0).collect::<Vec<_>>())
            .bind(c.iter().map(|c| c.title.clone()).collect::<Vec<_>>())
            .bind(c.iter().map(|c| c.venue.clone()).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        let o = &catalog.options;
        sqlx::query(sql!("seed_options"))
            .bind(o.iter().map(|o| o.id.0).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.concert_id.0).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.starts_at).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.sale_opens_at).collect::<Vec<_>>())
            .bind(o.iter().map(|o| o.sale_closes_at).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        let s = &catalog.seats;
        sqlx::query(sql!("seed_seats"))
            .bind(s.iter().map(|s| s.id.0).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.option_id.0).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.seat_no.clone()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.grade.clone()).collect::<Vec<_>>())
            .bind(s.iter().map(|s| s.price.0).collect::<Vec<_>>())
            .execute(&mut *tx)
            .await?;
        commit(tx).await?;
        Ok(())
    }
}

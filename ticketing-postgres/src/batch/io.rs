//! The batch's statements: load and lock everything its commands need, then write what they
//! changed. A constant number of set-based statements whatever the batch's size.

use std::collections::BTreeSet;

use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use ticketing_core::provider::PaymentAttempt;
use ticketing_core::{IdempotencyRecord, OptionId, SaleWindow, SeatId, StoredOutcome, UserId};

use super::state::{Command, SeatSlot, State};
use crate::rows;

macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("../../sql/", $name, ".sql"))
    };
}

/// Load and lock, in the one global order (users, wallets, reservations, seats; each ascending), every
/// row the commands need: one call of the `batch_load` function (its migration says what it
/// returns). `skip_locked`: seats wanted only by holds are skipped if another transaction has
/// them locked (the NOWAIT flavour).
pub(crate) async fn load(
    conn: &mut PgConnection,
    cmds: &[&Command],
    skip_locked: bool,
) -> Result<State, sqlx::Error> {
    let users: BTreeSet<i64> = cmds.iter().map(|c| c.user().0).collect();
    // Negative control: no per-user lock in a batch (scripts/controls.sh).
    #[cfg(ticketing_control = "no_user_lock")]
    let users: BTreeSet<i64> = users.into_iter().filter(|_| false).collect();
    // Holds read no wallet: only payments, cancels and charges lock (and create) one.
    let wallets: BTreeSet<i64> = cmds
        .iter()
        .filter(|c| !matches!(c, Command::Hold(_)))
        .map(|c| c.user().0)
        .collect();
    let named: BTreeSet<uuid::Uuid> = cmds
        .iter()
        .filter_map(|c| c.reservation())
        .map(|r| r.0)
        .collect();
    let capped: BTreeSet<i64> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Hold(h) if h.max_seats_per_user.is_some() => Some(h.user_id.0),
            _ => None,
        })
        .collect();
    let mut held: BTreeSet<i64> = BTreeSet::new();
    let mut options: BTreeSet<i64> = BTreeSet::new();
    for c in cmds {
        if let Command::Hold(h) = c {
            held.extend(h.seat_ids.iter().map(|s| s.0));
            options.insert(h.option_id.0);
        }
    }
    let keys: BTreeSet<(i64, &str)> = cmds
        .iter()
        .filter_map(|c| c.key())
        .map(|k| (k.user_id.0, k.key.as_str()))
        .collect();
    let named_ids: Vec<uuid::Uuid> = named.into_iter().collect();
    let found = sqlx::query(sql!("batch_load"))
        .bind(users.into_iter().collect::<Vec<_>>())
        .bind(wallets.iter().copied().collect::<Vec<_>>())
        .bind(&named_ids)
        .bind(capped.into_iter().collect::<Vec<_>>())
        .bind(held.into_iter().collect::<Vec<_>>())
        .bind(skip_locked)
        .bind(options.into_iter().collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .bind(keys.iter().map(|k| k.1).collect::<Vec<_>>())
        .fetch_all(&mut *conn)
        .await?;

    let mut state = State::default();
    let mut existing: Vec<SeatId> = Vec::new();
    for row in &found {
        let kind: &str = row.try_get("kind")?;
        match kind {
            "w" => {
                let user: i64 = row.try_get("user_id")?;
                let balance: i64 = row.try_get("balance")?;
                state
                    .wallets
                    .insert(UserId(user), ticketing_core::Points(balance));
            }
            "r" => {
                let r = rows::reservation_at(row, "reservation_id")?;
                state.loaded_status.insert(r.id, r.status);
                state.reservations.insert(r.id, r);
            }
            "s" => {
                let r = rows::seat_at(row, "seat_id")?;
                state.seats.insert(
                    r.seat.id,
                    SeatSlot {
                        seat: r.seat,
                        state: r.state,
                        fence: r.fence,
                    },
                );
            }
            "x" => existing.push(SeatId(row.try_get("seat_id")?)),
            "o" => {
                // The sale window comes in reused columns (see batch_load, step 4).
                let window = SaleWindow {
                    starts_at: row.try_get("held_until")?,
                    opens_at: row.try_get("created_at")?,
                    closes_at: row.try_get("expires_at")?,
                };
                state
                    .options
                    .insert(OptionId(row.try_get("option_id")?), window);
            }
            "k" => {
                let user: i64 = row.try_get("user_id")?;
                let key: String = row.try_get("key")?;
                let record = IdempotencyRecord {
                    fingerprint: row.try_get("fingerprint")?,
                    outcome: row.try_get::<Json<StoredOutcome>, _>("outcome")?.0,
                };
                state.keys.insert((UserId(user), key), record);
            }
            other => {
                return Err(sqlx::Error::Decode(
                    format!("batch_load returned a row of unknown kind {other:?}").into(),
                ));
            }
        }
    }
    // A wallet the batch needs but that does not exist is a balance of 0 (the write creates it
    // if a command changes it).
    for user in wallets {
        state
            .wallets
            .entry(UserId(user))
            .or_insert(ticketing_core::Points(0));
    }
    // The provider payment attempts of the named reservations: a payment or cancel must see a
    // charge in flight, and a cancel of a provider-paid one refunds through the provider. One
    // statement, and only when a command names a reservation.
    if !named_ids.is_empty() {
        let rows = sqlx::query(sql!("attempts_of_reservations"))
            .bind(&named_ids)
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let a = row.try_get::<Json<PaymentAttempt>, _>("body")?.0;
            state.attempts.entry(a.reservation_id).or_default().push(a);
        }
    }
    // Seats that exist but were not locked: another transaction had them (NOWAIT).
    state.skipped = existing
        .into_iter()
        .filter(|id| !state.seats.contains_key(id))
        .collect();
    Ok(state)
}

fn to_sql_err(e: impl std::error::Error + Send + Sync + 'static) -> sqlx::Error {
    sqlx::Error::Encode(Box::new(e))
}

/// Write everything the batch's commands changed: the sales it removes, then one statement for
/// all the rest.
pub(crate) async fn write(conn: &mut PgConnection, state: &State) -> Result<(), sqlx::Error> {
    let (gone, sold) = state.sales();
    if !gone.is_empty() {
        sqlx::query(sql!("batch_sales_delete"))
            .bind(gone.iter().map(|r| r.0).collect::<Vec<_>>())
            .execute(&mut *conn)
            .await?;
    }
    let q = sqlx::query(sql!("batch_write"));

    // Wallets.
    let q = q
        .bind(state.dirty_wallets.iter().map(|u| u.0).collect::<Vec<_>>())
        .bind(
            state
                .dirty_wallets
                .iter()
                .map(|u| state.wallets.get(u).map_or(0, |b| b.0))
                .collect::<Vec<_>>(),
        );

    // Seats.
    let slots: Vec<&SeatSlot> = state
        .dirty_seats
        .iter()
        .filter_map(|id| state.seats.get(id))
        .collect();
    let mut statuses = Vec::with_capacity(slots.len());
    let mut owners = Vec::with_capacity(slots.len());
    let mut untils = Vec::with_capacity(slots.len());
    let mut fences = Vec::with_capacity(slots.len());
    for slot in &slots {
        let (status, owner, until) = rows::seat_columns(slot.state);
        statuses.push(status);
        owners.push(owner);
        untils.push(until);
        fences.push(rows::fence_param(slot.fence).map_err(to_sql_err)?);
    }
    let q = q
        .bind(slots.iter().map(|s| s.seat.id.0).collect::<Vec<_>>())
        .bind(statuses)
        .bind(owners)
        .bind(untils)
        .bind(fences);

    // Reservations created (in their final state) and changed.
    let new: Vec<_> = state
        .created
        .iter()
        .filter_map(|id| state.reservations.get(id))
        .collect();
    let seat_lists: Vec<String> = new
        .iter()
        .map(|r| {
            let ids: Vec<String> = r.seat_ids.iter().map(|s| s.0.to_string()).collect();
            format!("{{{}}}", ids.join(","))
        })
        .collect();
    let q = q
        .bind(new.iter().map(|r| r.id.0).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.user_id.0).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.option_id.0).collect::<Vec<_>>())
        .bind(seat_lists)
        .bind(
            new.iter()
                .map(|r| rows::status_str(r.status))
                .collect::<Vec<_>>(),
        )
        .bind(new.iter().map(|r| r.amount.0).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.expires_at).collect::<Vec<_>>())
        .bind(new.iter().map(|r| r.created_at).collect::<Vec<_>>())
        .bind(
            new.iter()
                .map(|r| r.payment_id.map(|p| p.0))
                .collect::<Vec<_>>(),
        )
        .bind(new.iter().map(|r| r.refunded_amount.0).collect::<Vec<_>>());
    let changed: Vec<_> = state
        .updated
        .iter()
        .filter_map(|id| state.reservations.get(id))
        .collect();
    let q = q
        .bind(changed.iter().map(|r| r.id.0).collect::<Vec<_>>())
        .bind(
            changed
                .iter()
                .map(|r| rows::status_str(r.status))
                .collect::<Vec<_>>(),
        )
        .bind(
            changed
                .iter()
                .map(|r| r.payment_id.map(|p| p.0))
                .collect::<Vec<_>>(),
        )
        .bind(
            changed
                .iter()
                .map(|r| r.refunded_amount.0)
                .collect::<Vec<_>>(),
        );

    // Payments and sales.
    let p = &state.payments;
    let q = q
        .bind(p.iter().map(|p| p.id.0).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.reservation_id.0).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.user_id.0).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.amount.0).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.balance.0).collect::<Vec<_>>())
        .bind(p.iter().map(|p| p.created_at).collect::<Vec<_>>())
        .bind(sold.iter().map(|(s, _)| s.0).collect::<Vec<_>>())
        .bind(sold.iter().map(|(_, r)| r.0).collect::<Vec<_>>());

    // Ledger, outbox, idempotency records, each in the order the batch made them.
    let l = &state.ledger;
    let e = &state.events;
    let payloads = e
        .iter()
        .map(serde_json::to_string)
        .collect::<Result<Vec<_>, _>>()
        .map_err(to_sql_err)?;
    let k = &state.new_keys;
    let outcomes = k
        .iter()
        .map(|(_, o, _)| serde_json::to_string(o))
        .collect::<Result<Vec<_>, _>>()
        .map_err(to_sql_err)?;
    q.bind(l.iter().map(|e| e.user_id.0).collect::<Vec<_>>())
        .bind(l.iter().map(|e| e.kind).collect::<Vec<_>>())
        .bind(l.iter().map(|e| e.amount.0).collect::<Vec<_>>())
        .bind(l.iter().map(|e| e.reference).collect::<Vec<_>>())
        .bind(l.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.id.0).collect::<Vec<_>>())
        .bind(e.iter().map(|e| e.at).collect::<Vec<_>>())
        .bind(payloads)
        .bind(k.iter().map(|(k, _, _)| k.user_id.0).collect::<Vec<_>>())
        .bind(k.iter().map(|(k, _, _)| k.key.clone()).collect::<Vec<_>>())
        .bind(
            k.iter()
                .map(|(k, _, _)| k.fingerprint.clone())
                .collect::<Vec<_>>(),
        )
        .bind(outcomes)
        .bind(k.iter().map(|(_, _, at)| *at).collect::<Vec<_>>())
        .execute(&mut *conn)
        .await?;
    // Refunds through the provider that cancels recorded (rare: one statement each).
    for a in &state.new_attempts {
        sqlx::query(sql!("attempt_upsert"))
            .bind(a.id.0)
            .bind(a.reservation_id.0)
            .bind(a.user_id.0)
            .bind(&a.key)
            .bind(a.is_pending())
            .bind(a.created_at)
            .bind(Json(a))
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

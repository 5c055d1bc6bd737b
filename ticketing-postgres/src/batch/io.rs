//! The batch's statements: load and lock everything its commands need, then write what they
//! changed. A constant number of set-based statements whatever the batch's size.

use std::collections::{BTreeSet, HashSet};

use sqlx::types::Json;
use sqlx::{PgConnection, Row};
use ticketing_core::{IdempotencyRecord, OptionId, ReservationId, SeatId, StoredOutcome, UserId};

use super::state::{Command, SeatSlot, State};
use crate::rows;

macro_rules! sql {
    ($name:literal) => {
        include_str!(concat!("../../sql/", $name, ".sql"))
    };
}

/// Load and lock, in the one global order (wallets, reservations, seats; each ascending), every
/// row the commands need. `skip_locked`: seats wanted only by holds are skipped if another
/// transaction has them locked (the NOWAIT flavour).
pub(crate) async fn load(
    conn: &mut PgConnection,
    cmds: &[&Command],
    skip_locked: bool,
) -> Result<State, sqlx::Error> {
    let mut state = State::default();

    // 1. Wallets: every command's user. Create the missing ones first (ascending), then lock
    //    all of them in one ascending statement, so the lock order holds for new users too.
    let users: BTreeSet<i64> = cmds.iter().map(|c| c.user().0).collect();
    let users: Vec<i64> = users.into_iter().collect();
    sqlx::query(sql!("batch_wallets_create"))
        .bind(&users)
        .execute(&mut *conn)
        .await?;
    lock_wallets(conn, &users, &mut state).await?;

    // 2. Reservations named by payments and cancels, and the live ones of capped holders.
    let named: Vec<uuid::Uuid> = cmds
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
    let capped: Vec<i64> = capped.into_iter().collect();
    if !named.is_empty() || !capped.is_empty() {
        let found = sqlx::query(sql!("batch_reservations_lock"))
            .bind(&named)
            .bind(&capped)
            .fetch_all(&mut *conn)
            .await?;
        for row in &found {
            let r = rows::reservation(row)?;
            state.loaded_status.insert(r.id, r.status);
            state.reservations.insert(r.id, r);
        }
    }

    // 3. Seats: those of the named reservations (always waited for), then those only holds
    //    want (skipped when locked, under NOWAIT).
    let mut waited: BTreeSet<i64> = named
        .iter()
        .filter_map(|id| state.reservations.get(&ReservationId(*id)))
        .flat_map(|r| r.seat_ids.iter().map(|s| s.0))
        .collect();
    let held: BTreeSet<i64> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Hold(h) => Some(h.seat_ids.iter().map(|s| s.0)),
            _ => None,
        })
        .flatten()
        .collect();
    let mut skippable: Vec<i64> = Vec::new();
    if skip_locked {
        skippable = held.difference(&waited).copied().collect();
    } else {
        waited.extend(held.iter().copied());
    }
    let waited: Vec<i64> = waited.into_iter().collect();
    if !waited.is_empty() {
        lock_seats(conn, sql!("batch_seats_lock"), &waited, &mut state).await?;
    }
    if !skippable.is_empty() {
        lock_seats(conn, sql!("batch_seats_lock_skip"), &skippable, &mut state).await?;
        let absent: Vec<i64> = skippable
            .iter()
            .filter(|id| !state.seats.contains_key(&SeatId(**id)))
            .copied()
            .collect();
        if !absent.is_empty() {
            let exist: Vec<i64> = sqlx::query_scalar(sql!("batch_seats_exist"))
                .bind(&absent)
                .fetch_all(&mut *conn)
                .await?;
            state.skipped = exist.into_iter().map(SeatId).collect();
        }
    }

    // 4. Options, only for holds naming a seat of another option (not_found vs invalid).
    let odd: HashSet<i64> = cmds
        .iter()
        .filter_map(|c| match c {
            Command::Hold(h)
                if h.seat_ids.iter().any(|s| {
                    state
                        .seats
                        .get(s)
                        .is_some_and(|slot| slot.seat.option_id != h.option_id)
                }) =>
            {
                Some(h.option_id.0)
            }
            _ => None,
        })
        .collect();
    if !odd.is_empty() {
        let odd: Vec<i64> = odd.into_iter().collect();
        let exist: Vec<i64> = sqlx::query_scalar(sql!("batch_options_exist"))
            .bind(&odd)
            .fetch_all(&mut *conn)
            .await?;
        state.options = exist.into_iter().map(OptionId).collect();
    }

    // 5. Idempotency records of the keys the batch carries.
    let keys: Vec<(i64, String)> = cmds
        .iter()
        .filter_map(|c| c.key())
        .map(|k| (k.user_id.0, k.key.clone()))
        .collect();
    if !keys.is_empty() {
        let found = sqlx::query(sql!("batch_idempotency_get"))
            .bind(keys.iter().map(|k| k.0).collect::<Vec<_>>())
            .bind(keys.iter().map(|k| k.1.clone()).collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
        for row in &found {
            let user: i64 = row.try_get("user_id")?;
            let key: String = row.try_get("key")?;
            let record = IdempotencyRecord {
                fingerprint: row.try_get("fingerprint")?,
                outcome: row.try_get::<Json<StoredOutcome>, _>("outcome")?.0,
            };
            state.keys.insert((UserId(user), key), record);
        }
    }
    Ok(state)
}

async fn lock_wallets(
    conn: &mut PgConnection,
    users: &[i64],
    state: &mut State,
) -> Result<(), sqlx::Error> {
    let found = sqlx::query(sql!("batch_wallets_lock"))
        .bind(users)
        .fetch_all(&mut *conn)
        .await?;
    for row in &found {
        let user: i64 = row.try_get("user_id")?;
        let balance: i64 = row.try_get("balance")?;
        state
            .wallets
            .insert(UserId(user), ticketing_core::Points(balance));
    }
    Ok(())
}

async fn lock_seats(
    conn: &mut PgConnection,
    query: &'static str,
    ids: &[i64],
    state: &mut State,
) -> Result<(), sqlx::Error> {
    let found = sqlx::query(query).bind(ids).fetch_all(&mut *conn).await?;
    for row in &found {
        let r = rows::seat(row)?;
        state.seats.insert(
            r.seat.id,
            SeatSlot {
                seat: r.seat,
                state: r.state,
                fence: r.fence,
            },
        );
    }
    Ok(())
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
    Ok(())
}

//! Cases only group commit can get wrong: commands that meet in one batch must be decided as if
//! they had run one after another, and a batch that dies mid-way must leave nothing behind.
//!
//! Each test parks the single batch worker on a "plug" (a wallet row the test keeps locked), so
//! that the commands under test queue up and are taken by the next batch together; the batch
//! counters prove they were.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use ticketing_core::{
    CancelCommand, ChargeCommand, Error, ErrorCode, HoldCommand, IdempotencyKey, OptionId,
    PayCommand, Points, ReservationId, SeatId, TicketStore, UserId,
};
use ticketing_postgres::{BatchConfig, LockWait, PgConfig, PgStore, PgStrategy};
use tokio::task::JoinHandle;

const PLUG: UserId = UserId(999_999);

struct Fixture {
    store: Arc<PgStore>,
    pool: PgPool,
    app: String,
}

async fn fixture() -> Option<Fixture> {
    let config = PgConfig::default()
        .with_strategy(PgStrategy::Pessimistic {
            lock_wait: LockWait::Wait,
        })
        .with_batch(Some(
            BatchConfig::default()
                .with_workers(1)
                .with_max_batch(64)
                .with_queue(1024),
        ));
    let (_, options) = common::fresh_schema(&config).await?;
    let app = format!("batch-test-{}", uuid::Uuid::new_v4().simple());
    let pool = config
        .pool(options.application_name(&app))
        .await
        .expect("pool");
    let store = Arc::new(PgStore::new(pool.clone(), config));
    store
        .seed(&common::simple_catalog(10, 100))
        .await
        .expect("seed");
    charge(&store, PLUG, 1).await.expect("plug wallet");
    Some(Fixture { store, pool, app })
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

async fn charge(store: &PgStore, user: UserId, amount: i64) -> Result<Points, Error> {
    store
        .charge(ChargeCommand {
            user_id: user,
            amount: Points(amount),
            now: now(),
            idempotency: None,
        })
        .await
        .map(|b| b.balance)
}

fn hold_cmd(user: UserId, seats: &[i64]) -> HoldCommand {
    HoldCommand {
        reservation_id: ReservationId::new(),
        user_id: user,
        option_id: OptionId(1),
        seat_ids: seats.iter().copied().map(SeatId).collect(),
        now: now(),
        expires_at: now() + chrono::Duration::minutes(5),
        max_seats_per_user: Some(4),
        idempotency: None,
        fence: None,
    }
}

fn pay_cmd(user: UserId, id: ReservationId) -> PayCommand {
    PayCommand {
        reservation_id: id,
        user_id: user,
        now: now(),
        idempotency: None,
        fence: None,
    }
}

/// The plug: a transaction holding the plug user's wallet lock, and a charge of that user
/// queued behind it, so the worker is busy until the plug is pulled.
struct Plug {
    conn: sqlx::Transaction<'static, sqlx::Postgres>,
    charge: JoinHandle<Result<Points, Error>>,
}

impl Fixture {
    async fn plug(&self) -> Plug {
        let mut conn = self.pool.begin().await.expect("begin");
        sqlx::query("SELECT balance FROM wallets WHERE user_id = $1 FOR UPDATE")
            .bind(PLUG.0)
            .fetch_one(&mut *conn)
            .await
            .expect("lock the plug");
        let store = self.store.clone();
        let charge = tokio::spawn(async move { charge(&store, PLUG, 1).await });
        self.wait_for(|n| n >= 1, "the worker to wait on the plug")
            .await;
        Plug { conn, charge }
    }

    /// Sessions of this store waiting on a lock.
    async fn lock_waiters(&self) -> Vec<i32> {
        sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1 \
             AND wait_event_type = 'Lock'",
        )
        .bind(&self.app)
        .fetch_all(&self.pool)
        .await
        .expect("pg_stat_activity")
    }

    async fn wait_for(&self, ok: impl Fn(usize) -> bool, what: &str) {
        for _ in 0..500 {
            if ok(self.lock_waiters().await.len()) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {what}");
    }

    /// Wait until `n` commands are queued behind the plug.
    async fn queued(&self, n: u64) {
        for _ in 0..500 {
            if self.store.batch_stats().expect("batched").waiting >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("timed out waiting for {n} queued commands");
    }

    /// Pull the plug and check that the next batch took the `n` queued commands at once.
    async fn pull(&self, plug: Plug, n: u64) {
        let before = self.store.batch_stats().expect("batched");
        plug.conn.rollback().await.expect("unplug");
        plug.charge.await.expect("join").expect("plug charge");
        // Wait until the queued commands have been taken and counted (a worker drains the
        // queue first and counts what it took just after, so `waiting == 0` alone can be seen
        // before the count).
        for _ in 0..500 {
            let now = self.store.batch_stats().expect("batched");
            if now.waiting == 0 && now.commands - before.commands >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let after = self.store.batch_stats().expect("batched");
        assert_eq!(
            after.commands - before.commands,
            n,
            "{before:?} -> {after:?}"
        );
        assert!(
            after.largest >= n,
            "the {n} commands met in one batch: {after:?}"
        );
    }

    async fn conn(&self) -> sqlx::pool::PoolConnection<sqlx::Postgres> {
        self.pool.acquire().await.expect("conn")
    }
}

fn spawn<T: Send + 'static>(
    f: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> JoinHandle<Result<T, Error>> {
    tokio::spawn(f)
}

async fn seat_owner(conn: &mut PgConnection, seat: i64) -> Option<uuid::Uuid> {
    sqlx::query_scalar("SELECT reservation_id FROM seats WHERE id = $1")
        .bind(seat)
        .fetch_one(conn)
        .await
        .expect("seat")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn two_holds_on_one_seat_in_one_batch_have_one_winner() {
    let Some(f) = fixture().await else { return };
    let plug = f.plug().await;
    let (a, b) = (hold_cmd(UserId(1), &[3]), hold_cmd(UserId(2), &[3, 4]));
    let (ida, idb) = (a.reservation_id, b.reservation_id);
    let ta = spawn({
        let s = f.store.clone();
        async move { s.hold(a).await }
    });
    f.queued(1).await;
    let tb = spawn({
        let s = f.store.clone();
        async move { s.hold(b).await }
    });
    f.queued(2).await;
    f.pull(plug, 2).await;
    let (ra, rb) = (ta.await.expect("join"), tb.await.expect("join"));
    assert!(ra.is_ok(), "the first in arrival order wins: {ra:?}");
    assert_eq!(
        rb.expect_err("the second loses").code(),
        ErrorCode::SeatUnavailable
    );
    let mut conn = f.conn().await;
    assert_eq!(seat_owner(&mut conn, 3).await, Some(ida.0));
    assert_eq!(seat_owner(&mut conn, 4).await, None, "all or none");
    let loser: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE id = $1")
        .bind(idb.0)
        .fetch_one(&mut *conn)
        .await
        .expect("count");
    assert_eq!(loser, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn two_payments_from_one_wallet_in_one_batch_never_overdraw_it() {
    let Some(f) = fixture().await else { return };
    let user = UserId(7);
    charge(&f.store, user, 150).await.expect("charge");
    let r1 = f.store.hold(hold_cmd(user, &[1])).await.expect("hold 1");
    let r2 = f.store.hold(hold_cmd(user, &[2])).await.expect("hold 2");
    let plug = f.plug().await;
    let t1 = spawn({
        let s = f.store.clone();
        async move { s.pay(pay_cmd(user, r1.id)).await }
    });
    f.queued(1).await;
    let t2 = spawn({
        let s = f.store.clone();
        async move { s.pay(pay_cmd(user, r2.id)).await }
    });
    f.queued(2).await;
    f.pull(plug, 2).await;
    let p1 = t1
        .await
        .expect("join")
        .expect("the first payment goes through");
    assert_eq!(p1.balance, Points(50));
    let e2 = t2
        .await
        .expect("join")
        .expect_err("the second would overdraw");
    assert_eq!(e2.code(), ErrorCode::InsufficientPoints);
    assert_eq!(f.store.balance(user).await.expect("balance"), Points(50));
    let mut conn = f.conn().await;
    let (payments, sales): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM payments WHERE user_id = $1), \
                (SELECT count(*) FROM seat_sales)",
    )
    .bind(user.0)
    .fetch_one(&mut *conn)
    .await
    .expect("counts");
    assert_eq!((payments, sales), (1, 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn a_hold_and_its_cancel_in_one_batch_leave_the_seat_free() {
    let Some(f) = fixture().await else { return };
    let user = UserId(8);
    charge(&f.store, user, 1_000).await.expect("charge");
    let plug = f.plug().await;
    let hold = hold_cmd(user, &[5]);
    let id = hold.reservation_id;
    let th = spawn({
        let s = f.store.clone();
        async move { s.hold(hold).await }
    });
    f.queued(1).await;
    let tc = spawn({
        let s = f.store.clone();
        async move {
            s.cancel(CancelCommand {
                reservation_id: id,
                user_id: user,
                now: now(),
                idempotency: None,
                fence: None,
            })
            .await
        }
    });
    f.queued(2).await;
    // And another buyer takes the seat the cancel freed, in the same batch.
    let other = hold_cmd(UserId(9), &[5]);
    let other_id = other.reservation_id;
    let to = spawn({
        let s = f.store.clone();
        async move { s.hold(other).await }
    });
    f.queued(3).await;
    f.pull(plug, 3).await;
    th.await.expect("join").expect("hold");
    let cancelled = tc
        .await
        .expect("join")
        .expect("cancel of the hold made just before");
    assert_eq!(
        cancelled.status,
        ticketing_core::ReservationStatus::Cancelled
    );
    to.await.expect("join").expect("the freed seat is taken");
    let mut conn = f.conn().await;
    assert_eq!(seat_owner(&mut conn, 5).await, Some(other_id.0));
    let stored = f.store.reservation(id, now()).await.expect("stored");
    assert_eq!(stored.status, ticketing_core::ReservationStatus::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn one_idempotency_key_twice_in_one_batch_holds_once() {
    let Some(f) = fixture().await else { return };
    let user = UserId(10);
    let key = IdempotencyKey::new(user, "k-1", "hold:1:6".into()).expect("key");
    let plug = f.plug().await;
    let mut handles = Vec::new();
    for i in 0..2 {
        let mut cmd = hold_cmd(user, &[6]);
        cmd.idempotency = Some(key.clone());
        let s = f.store.clone();
        handles.push(spawn(async move { s.hold(cmd).await }));
        f.queued(i + 1).await;
    }
    f.pull(plug, 2).await;
    let mut got = Vec::new();
    for h in handles {
        got.push(h.await.expect("join").expect("both answered with the hold"));
    }
    assert_eq!(got[0], got[1], "the retry gets the first answer");
    let mut conn = f.conn().await;
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM reservations WHERE user_id = $1")
        .bind(user.0)
        .fetch_one(&mut *conn)
        .await
        .expect("count");
    assert_eq!(n, 1);
}

/// A second plug user: a batch that contains its charge waits on its wallet after having taken
/// its other users' locks.
const PLUG2: UserId = UserId(999_998);

/// Kill the batch's connection while it waits on `PLUG2`, `times` times; returns the answers.
async fn killed_batch(f: &Fixture, times: usize) -> Vec<Result<(), Error>> {
    let (a, b) = (UserId(20), UserId(21));
    charge(&f.store, a, 1_000).await.expect("charge a");
    charge(&f.store, PLUG2, 1).await.expect("plug 2 wallet");
    let mut plug2 = f.pool.begin().await.expect("begin");
    sqlx::query("SELECT balance FROM wallets WHERE user_id = $1 FOR UPDATE")
        .bind(PLUG2.0)
        .fetch_one(&mut *plug2)
        .await
        .expect("lock plug 2");
    let plug = f.plug().await;
    let hold = hold_cmd(a, &[7]);
    let charge_b = ChargeCommand {
        user_id: b,
        amount: Points(500),
        now: now(),
        idempotency: Some(IdempotencyKey::new(b, "c-1", "charge:500".into()).expect("key")),
    };
    let th = spawn({
        let s = f.store.clone();
        async move { s.hold(hold).await.map(|_| ()) }
    });
    f.queued(1).await;
    let tc = spawn({
        let s = f.store.clone();
        async move { s.charge(charge_b).await.map(|_| ()) }
    });
    f.queued(2).await;
    let tp = spawn({
        let s = f.store.clone();
        async move { charge(&s, PLUG2, 1).await.map(|_| ()) }
    });
    f.queued(3).await;
    // The worker finishes the plug's batch and takes the three: that batch takes the per-user
    // locks of users 20, 21 and plug 2, then waits on plug 2's wallet.
    f.pull(plug, 3).await;
    let mut killed = Vec::new();
    while killed.len() < times {
        let mut pid = None;
        for _ in 0..500 {
            pid = f
                .lock_waiters()
                .await
                .into_iter()
                .find(|p| !killed.contains(p));
            if pid.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let pid = pid.expect("the batch waits on plug 2");
        let _: bool = sqlx::query_scalar("SELECT pg_terminate_backend($1)")
            .bind(pid)
            .fetch_one(&f.pool)
            .await
            .expect("terminate");
        killed.push(pid);
    }
    plug2.rollback().await.expect("unplug 2");
    let mut answers = Vec::new();
    for h in [th, tc, tp] {
        answers.push(h.await.expect("join"));
    }
    answers
}

async fn books(f: &Fixture) -> (i64, i64, i64) {
    let mut conn = f.conn().await;
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM reservations WHERE user_id = 20), \
                (SELECT coalesce(max(balance), 0) FROM wallets WHERE user_id = 21), \
                (SELECT count(*) FROM idempotency_keys WHERE user_id = 21)",
    )
    .fetch_one(&mut *conn)
    .await
    .expect("books")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn a_batch_killed_on_every_attempt_leaves_nothing_and_every_caller_may_retry() {
    let Some(f) = fixture().await else { return };
    // The first run and its three re-runs after a lost connection.
    let answers = killed_batch(&f, 4).await;
    for a in &answers {
        let e = a.as_ref().expect_err("the batch died on every attempt");
        assert!(e.is_retryable(), "{e:?}");
    }
    assert_eq!(books(&f).await, (0, 0, 0), "nothing of the batch happened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn a_batch_killed_once_is_run_again_and_applied_once() {
    let Some(f) = fixture().await else { return };
    let answers = killed_batch(&f, 1).await;
    for a in &answers {
        assert!(a.is_ok(), "the retry answered: {a:?}");
    }
    assert_eq!(books(&f).await, (1, 500, 1), "applied exactly once");
}

//! A payment transaction aborted between the debit and the confirmation (a trigger raises an
//! error on the payment row, after the wallet was debited inside the transaction): no point is
//! lost, the seat is not sold, the hold stays payable.

mod common;

use ticketing_core::testkit::{Harness, TestBackend, pay_request};
use ticketing_core::{ErrorCode, Points, ReservationStatus, SeatStatus};
use ticketing_postgres::{PgConfig, PgStore};

#[tokio::test]
#[cfg_attr(
    ticketing_no_database,
    ignore = "needs DATABASE_URL (a PostgreSQL server)"
)]
async fn a_payment_aborted_after_the_debit_changes_nothing() {
    let config = PgConfig::default();
    let Some(pool) = common::fresh_pool(&config).await else {
        return;
    };
    let store = PgStore::new(pool.clone(), config);
    let h = Harness::new(TestBackend::store_only(store)).await;
    let (victim, other) = (h.user(1), h.user(2));
    // The crash point: the statement after the debit fails for the victim's payments.
    let function = format!(
        "CREATE FUNCTION crash_after_debit() RETURNS trigger LANGUAGE plpgsql AS $$ \
         BEGIN IF NEW.user_id = {} THEN RAISE EXCEPTION 'crash between debit and confirm'; \
         END IF; RETURN NEW; END $$",
        victim.0
    );
    sqlx::query(sqlx::AssertSqlSafe(function))
        .execute(&pool)
        .await
        .expect("trigger function");
    sqlx::query(
        "CREATE TRIGGER crash BEFORE INSERT ON payments FOR EACH ROW EXECUTE FUNCTION crash_after_debit()",
    )
    .execute(&pool)
    .await
    .expect("trigger");

    h.charge(victim, Points(5_000)).await;
    h.charge(other, Points(5_000)).await;
    let r = h.hold(victim, &[h.seats[0]]).await.expect("hold");
    let crashed = h.service.pay(pay_request(victim, r.id)).await;
    assert!(crashed.is_err(), "the payment must fail at the crash point");
    assert_eq!(
        h.balance(victim).await,
        Points(5_000),
        "the debit was rolled back"
    );
    assert_eq!(
        h.statuses(&[h.seats[0]]).await,
        vec![SeatStatus::Held],
        "the seat is not sold"
    );
    let read = h.store.reservation(r.id, h.now()).await.expect("read");
    assert_eq!(read.status, ReservationStatus::Held);
    let payments: i64 = sqlx::query_scalar("SELECT count(*) FROM payments")
        .fetch_one(&pool)
        .await
        .expect("count");
    assert_eq!(payments, 0);

    // Others are unaffected, and once the fault is gone the same hold can be paid.
    let r2 = h.hold(other, &[h.seats[1]]).await.expect("hold");
    h.service
        .pay(pay_request(other, r2.id))
        .await
        .expect("unaffected payment");
    sqlx::query("DROP TRIGGER crash ON payments")
        .execute(&pool)
        .await
        .expect("drop");
    let paid = h
        .service
        .pay(pay_request(victim, r.id))
        .await
        .expect("paid after the fault");
    assert_eq!(paid.balance, Points(4_000));
    assert_eq!(h.statuses(&[h.seats[0]]).await, vec![SeatStatus::Sold]);
    let err = h
        .service
        .pay(pay_request(victim, r.id))
        .await
        .expect_err("paid once");
    assert_eq!(err.code(), ErrorCode::InvalidState);
}

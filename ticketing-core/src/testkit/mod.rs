//! The conformance suites every backend runs (feature `testkit`), one per trait.
//!
//! Plain async test functions in [`cases`], a model-based property test in [`model`], and a
//! macro per suite that a backend's test file invokes with a factory to get them as
//! `#[tokio::test]`s:
//!
//! - [`store_suite!`](crate::store_suite): a [`TicketStore`] (and the model test);
//! - [`fencing_conformance!`](crate::fencing_conformance): a store's own fencing-token check;
//! - [`queue_suite!`](crate::queue_suite): a [`WaitingQueue`] and the service's gate;
//! - [`conformance_suite!`](crate::conformance_suite): the store and queue suites together;
//! - [`lock_manager_suite!`](crate::lock_manager_suite): a [`LockManager`](crate::LockManager).
//!
//! ```ignore
//! async fn backend() -> Option<ticketing_core::testkit::TestBackend> {
//!     Some(TestBackend::store_only(MyStore::new()))
//! }
//! ticketing_core::store_suite!(backend);
//! ticketing_core::fencing_conformance!(backend);
//! ```
//!
//! The factory returns `None` to skip (a backend whose server is not configured), and must give
//! each call a store where `expire_due` and `outbox_ack` reach no other test's data (a new
//! in-memory store, or its own PostgreSQL schema). Every test also seeds its own catalog under
//! fresh random ids, so stores may be shared for everything else. The crate using the macro
//! needs `tokio` (with `macros` and `rt-multi-thread`) as a dev-dependency.

use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};

use crate::clock::ManualClock;
use crate::domain::{Catalog, Concert, Payment, Reservation, Seat, SeatStatus, ShowOption};
use crate::error::{Error, ErrorCode};
use crate::ids::{ConcertId, OptionId, ReservationId, SeatId, UserId};
use crate::money::Points;
use crate::queue::{QueueConfig, WaitingQueue};
use crate::service::{ChargeRequest, HoldRequest, PayRequest, ServiceConfig, TicketingService};
use crate::store::TicketStore;

pub mod cases;
pub mod defence;
pub mod hints;
pub mod locks;
pub mod model;
pub mod saga_model;

/// What a backend hands the suites: a store, and for the queue suite a waiting queue built
/// with [`queue_config`].
#[derive(Debug, Clone)]
pub struct TestBackend {
    /// The store under test (or, in the queue suite, the store the gate reads).
    pub store: Arc<dyn TicketStore>,
    /// The waiting queue under test; `None` for the store suite alone.
    pub queue: Option<Arc<dyn WaitingQueue>>,
}

impl TestBackend {
    /// Wrap a store and a queue.
    pub fn new(store: impl TicketStore, queue: impl WaitingQueue) -> Self {
        Self {
            store: Arc::new(store),
            queue: Some(Arc::new(queue)),
        }
    }

    /// A store alone, for [`store_suite!`](crate::store_suite) and
    /// [`fencing_conformance!`](crate::fencing_conformance).
    pub fn store_only(store: impl TicketStore) -> Self {
        Self {
            store: Arc::new(store),
            queue: None,
        }
    }
}

/// The queue configuration the suite's queue tests expect: 2 admitted a second, at most 3 at
/// once, admissions last 60 seconds.
pub fn queue_config() -> QueueConfig {
    QueueConfig {
        admit_per_sec: 2,
        max_active: 3,
        active_ttl: Duration::seconds(60),
    }
}

/// Seats of the main option of a fixture, each priced [`PRICE`].
pub const SEATS: usize = 60;
/// The price of every seat of the main option.
pub const PRICE: Points = Points(1_000);
/// The price of every seat of the other option.
pub const OTHER_PRICE: Points = Points(2_000);

/// A random base id with room for a million ids below the next one, so tests sharing a store
/// (or a database) never meet.
pub fn fresh_base() -> i64 {
    let random = (uuid::Uuid::new_v4().as_u128() >> 88) as i64; // 40 random bits
    (random + 1) << 20
}

/// One test's world: a freshly seeded concert with two options, a manual clock and services.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The store.
    pub store: Arc<dyn TicketStore>,
    /// The queue, if the backend has one (the queue suite's cases need it).
    pub queue: Option<Arc<dyn WaitingQueue>>,
    /// The clock every service here uses.
    pub clock: ManualClock,
    /// A service without queue gating, cap 4, hold TTL 5 minutes.
    pub service: TicketingService,
    /// The concert.
    pub concert: ConcertId,
    /// Its main option, with [`SEATS`] seats priced [`PRICE`].
    pub option: OptionId,
    /// The main option's seats, ascending.
    pub seats: Vec<SeatId>,
    /// Its other option, with 10 seats priced [`OTHER_PRICE`].
    pub other_option: OptionId,
    /// The other option's seats.
    pub other_seats: Vec<SeatId>,
    base: i64,
}

impl Harness {
    /// Seed a fresh catalog into the backend.
    pub async fn new(backend: TestBackend) -> Self {
        let base = fresh_base();
        let concert = ConcertId(base);
        let option = OptionId(base + 1);
        let other_option = OptionId(base + 2);
        let start = Utc::now().trunc_subsecs(6);
        let seat = |i: usize, opt: OptionId, price: Points| Seat {
            id: SeatId(base + 1000 + i as i64),
            option_id: opt,
            seat_no: format!("A-{i}"),
            grade: if i < 10 { "VIP".into() } else { "R".into() },
            price,
        };
        let mut seats: Vec<Seat> = (0..SEATS).map(|i| seat(i, option, PRICE)).collect();
        seats.extend((SEATS..SEATS + 10).map(|i| seat(i, other_option, OTHER_PRICE)));
        let catalog = Catalog {
            concerts: vec![Concert {
                id: concert,
                title: format!("Conformance {base}"),
                venue: "Test Hall".into(),
            }],
            options: vec![
                ShowOption::new(option, concert, start + Duration::days(30)),
                ShowOption::new(other_option, concert, start + Duration::days(31)),
            ],
            seats: seats.clone(),
        };
        backend
            .store
            .seed(&catalog)
            .await
            .expect("seeding a fresh catalog");
        let clock = ManualClock::new(start);
        let service = TicketingService::new(backend.store.clone(), ServiceConfig::default())
            .with_clock(Arc::new(clock.clone()));
        Self {
            store: backend.store,
            queue: backend.queue,
            clock,
            service,
            concert,
            option,
            seats: seats.iter().take(SEATS).map(|s| s.id).collect(),
            other_option,
            other_seats: seats.iter().skip(SEATS).map(|s| s.id).collect(),
            base,
        }
    }

    /// A service over the same store and clock with another configuration.
    pub fn service_with(&self, config: ServiceConfig) -> TicketingService {
        TicketingService::new(self.store.clone(), config).with_clock(Arc::new(self.clock.clone()))
    }

    /// A service over the same store, queue and clock that requires admitted queue tokens.
    ///
    /// # Panics
    /// If the backend has no queue: only the queue suite's cases call this.
    pub fn gated_service(&self) -> TicketingService {
        let queue = self
            .queue
            .clone()
            .expect("a queue case run on a backend without a queue: use queue_suite!");
        self.service_with(ServiceConfig::default())
            .with_queue(queue)
    }

    /// The `n`th user of this test (n from 0).
    pub fn user(&self, n: i64) -> UserId {
        UserId(self.base + 500_000 + n)
    }

    /// Now, on this test's clock.
    pub fn now(&self) -> DateTime<Utc> {
        use crate::clock::Clock;
        self.clock.now()
    }

    /// Hold seats of the main option for a user.
    pub async fn hold(&self, user: UserId, seats: &[SeatId]) -> Result<Reservation, Error> {
        self.service
            .hold(hold_request(user, self.option, seats))
            .await
    }

    /// Pay a reservation.
    pub async fn pay(&self, user: UserId, id: ReservationId) -> Result<Payment, Error> {
        self.service.pay(pay_request(user, id)).await
    }

    /// Charge points, expecting success.
    pub async fn charge(&self, user: UserId, amount: Points) {
        self.service
            .charge(ChargeRequest::new(user, amount))
            .await
            .expect("charging a valid amount");
    }

    /// A user's balance.
    pub async fn balance(&self, user: UserId) -> Points {
        self.store.balance(user).await.expect("reading a balance")
    }

    /// The status of each given seat of the main option, now.
    pub async fn statuses(&self, seats: &[SeatId]) -> Vec<SeatStatus> {
        let all = self
            .store
            .seats(self.option, self.now())
            .await
            .expect("listing seats");
        seats
            .iter()
            .map(|id| {
                all.iter()
                    .find(|v| v.seat.id == *id)
                    .map(|v| v.status)
                    .expect("seat of the option")
            })
            .collect()
    }

    /// How many seats of the main option are available now.
    pub async fn available(&self) -> usize {
        let all = self
            .store
            .seats(self.option, self.now())
            .await
            .expect("listing seats");
        all.iter()
            .filter(|v| v.status == SeatStatus::Available)
            .count()
    }
}

/// A hold request without token or key.
pub fn hold_request(user: UserId, option: OptionId, seats: &[SeatId]) -> HoldRequest {
    HoldRequest::new(user, option, seats)
}

/// A pay request without token or key.
pub fn pay_request(user: UserId, id: ReservationId) -> PayRequest {
    PayRequest::new(user, id)
}

/// Assert that a result failed with `code`, showing what it was otherwise.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(result: Result<T, Error>, code: ErrorCode) {
    match result {
        Err(e) => assert_eq!(e.code(), code, "expected {code}, got error {e:?}"),
        Ok(v) => panic!("expected {code}, got success {v:?}"),
    }
}

/// Generate the store conformance tests for a backend factory: an `async fn() ->
/// Option<TestBackend>` (returning `None` skips each test, after printing why), whose store is
/// under test; its queue may be absent ([`TestBackend::store_only`]). Also the model-based
/// property test. Attributes after a `;` are put on every test, e.g. to show them as not run
/// when a server is missing: `store_suite!(backend; #[cfg_attr(no_server, ignore = "needs a
/// server")])`.
#[macro_export]
macro_rules! store_suite {
    ($factory:path $(; #[$attr:meta])*) => {
        $crate::__conformance_cases!($factory, [$(#[$attr])*];
            catalog_lists_what_was_seeded,
            seeding_taken_ids_is_rejected_whole,
            hold_places_one_seat,
            hold_is_all_or_nothing,
            hold_rejects_bad_seat_lists,
            hold_of_unknown_seat_or_option_is_not_found,
            hold_of_another_options_seat_is_rejected,
            hold_expires_exactly_at_its_end,
            expired_seat_can_be_held_again,
            pay_confirms_and_debits,
            free_seats_are_held_paid_and_cancelled,
            pay_after_expiry_is_hold_expired_and_charges_nothing,
            insufficient_points_changes_nothing,
            paying_twice_is_invalid_state,
            paying_anothers_reservation_is_forbidden,
            cancel_hold_frees_seats_without_refund,
            cancel_confirmed_refunds_and_frees_seats,
            cancelling_twice_or_after_expiry_is_invalid_state,
            cancelling_anothers_reservation_is_forbidden,
            unknown_reservation_is_not_found,
            per_user_cap_counts_held_and_sold,
            cap_is_freed_by_cancel_and_expiry,
            idempotent_hold_returns_first_result,
            idempotent_hold_replay_shows_the_reservation_as_it_is_now,
            idempotency_key_reused_with_other_request_conflicts,
            idempotency_keys_are_scoped_per_user,
            idempotent_payment_and_charge,
            idempotent_cancel_returns_the_first_answer,
            a_keyed_cancel_is_replayed_by_the_store,
            retention_forgets_only_old_idempotency_records,
            charge_rejects_bad_amounts_and_overflow,
            expire_due_moves_holds_and_emits_events,
            outbox_records_changes_in_order_and_acks,
            user_reservations_newest_first,
            option_counts_follow_holds_and_expiry,
            sale_window_bounds_holds_and_payments,
            a_sale_ends_when_the_show_starts_unless_told_otherwise,
            closing_a_sale_stops_holds_and_payments_at_once,
            payments_check_the_end_and_refunds_stop_at_the_show,
            closing_a_sale_stops_the_holds_in_flight,
            concurrent_holds_on_one_seat_have_one_winner,
            concurrent_payments_never_overdraw,
            concurrent_overlapping_holds_never_share_a_seat,
            concurrent_holds_by_one_user_respect_the_cap,
            concurrent_retries_with_one_key_hold_once,
            concurrent_retries_of_one_keyed_cancel_refund_once,
            concurrent_sweepers_expire_each_hold_once,
        );

        #[test]
        $(#[$attr])*
        fn model_based_random_operations_keep_every_invariant() {
            $crate::testkit::model::check(|| ::std::boxed::Box::pin($factory()));
        }
    };
}

/// Generate the waiting-queue conformance tests for a backend factory whose queue is under test
/// (FIFO, rate and max-active admission, expiry, leaving, and the service's gate on holds and
/// payments). The factory's store only serves the gate: any conforming store will do, e.g. the
/// memory store. Attributes as for [`store_suite!`](crate::store_suite).
#[macro_export]
macro_rules! queue_suite {
    ($factory:path $(; #[$attr:meta])*) => {
        $crate::__conformance_cases!($factory, [$(#[$attr])*];
            queue_is_fifo_and_idempotent_per_user,
            queue_admits_by_rate_and_max_active,
            queue_lengths_count_waiting_and_admitted,
            admitted_token_expires_and_rejoining_gets_a_new_token,
            gated_hold_needs_an_admitted_token_of_the_same_user_and_concert,
            leaving_an_admitted_token_frees_its_place_at_once,
            a_waiting_token_that_leaves_is_never_admitted,
            paying_ends_the_buyers_queue_token,
            concurrent_admitters_never_exceed_max_active,
        );
    };
}

/// Generate the provider-payment conformance tests (docs/payments.md) for a factory whose store
/// keeps payments through a provider (`TicketStore::begin_provider_payment` and the rest;
/// stores that do not, the default, skip this suite). Attributes as for
/// [`store_suite!`](crate::store_suite).
#[macro_export]
macro_rules! provider_suite {
    ($factory:path $(; #[$attr:meta])*) => {
        $crate::__conformance_cases!($factory, [$(#[$attr])*];
            a_charge_in_flight_keeps_the_seats_and_blocks_other_moves,
            a_capture_in_time_confirms_once,
            a_declined_charge_releases_the_seats,
            a_capture_after_the_seats_were_lost_is_refunded,
            cancelling_a_provider_paid_reservation_refunds_through_the_provider,
            a_keyed_begin_replays_and_pending_attempts_are_listed,
            a_capture_after_the_sale_closed_is_refunded_and_the_hold_released,
            a_provider_payment_confirms_and_takes_the_amount_once,
            a_declined_provider_payment_frees_the_seats,
            a_late_capture_reported_twice_confirms_once,
            a_lost_answer_is_found_and_confirmed_by_recovery,
            an_unknown_charge_past_its_deadline_is_voided_and_released,
            a_capture_after_the_deadline_is_refunded_by_recovery,
            an_unreachable_provider_is_retried_under_the_same_key,
            a_cancel_refunds_a_provider_payment_once,
            concurrent_answers_settle_a_charge_once,
        );

        #[test]
        $(#[$attr])*
        fn saga_random_provider_behaviours_and_crashes_keep_the_books() {
            $crate::testkit::saga_model::check(|| ::std::boxed::Box::pin($factory()));
        }
    };
}

/// Both [`store_suite!`](crate::store_suite) and [`queue_suite!`](crate::queue_suite), for a
/// factory whose store and queue are both under test.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:path $(; #[$attr:meta])*) => {
        $crate::store_suite!($factory $(; #[$attr])*);
        $crate::queue_suite!($factory $(; #[$attr])*);
    };
}

/// The store-level fencing test, for stores themselves (not for a
/// [`FencedStore`](crate::FencedStore), which sets the tokens of its own lock manager).
#[macro_export]
macro_rules! fencing_conformance {
    ($factory:path $(; #[$attr:meta])*) => {
        $crate::__conformance_cases!($factory, [$(#[$attr])*]; stale_fencing_tokens_are_refused);
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_cases {
    ($factory:path, [$(#[$attr:meta])*]; $name:ident $(, $rest:ident)* $(,)?) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 4)]
        $(#[$attr])*
        async fn $name() {
            let Some(backend) = $factory().await else { return };
            $crate::testkit::cases::$name(backend).await;
        }
        $crate::__conformance_cases!($factory, [$(#[$attr])*]; $($rest),*);
    };
    ($factory:path, [$(#[$attr:meta])*];) => {};
}

/// Every case is registered, once: the `pub async fn`s of the case files and the names the
/// suite macros list agree, so a case that is written but not listed (it would never run) or a
/// listed name without a case fails here.
#[cfg(test)]
mod registration {
    use std::collections::BTreeSet;

    /// The names of the store and queue cases of a source file.
    fn cases(src: &str) -> Vec<String> {
        cases_taking(src, "TestBackend")
    }

    /// The names of the cases of a source file: every `async fn` whose signature names
    /// `subject` (what a case is given), which must be a `pub async fn` at the top level
    /// (anything else could never be run by a suite).
    fn cases_taking(src: &str, subject: &str) -> Vec<String> {
        let lines: Vec<&str> = src.lines().collect();
        let mut names = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            let Some(at) = line.find("async fn ") else {
                continue;
            };
            // The signature, up to its body, over as many lines as rustfmt wrapped it on.
            let signature: String = lines[i..]
                .iter()
                .take(6)
                .copied()
                .collect::<Vec<_>>()
                .join(" ");
            let signature = signature.split('{').next().unwrap_or_default();
            if !signature.contains(subject) {
                continue;
            }
            assert!(
                line.starts_with("pub async fn "),
                "a case must be a top-level `pub async fn`: {line}"
            );
            let name = line[at + "async fn ".len()..]
                .split(['(', '<'])
                .next()
                .unwrap_or_default();
            names.push(name.to_owned());
        }
        names
    }

    /// The names a suite macro lists: the identifiers between its `[$(#[$attr])*];` and `);`.
    fn registered(src: &str, suite: &str) -> Vec<String> {
        let start = src
            .find(&format!("macro_rules! {suite}"))
            .unwrap_or_else(|| panic!("macro {suite}"));
        let body = &src[start..];
        let list = body
            .find("[$(#[$attr])*];")
            .map(|i| &body[i + "[$(#[$attr])*];".len()..])
            .unwrap_or_else(|| panic!("the case list of {suite}"));
        let end = list
            .find(");")
            .unwrap_or_else(|| panic!("the end of {suite}'s list"));
        list[..end]
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn once(names: Vec<String>) -> BTreeSet<String> {
        let set: BTreeSet<String> = names.iter().cloned().collect();
        assert_eq!(set.len(), names.len(), "a name listed twice: {names:?}");
        set
    }

    /// Every file of `cases/`, and the suite that runs its cases (a new file must be added
    /// here: the next test checks that the module declares no other).
    const CASE_FILES: [(&str, &str, &str); 13] = [
        ("cancels", "store_suite", include_str!("cases/cancels.rs")),
        ("caps", "store_suite", include_str!("cases/caps.rs")),
        ("catalog", "store_suite", include_str!("cases/catalog.rs")),
        (
            "fencing",
            "fencing_conformance",
            include_str!("cases/fencing.rs"),
        ),
        ("holds", "store_suite", include_str!("cases/holds.rs")),
        (
            "idempotency",
            "store_suite",
            include_str!("cases/idempotency.rs"),
        ),
        ("payments", "store_suite", include_str!("cases/payments.rs")),
        (
            "provider",
            "provider_suite",
            include_str!("cases/provider.rs"),
        ),
        ("queue", "queue_suite", include_str!("cases/queue.rs")),
        ("races", "store_suite", include_str!("cases/races.rs")),
        ("records", "store_suite", include_str!("cases/records.rs")),
        ("saga", "provider_suite", include_str!("cases/saga.rs")),
        ("sale", "store_suite", include_str!("cases/sale.rs")),
    ];

    #[test]
    fn every_case_file_is_read_by_the_registration_check() {
        let src = include_str!("cases/mod.rs");
        let declared: BTreeSet<&str> = src
            .lines()
            .filter_map(|l| l.trim().strip_suffix(';'))
            .filter_map(|l| l.split("mod ").nth(1))
            .filter(|name| !name.contains(' '))
            .collect();
        let read: BTreeSet<&str> = CASE_FILES.iter().map(|(name, _, _)| *name).collect();
        assert_eq!(declared, read);
        assert_eq!(
            cases(src),
            Vec::<String>::new(),
            "cases belong in the case files"
        );
    }

    #[test]
    fn every_case_is_registered_once_in_the_suite_of_its_file() {
        let this = include_str!("mod.rs");
        for suite in [
            "store_suite",
            "queue_suite",
            "fencing_conformance",
            "provider_suite",
        ] {
            let written = CASE_FILES
                .iter()
                .filter(|(_, of, _)| *of == suite)
                .flat_map(|(_, _, src)| cases(src))
                .collect();
            assert_eq!(once(registered(this, suite)), once(written), "{suite}");
        }
    }

    #[test]
    fn a_case_that_is_not_a_top_level_pub_async_fn_is_caught() {
        let wrapped = "pub async fn wrapped(\n    b: TestBackend,\n) {\n}\n";
        assert_eq!(cases(wrapped), ["wrapped"]);
        let hidden = "pub(crate) async fn hidden(b: TestBackend) {}";
        assert!(std::panic::catch_unwind(|| cases(hidden)).is_err());
        assert!(cases("async fn helper(h: &Harness) {}").is_empty());
    }

    #[test]
    fn every_lock_manager_case_is_registered_once_and_every_registration_is_a_case() {
        let src = include_str!("locks.rs");
        assert_eq!(
            once(registered(src, "lock_manager_suite")),
            once(cases_taking(src, "Arc<dyn LockManager>"))
        );
    }
}

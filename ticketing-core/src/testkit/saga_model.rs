//! Property test of payments through a provider (docs/payments.md): random provider
//! behaviours (approve, decline, unreachable, late, answer lost), crashes between the saga's
//! steps (after the begin, before the provider call; after the provider captured, before the
//! settle), late answers and webhooks (sometimes twice), cancels, points payments, time passing
//! and recovery steps, on a real backend with the fake provider. After every step: every
//! reservation sold through the provider has its charge captured, no seat is in two live
//! reservations, and a reservation's money at the provider (captured minus refunded) differs
//! from what it was sold for only while one of its attempts is pending. At the end, after the
//! deadlines pass and the recovery job has run, the books hold exactly: for every reservation,
//! captured minus refunded equals its amount if it is sold through the provider, else 0.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use chrono::Duration;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

use super::{Harness, TestBackend};
use crate::domain::{ReservationStatus, SeatStatus};
use crate::ids::{AttemptId, ReservationId, SeatId};
use crate::money::Points;
use crate::provider::fake::{Behaviour, FakeProvider};
use crate::provider::{AttemptKind, BeginPaymentCommand, PaymentProvider, ProviderCharge};
use crate::service::{CancelRequest, ChargeRequest, PayRequest, ServiceConfig, TicketingService};

const SEATS: u8 = 5;
const USERS: u8 = 3;
/// The points each buyer starts with.
const START: i64 = 1_000_000;

/// One step of a random saga scenario.
#[derive(Debug, Clone)]
pub enum Op {
    /// Hold one seat.
    Hold {
        /// Who.
        user: u8,
        /// Which seat.
        seat: u8,
    },
    /// Pay the `pick`th reservation through the provider, which behaves as told.
    PayProvider {
        /// Which reservation.
        pick: usize,
        /// 0 approve, 1 decline, 2 unreachable, 3 late, 4 answer lost.
        behaviour: u8,
    },
    /// Pay the `pick`th reservation with points.
    PayPoints {
        /// Which reservation.
        pick: usize,
    },
    /// The server dies after the begin, before calling the provider.
    CrashAfterBegin {
        /// Which reservation.
        pick: usize,
    },
    /// The server dies after the provider captured, before the settle.
    CrashAfterCharge {
        /// Which reservation.
        pick: usize,
    },
    /// The provider finishes its late charges and sends their webhooks (`twice`: each twice).
    Deliver {
        /// Whether every webhook comes twice.
        twice: bool,
    },
    /// Cancel the `pick`th reservation (by its owner).
    Cancel {
        /// Which reservation.
        pick: usize,
        /// Whether the provider's next refund call fails.
        refund_down: bool,
    },
    /// Let time pass.
    Advance {
        /// Seconds.
        secs: i64,
    },
    /// One step of the recovery job.
    Recover,
    /// One step of the expiry sweeper.
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..USERS, 0..SEATS).prop_map(|(user, seat)| Op::Hold { user, seat }),
        4 => (0..8usize, 0..5u8).prop_map(|(pick, behaviour)| Op::PayProvider { pick, behaviour }),
        1 => (0..8usize).prop_map(|pick| Op::PayPoints { pick }),
        1 => (0..8usize).prop_map(|pick| Op::CrashAfterBegin { pick }),
        1 => (0..8usize).prop_map(|pick| Op::CrashAfterCharge { pick }),
        2 => any::<bool>().prop_map(|twice| Op::Deliver { twice }),
        2 => (0..8usize, any::<bool>()).prop_map(|(pick, refund_down)| Op::Cancel { pick, refund_down }),
        2 => prop_oneof![Just(30i64), Just(130), Just(400)].prop_map(|secs| Op::Advance { secs }),
        2 => Just(Op::Recover),
        1 => Just(Op::Sweep),
    ]
}

struct Case<'a> {
    h: &'a Harness,
    fake: FakeProvider,
    svc: TicketingService,
    made: Vec<ReservationId>,
}

impl Case<'_> {
    fn pick(&self, pick: usize) -> Option<ReservationId> {
        (!self.made.is_empty()).then(|| self.made[pick % self.made.len()])
    }

    async fn owner(&self, id: ReservationId) -> Result<crate::ids::UserId, String> {
        self.h
            .store
            .reservation(id, self.h.now())
            .await
            .map(|r| r.user_id)
            .map_err(|e| e.to_string())
    }

    async fn begin(
        &self,
        id: ReservationId,
    ) -> Result<Option<crate::provider::PaymentAttempt>, String> {
        let user = self.owner(id).await?;
        Ok(self
            .h
            .store
            .begin_provider_payment(BeginPaymentCommand {
                reservation_id: id,
                user_id: user,
                now: self.h.now(),
                bound: ServiceConfig::default().provider_bound,
                attempt_id: AttemptId::new(),
                idempotency: None,
            })
            .await
            .ok())
    }

    async fn step(&mut self, op: &Op) -> Result<(), String> {
        let h = self.h;
        match op {
            Op::Hold { user, seat } => {
                let seat: SeatId = h.seats[*seat as usize];
                if let Ok(r) = h.hold(h.user(i64::from(*user)), &[seat]).await {
                    self.made.push(r.id);
                }
            }
            Op::PayProvider { pick, behaviour } => {
                let Some(id) = self.pick(*pick) else {
                    return Ok(());
                };
                let user = self.owner(id).await?;
                self.fake.script([match behaviour {
                    0 => Behaviour::Approve,
                    1 => Behaviour::Decline("declined by the test".into()),
                    2 => Behaviour::Unavailable,
                    3 => Behaviour::Late,
                    _ => Behaviour::LoseAnswer,
                }]);
                let _ = self.svc.pay_by_provider(PayRequest::new(user, id)).await;
                self.fake.clear_script();
            }
            Op::PayPoints { pick } => {
                let Some(id) = self.pick(*pick) else {
                    return Ok(());
                };
                let user = self.owner(id).await?;
                let _ = h.service.pay(PayRequest::new(user, id)).await;
            }
            Op::CrashAfterBegin { pick } => {
                if let Some(id) = self.pick(*pick) {
                    self.begin(id).await?;
                }
            }
            Op::CrashAfterCharge { pick } => {
                let Some(id) = self.pick(*pick) else {
                    return Ok(());
                };
                if let Some(a) = self.begin(id).await? {
                    let _ = self
                        .fake
                        .charge(&ProviderCharge {
                            key: a.key.clone(),
                            amount: a.amount,
                            description: id.to_string(),
                        })
                        .await;
                }
            }
            Op::Deliver { twice } => {
                if *twice {
                    self.fake.send_webhooks_twice();
                }
                self.fake.deliver_late();
                for hook in self.fake.take_webhooks() {
                    let _ = self.svc.provider_webhook(&hook.key).await;
                }
            }
            Op::Cancel { pick, refund_down } => {
                let Some(id) = self.pick(*pick) else {
                    return Ok(());
                };
                let user = self.owner(id).await?;
                if *refund_down {
                    self.fake.refunds_unavailable(1);
                }
                let _ = self.svc.cancel(CancelRequest::new(user, id)).await;
                self.fake.refunds_unavailable(0);
            }
            Op::Advance { secs } => h.clock.advance(Duration::seconds(*secs)),
            Op::Sweep => {
                h.store
                    .expire_due(h.now(), 100)
                    .await
                    .map_err(|e| format!("sweep failed: {e}"))?;
            }
            Op::Recover => {
                self.svc
                    .recover_payments(1_000, Duration::seconds(30))
                    .await
                    .map_err(|e| format!("recovery failed: {e}"))?;
            }
        }
        Ok(())
    }

    /// The books, per reservation: `strict` once nothing is pending.
    async fn check(&self, strict: bool) -> Result<(), String> {
        let h = self.h;
        let now = h.now();
        let mut claimed: HashMap<SeatId, ReservationId> = HashMap::new();
        // What each buyer's points must be: the start, less what they paid with points for
        // reservations confirmed and not paid through the provider (a reservation paid both
        // ways, or a provider payment debited from points, shows here).
        let mut points: HashMap<crate::ids::UserId, i64> = HashMap::new();
        for id in &self.made {
            let r = h
                .store
                .reservation(*id, now)
                .await
                .map_err(|e| e.to_string())?;
            let attempts = h
                .store
                .reservation_attempts(*id)
                .await
                .map_err(|e| e.to_string())?;
            let pending = attempts.iter().any(|a| a.is_pending());
            let net: i64 = attempts
                .iter()
                .filter(|a| a.kind == AttemptKind::Charge)
                .map(|a| self.fake.net(&a.key).0)
                .sum();
            let paying = crate::rules::paying_charge(&attempts);
            let by_provider = r.status == ReservationStatus::Confirmed && paying.is_some();
            if by_provider {
                let charge = paying.expect("checked");
                if self.fake.captured(&charge.key) != r.amount {
                    return Err(format!(
                        "{id} is sold through the provider without its capture"
                    ));
                }
            }
            if r.status == ReservationStatus::Confirmed && !by_provider {
                *points.entry(r.user_id).or_default() += r.amount.0;
            }
            let expected = if by_provider { r.amount.0 } else { 0 };
            if (strict || !pending) && net != expected {
                return Err(format!(
                    "{id} ({:?}, {} attempts, pending {pending}): provider net {net}, expected {expected}",
                    r.status,
                    attempts.len()
                ));
            }
            if pending && !(0..=r.amount.0).contains(&net) {
                return Err(format!(
                    "{id}: provider net {net} out of range while pending"
                ));
            }
            if strict && pending {
                return Err(format!("{id}: an attempt is still pending after recovery"));
            }
            if matches!(
                r.status,
                ReservationStatus::Held | ReservationStatus::Confirmed
            ) {
                for s in &r.seat_ids {
                    if let Some(other) = claimed.insert(*s, r.id) {
                        return Err(format!("seat {s} in {other} and {}", r.id));
                    }
                }
            }
        }
        for u in 0..USERS {
            let user = h.user(i64::from(u));
            let balance = h.balance(user).await.0;
            let spent = points.get(&user).copied().unwrap_or(0);
            if balance != START - spent {
                return Err(format!(
                    "user {u}: {balance} points, expected {START} less {spent} paid with points"
                ));
            }
        }
        let statuses = h.statuses(&h.seats[..SEATS as usize]).await;
        for (i, status) in statuses.iter().enumerate() {
            let sold_to = claimed.get(&h.seats[i]);
            if *status == SeatStatus::Sold && sold_to.is_none() {
                return Err(format!("seat {i} is sold to no live reservation"));
            }
        }
        Ok(())
    }
}

async fn run_case(h: &Harness, ops: &[Op]) -> Result<(), String> {
    let fake = FakeProvider::new();
    fake.record_webhooks();
    let svc = h
        .service_with(ServiceConfig::default())
        .with_provider(Arc::new(fake.clone()));
    for u in 0..USERS {
        h.service
            .charge(ChargeRequest::new(h.user(i64::from(u)), Points(START)))
            .await
            .map_err(|e| e.to_string())?;
    }
    let mut case = Case {
        h,
        fake,
        svc,
        made: Vec::new(),
    };
    for (step, op) in ops.iter().enumerate() {
        case.step(op)
            .await
            .map_err(|e| format!("step {step} {op:?}: {e}"))?;
        case.check(false)
            .await
            .map_err(|e| format!("after step {step} {op:?}: {e}"))?;
    }
    // Recovery to the end: every deadline passes, late answers arrive, the job runs.
    for _ in 0..3 {
        case.h.clock.advance(Duration::hours(1));
        case.fake.deliver_late();
        case.svc
            .recover_payments(1_000, Duration::seconds(30))
            .await
            .map_err(|e| format!("recovery failed: {e}"))?;
    }
    case.check(true)
        .await
        .map_err(|e| format!("after recovery: {e}"))?;
    Ok(())
}

/// Run the saga property test on a backend: `PROPTEST_CASES` scenarios (default 32) of up to
/// 30 steps.
pub fn check(factory: impl Fn() -> Pin<Box<dyn Future<Output = Option<TestBackend>>>>) {
    let Some((rt, backend, mut runner)) = super::model::setup(factory, 32) else {
        return;
    };
    let result = runner.run(&prop::collection::vec(op(), 1..30), |ops| {
        rt.block_on(async {
            let h = Harness::new(backend.clone()).await;
            run_case(&h, &ops).await.map_err(TestCaseError::fail)
        })
    });
    if let Err(e) = result {
        panic!("saga property test failed: {e}");
    }
}

//! A payment provider in memory that tests drive (feature `fake-provider`, on with `testkit`):
//! it approves, declines, is unavailable, times out, answers late, loses its answer after
//! charging, or sends its webhook twice, as told; and it keeps the books the tests check
//! (captured minus refunded, per charge key). The example server and the rush tool use it to
//! show the flow without an account anywhere, with a latency of its own.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;

use super::{
    ChargeOutcome, ChargeStatus, PaymentProvider, ProviderCharge, ProviderError, ProviderRefund,
    RefundOutcome,
};
use crate::money::Points;

/// What the fake does with the next charge call.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Behaviour {
    /// Capture, and answer so.
    Approve,
    /// Decline with this reason, and answer so.
    Decline(String),
    /// Do nothing and answer [`ProviderError::Unavailable`].
    Unavailable,
    /// Do nothing now and answer [`ProviderError::OutcomeUnknown`] (the caller's timeout); the
    /// charge stays in flight at the provider until [`FakeProvider::deliver_late`] captures it
    /// (unless it was voided meanwhile).
    Late,
    /// Capture, then answer [`ProviderError::OutcomeUnknown`] (the answer was lost).
    LoseAnswer,
}

/// A webhook the provider would send: the outcome of the charge under `key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// The charge's idempotency key.
    pub key: String,
    /// Its outcome.
    pub outcome: ChargeOutcome,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Charge {
    InFlight,
    Done(ChargeOutcome),
}

#[derive(Debug, Clone)]
struct Entry {
    amount: Points,
    state: Charge,
}

#[derive(Debug, Default)]
struct State {
    script: VecDeque<Behaviour>,
    charges: HashMap<String, Entry>,
    /// Refund key -> (charge key, amount, outcome).
    refunds: HashMap<String, (String, Points, RefundOutcome)>,
    /// Keys voided before any charge arrived under them.
    voided: Vec<String>,
    webhooks: Vec<Webhook>,
    recording: bool,
    twice: bool,
    calls: u64,
    unavailable_refunds: u32,
}

/// The fake provider. Cheap to clone (clones share the books).
#[derive(Debug, Clone, Default)]
pub struct FakeProvider {
    state: Arc<Mutex<State>>,
    latency: Duration,
}

fn reference(key: &str) -> String {
    format!("fake-{key}")
}

impl FakeProvider {
    /// A provider that approves every charge at once.
    pub fn new() -> Self {
        Self::default()
    }

    /// Wait this long in every call (a real provider's round trip), on the tokio timer.
    pub fn with_latency(mut self, latency: chrono::Duration) -> Self {
        self.latency = latency.to_std().unwrap_or_default();
        self
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Behave so for the next charge calls, in order; after them, approve.
    pub fn script(&self, behaviours: impl IntoIterator<Item = Behaviour>) {
        self.state().script.extend(behaviours);
    }

    /// Forget the behaviours not used yet (a scripted call that never came).
    pub fn clear_script(&self) {
        self.state().script.clear();
    }

    /// Record the webhooks it would send, for [`FakeProvider::take_webhooks`] (off by default,
    /// so a long-running fake that nobody drains does not grow).
    pub fn record_webhooks(&self) {
        self.state().recording = true;
    }

    /// Record every webhook, twice (a provider that retries a delivered webhook).
    pub fn send_webhooks_twice(&self) {
        let mut st = self.state();
        st.recording = true;
        st.twice = true;
    }

    /// Answer the next `n` refund calls [`ProviderError::Unavailable`] (nothing refunded).
    pub fn refunds_unavailable(&self, n: u32) {
        self.state().unavailable_refunds = n;
    }

    /// Finish the charges left in flight by [`Behaviour::Late`]: captured (unless voided
    /// meanwhile). Returns their webhooks.
    pub fn deliver_late(&self) -> Vec<Webhook> {
        let mut st = self.state();
        let mut delivered = Vec::new();
        for (key, entry) in st.charges.iter_mut() {
            if entry.state == Charge::InFlight {
                let outcome = ChargeOutcome::Captured {
                    reference: reference(key),
                };
                entry.state = Charge::Done(outcome.clone());
                delivered.push(Webhook {
                    key: key.clone(),
                    outcome,
                });
            }
        }
        delivered.sort_by(|a, b| a.key.cmp(&b.key));
        for w in &delivered {
            Self::push_webhook(&mut st, &w.key, &w.outcome);
        }
        delivered
    }

    /// The webhooks sent so far (each outcome decided, twice over if told), and forget them.
    pub fn take_webhooks(&self) -> Vec<Webhook> {
        std::mem::take(&mut self.state().webhooks)
    }

    /// Points captured under `key` (0 if none).
    pub fn captured(&self, key: &str) -> Points {
        match self.state().charges.get(key) {
            Some(Entry {
                amount,
                state: Charge::Done(ChargeOutcome::Captured { .. }),
            }) => *amount,
            _ => Points(0),
        }
    }

    /// Points refunded of the charge under `charge_key`.
    pub fn refunded(&self, charge_key: &str) -> Points {
        self.state()
            .refunds
            .values()
            .filter(|(charge, _, outcome)| {
                charge == charge_key && matches!(outcome, RefundOutcome::Refunded { .. })
            })
            .fold(Points(0), |sum, (_, amount, _)| {
                sum.checked_add(*amount).unwrap_or(sum)
            })
    }

    /// Captured minus refunded, under `charge_key`.
    pub fn net(&self, charge_key: &str) -> Points {
        Points(self.captured(charge_key).0 - self.refunded(charge_key).0)
    }

    /// Every charge key the provider has seen.
    pub fn charge_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.state().charges.keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Charge calls received (repeats included).
    pub fn calls(&self) -> u64 {
        self.state().calls
    }

    async fn wait(&self) {
        if !self.latency.is_zero() {
            tokio::time::sleep(self.latency).await;
        }
    }

    fn push_webhook(st: &mut State, key: &str, outcome: &ChargeOutcome) {
        if !st.recording {
            return;
        }
        let copies = if st.twice { 2 } else { 1 };
        for _ in 0..copies {
            st.webhooks.push(Webhook {
                key: key.to_owned(),
                outcome: outcome.clone(),
            });
        }
    }
}

#[async_trait]
impl PaymentProvider for FakeProvider {
    async fn charge(&self, charge: &ProviderCharge) -> Result<ChargeOutcome, ProviderError> {
        self.wait().await;
        let mut st = self.state();
        st.calls += 1;
        if let Some(entry) = st.charges.get(&charge.key) {
            return match &entry.state {
                Charge::Done(outcome) => Ok(outcome.clone()),
                Charge::InFlight => Err(ProviderError::OutcomeUnknown {
                    message: "the first call under this key is still being processed".into(),
                }),
            };
        }
        if st.voided.contains(&charge.key) {
            return Ok(ChargeOutcome::Declined {
                reason: "voided".into(),
            });
        }
        let behaviour = st.script.pop_front().unwrap_or(Behaviour::Approve);
        let captured = ChargeOutcome::Captured {
            reference: reference(&charge.key),
        };
        let (state, answer) = match behaviour {
            Behaviour::Approve => (Some(Charge::Done(captured.clone())), Ok(captured)),
            Behaviour::Decline(reason) => {
                let declined = ChargeOutcome::Declined { reason };
                (Some(Charge::Done(declined.clone())), Ok(declined))
            }
            Behaviour::Unavailable => (
                None,
                Err(ProviderError::Unavailable {
                    message: "the fake provider is down".into(),
                }),
            ),
            Behaviour::Late => (
                Some(Charge::InFlight),
                Err(ProviderError::OutcomeUnknown {
                    message: "timed out waiting for the fake provider".into(),
                }),
            ),
            Behaviour::LoseAnswer => (
                Some(Charge::Done(captured)),
                Err(ProviderError::OutcomeUnknown {
                    message: "the fake provider's answer was lost".into(),
                }),
            ),
        };
        if let Some(state) = state {
            if let Charge::Done(outcome) = &state {
                Self::push_webhook(&mut st, &charge.key, outcome);
            }
            st.charges.insert(
                charge.key.clone(),
                Entry {
                    amount: charge.amount,
                    state,
                },
            );
        }
        answer
    }

    async fn status(&self, key: &str) -> Result<ChargeStatus, ProviderError> {
        self.wait().await;
        Ok(match self.state().charges.get(key) {
            None => ChargeStatus::Unknown,
            Some(Entry {
                state: Charge::InFlight,
                ..
            }) => ChargeStatus::Pending,
            Some(Entry {
                state: Charge::Done(outcome),
                ..
            }) => ChargeStatus::Done(outcome.clone()),
        })
    }

    async fn void(&self, key: &str) -> Result<ChargeOutcome, ProviderError> {
        self.wait().await;
        let mut st = self.state();
        let voided = ChargeOutcome::Declined {
            reason: "voided".into(),
        };
        match st.charges.get_mut(key) {
            None => {
                st.voided.push(key.to_owned());
                Ok(voided)
            }
            Some(entry) => match &entry.state {
                Charge::Done(outcome) => Ok(outcome.clone()),
                Charge::InFlight => {
                    entry.state = Charge::Done(voided.clone());
                    Ok(voided)
                }
            },
        }
    }

    async fn refund(&self, refund: &ProviderRefund) -> Result<RefundOutcome, ProviderError> {
        self.wait().await;
        let mut st = self.state();
        if let Some((_, _, outcome)) = st.refunds.get(&refund.key) {
            return Ok(outcome.clone());
        }
        if st.unavailable_refunds > 0 {
            st.unavailable_refunds -= 1;
            return Err(ProviderError::Unavailable {
                message: "the fake provider is down".into(),
            });
        }
        let captured = match st.charges.get(&refund.charge_key) {
            Some(Entry {
                amount,
                state: Charge::Done(ChargeOutcome::Captured { .. }),
            }) => *amount,
            _ => Points(0),
        };
        let already: i64 = st
            .refunds
            .values()
            .filter(|(charge, _, outcome)| {
                *charge == refund.charge_key && matches!(outcome, RefundOutcome::Refunded { .. })
            })
            .map(|(_, amount, _)| amount.0)
            .sum();
        let outcome = if refund.amount.0 <= 0 || already + refund.amount.0 > captured.0 {
            RefundOutcome::Refused {
                reason: "more than was captured".into(),
            }
        } else {
            RefundOutcome::Refunded {
                reference: format!("fake-refund-{}", refund.key),
            }
        };
        st.refunds.insert(
            refund.key.clone(),
            (refund.charge_key.clone(), refund.amount, outcome.clone()),
        );
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn charge(key: &str, amount: i64) -> ProviderCharge {
        ProviderCharge {
            key: key.into(),
            amount: Points(amount),
            description: "test".into(),
        }
    }

    #[tokio::test]
    async fn one_key_charges_once_whatever_the_calls() {
        let p = FakeProvider::new();
        p.record_webhooks();
        let first = p.charge(&charge("k", 100)).await.expect("charge");
        assert!(matches!(first, ChargeOutcome::Captured { .. }));
        assert_eq!(p.charge(&charge("k", 100)).await.expect("again"), first);
        assert_eq!(p.captured("k"), Points(100));
        assert_eq!(p.take_webhooks().len(), 1);
    }

    #[tokio::test]
    async fn a_lost_answer_was_charged_and_a_late_one_is_captured_unless_voided() {
        let p = FakeProvider::new();
        p.script([Behaviour::LoseAnswer, Behaviour::Late, Behaviour::Late]);
        assert!(p.charge(&charge("lost", 5)).await.is_err());
        assert_eq!(p.captured("lost"), Points(5));
        assert!(p.charge(&charge("late", 7)).await.is_err());
        assert!(p.charge(&charge("voided", 9)).await.is_err());
        assert_eq!(
            p.status("late").await.expect("status"),
            ChargeStatus::Pending
        );
        assert!(matches!(
            p.void("voided").await.expect("void"),
            ChargeOutcome::Declined { .. }
        ));
        assert_eq!(p.deliver_late().len(), 1);
        assert_eq!(p.captured("late"), Points(7));
        assert_eq!(p.captured("voided"), Points(0));
        // A key voided before its charge arrives is never charged.
        assert!(matches!(
            p.void("never").await.expect("void"),
            ChargeOutcome::Declined { .. }
        ));
        assert!(matches!(
            p.charge(&charge("never", 3)).await.expect("charge"),
            ChargeOutcome::Declined { .. }
        ));
        assert_eq!(p.captured("never"), Points(0));
    }

    #[tokio::test]
    async fn refunds_are_once_per_key_and_never_above_the_capture() {
        let p = FakeProvider::new();
        p.charge(&charge("c", 100)).await.expect("charge");
        let refund = |key: &str, amount: i64| ProviderRefund {
            key: key.into(),
            charge_key: "c".into(),
            amount: Points(amount),
        };
        assert!(matches!(
            p.refund(&refund("r1", 60)).await.expect("refund"),
            RefundOutcome::Refunded { .. }
        ));
        assert!(matches!(
            p.refund(&refund("r1", 60)).await.expect("same key"),
            RefundOutcome::Refunded { .. }
        ));
        assert!(matches!(
            p.refund(&refund("r2", 60)).await.expect("too much"),
            RefundOutcome::Refused { .. }
        ));
        assert_eq!(p.net("c"), Points(40));
    }
}

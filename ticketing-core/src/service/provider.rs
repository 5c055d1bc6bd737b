//! Paying through a payment provider (docs/payments.md): the service calls the provider
//! between the store's atomic steps, never inside one, with the idempotency key the store
//! recorded before the call; a webhook and the recovery job settle what a request could not.

use crate::domain::{Payment, PaymentMethod, Reservation};
use crate::error::{Error, Result};
use crate::ids::{AttemptId, PaymentId};
use crate::provider::{
    AttemptKind, AttemptState, BeginPaymentCommand, ChargeOutcome, ChargeSettled, ChargeStatus,
    PaymentAttempt, PaymentProvider, ProviderCharge, ProviderError, ProviderRefund, RefundOutcome,
    SettleChargeCommand, SettleRefundCommand,
};
use crate::rules::{self, Recovery};
use crate::service::{PayRequest, TicketingService};

/// What paying through the provider answered (a decline is the error `payment_declined`, a
/// capture too late `payment_refunded`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProviderPayment {
    /// Captured in time: the reservation is confirmed and its seats sold.
    Paid(Payment),
    /// The provider's outcome is not known yet (its answer timed out or was lost, or it
    /// decides later): the seats stay kept until the attempt's deadline, and the webhook or
    /// the recovery job settles it. A retry under the same idempotency key asks again.
    Pending(PaymentAttempt),
}

/// What one step of [`TicketingService::recover_payments`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RecoveryReport {
    /// Charges settled with the outcome the provider gave (or a void's answer).
    pub charges_settled: u64,
    /// Charges voided because their deadline passed with no outcome.
    pub charges_voided: u64,
    /// Refunds made (or refused) and settled.
    pub refunds_settled: u64,
    /// Attempts still pending: undecided within their deadline, or the provider unreachable.
    pub still_pending: u64,
}

/// The end of a charge as the service saw it.
enum Charged {
    Paid(Payment),
    Pending(PaymentAttempt),
    Declined(String),
    Refunded,
}

impl Charged {
    fn into_result(self) -> Result<ProviderPayment> {
        match self {
            Charged::Paid(p) => Ok(ProviderPayment::Paid(p)),
            Charged::Pending(a) => Ok(ProviderPayment::Pending(a)),
            Charged::Declined(reason) => Err(Error::PaymentDeclined { reason }),
            Charged::Refunded => Err(Error::PaymentRefunded),
        }
    }
}

impl TicketingService {
    fn provider(&self) -> Result<&dyn PaymentProvider> {
        self.provider
            .as_deref()
            .ok_or_else(|| Error::invalid("no payment provider is configured"))
    }

    /// Bound a provider call by `provider_timeout` (on a tokio runtime): past it, the outcome
    /// is unknown, never a failure.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ProviderError>>,
    ) -> Result<T, ProviderError> {
        #[cfg(feature = "tokio")]
        if tokio::runtime::Handle::try_current().is_ok() {
            // A limit that is not positive would make every call "unknown": the default then.
            let limit = self
                .config
                .provider_timeout
                .to_std()
                .ok()
                .filter(|l| !l.is_zero())
                .unwrap_or(std::time::Duration::from_secs(5));
            return match tokio::time::timeout(limit, call).await {
                Ok(answer) => answer,
                Err(_) => Err(ProviderError::OutcomeUnknown {
                    message: format!("no answer within {limit:?}"),
                }),
            };
        }
        call.await
    }

    /// Pay a hold through the payment provider: the seats are kept for the call and the
    /// attempt recorded (one atomic store step), the provider charged under the attempt's key
    /// with no transaction or lock open, and its answer settled (a second atomic step):
    /// `Paid`, `payment_declined` (nothing taken, the hold released), `payment_refunded`
    /// (captured after the seats could not be kept), or `Pending` when the answer did not come
    /// (never read as a failure). A provider that cannot be reached is `unavailable`, the
    /// attempt left pending: retry under the same idempotency key, which charges under the same
    /// provider key (so never twice), or let the recovery job void it after its deadline.
    pub async fn pay_by_provider(&self, req: PayRequest) -> Result<ProviderPayment> {
        let provider = self.provider()?;
        crate::service::positive(req.user_id.0, "user_id")?;
        let fingerprint = format!("pay-provider:{}", req.reservation_id);
        let key = self.key(req.user_id, req.idempotency_key.as_deref(), fingerprint)?;
        if key.is_none() || self.replay(key.as_ref()).await?.is_none() {
            self.gate_payment(&req).await?;
        }
        let begun = self
            .store
            .begin_provider_payment(BeginPaymentCommand {
                reservation_id: req.reservation_id,
                user_id: req.user_id,
                now: self.clock.now(),
                bound: self.config.provider_bound,
                attempt_id: AttemptId::new(),
                idempotency: key,
            })
            .await;
        let attempt = match begun {
            Ok(attempt) => attempt,
            // A charge of this payer for it is in flight (a retry without a key, after an
            // unreachable provider or a lost answer): go on with that charge, under its key, so
            // the retry asks instead of being refused or charging twice.
            Err(Error::InvalidState {
                state: "payment_pending",
                ..
            }) => self
                .store
                .reservation_attempts(req.reservation_id)
                .await?
                .into_iter()
                .find(|a| {
                    a.kind == AttemptKind::Charge && a.is_pending() && a.user_id == req.user_id
                })
                .ok_or(Error::InvalidState {
                    state: "payment_pending",
                    action: "pay",
                })?,
            Err(e) => return Err(e),
        };
        let charged = if attempt.is_pending() {
            let charge = ProviderCharge {
                key: attempt.key.clone(),
                amount: attempt.amount,
                description: attempt.reservation_id.to_string(),
            };
            match self.call(provider.charge(&charge)).await {
                // The provider answered; a store that fails to record it now leaves the attempt
                // pending (the answer may be a capture): the webhook or the recovery job settles
                // it, and a retry asks again.
                Ok(outcome) => match self.settle(&attempt, outcome).await {
                    Ok(charged) => charged,
                    Err(e) => {
                        tracing::warn!(
                            target: "ticketing::provider",
                            attempt = %attempt.id,
                            error = %e,
                            "the provider's answer could not be settled: the attempt stays pending"
                        );
                        Charged::Pending(attempt)
                    }
                },
                Err(ProviderError::OutcomeUnknown { message }) => {
                    tracing::info!(
                        target: "ticketing::provider",
                        attempt = %attempt.id,
                        %message,
                        "the provider's answer did not come: the attempt stays pending"
                    );
                    Charged::Pending(attempt)
                }
                Err(e) => return Err(Error::backend("payment provider", true, e)),
            }
        } else {
            self.as_settled(&attempt).await?
        };
        if matches!(charged, Charged::Paid(_)) {
            self.paid(&req).await;
        }
        charged.into_result()
    }

    /// Settle a charge with the provider's outcome, and make the refund it may call for.
    async fn settle(&self, attempt: &PaymentAttempt, outcome: ChargeOutcome) -> Result<Charged> {
        let settled = self
            .store
            .settle_charge(SettleChargeCommand {
                attempt_id: attempt.id,
                outcome,
                now: self.clock.now(),
                payment_id: PaymentId::new(),
                refund_id: AttemptId::new(),
            })
            .await?;
        Ok(match settled {
            ChargeSettled::Confirmed(payment) => Charged::Paid(payment),
            ChargeSettled::Released(a) => Charged::Declined(reason_of(&a)),
            ChargeSettled::RefundDue(refund) => {
                self.refund(&refund).await;
                Charged::Refunded
            }
            ChargeSettled::AlreadySettled(a) => self.as_settled(&a).await?,
        })
    }

    /// What an attempt settled before answers, as the request that settled it would have.
    async fn as_settled(&self, attempt: &PaymentAttempt) -> Result<Charged> {
        let reference = match &attempt.state {
            AttemptState::Pending => return Ok(Charged::Pending(attempt.clone())),
            AttemptState::Failed { reason } => return Ok(Charged::Declined(reason.clone())),
            AttemptState::Succeeded { reference } => reference.clone(),
        };
        // Paid (and perhaps cancelled since): the payment; else it was captured too late and
        // refunded, the reservation released without one.
        let r = self
            .store
            .reservation(attempt.reservation_id, self.clock.now())
            .await?;
        let Some(payment_id) = r.payment_id else {
            return Ok(Charged::Refunded);
        };
        let balance = self.store.balance(attempt.user_id).await?;
        Ok(Charged::Paid(Payment {
            id: payment_id,
            reservation_id: r.id,
            user_id: r.user_id,
            amount: attempt.amount,
            balance,
            created_at: attempt.created_at,
            method: PaymentMethod::Provider {
                attempt_id: attempt.id,
                reference,
            },
        }))
    }

    /// Make a pending refund under its key and settle it; a failed call leaves it pending for
    /// the recovery job (it is logged, never lost).
    async fn refund(&self, refund: &PaymentAttempt) -> bool {
        let (Ok(provider), Some(charge_key)) = (self.provider(), refund.charge_key.clone()) else {
            return false;
        };
        let call = ProviderRefund {
            key: refund.key.clone(),
            charge_key,
            amount: refund.amount,
        };
        let outcome: RefundOutcome = match self.call(provider.refund(&call)).await {
            Ok(outcome) => outcome,
            Err(e) => {
                tracing::warn!(
                    target: "ticketing::provider",
                    attempt = %refund.id,
                    error = %e,
                    "a refund call failed: the recovery job makes it again"
                );
                return false;
            }
        };
        match self
            .store
            .settle_refund(SettleRefundCommand {
                attempt_id: refund.id,
                outcome,
                now: self.clock.now(),
            })
            .await
        {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(
                    target: "ticketing::provider",
                    attempt = %refund.id,
                    error = %e,
                    "a refund was made and not recorded: the recovery job records it"
                );
                false
            }
        }
    }

    /// After a cancel: make the refunds through the provider it recorded (a reservation paid
    /// through the provider). A failed call is left to the recovery job.
    pub(super) async fn refund_cancelled(&self, reservation: &Reservation) {
        if self.provider.is_none() {
            return;
        }
        match self.store.reservation_attempts(reservation.id).await {
            Ok(attempts) => {
                for refund in attempts
                    .iter()
                    .filter(|a| a.kind == AttemptKind::Refund && a.is_pending())
                {
                    self.refund(refund).await;
                }
            }
            Err(e) => tracing::warn!(
                target: "ticketing::provider",
                reservation = %reservation.id,
                error = %e,
                "the refunds of a cancel could not be read: the recovery job makes them"
            ),
        }
    }

    /// A provider's webhook says the charge (or refund) under `key` has an outcome. The webhook
    /// is not trusted as sent: the provider is asked (`status(key)`; a refund is made again
    /// under its key, which answers its outcome) and what it answers is settled, so a forged or
    /// repeated webhook changes nothing. Answers the attempt as it stands after; `not_found`
    /// for a key this library never made.
    pub async fn provider_webhook(&self, key: &str) -> Result<PaymentAttempt> {
        let id = key
            .strip_prefix("charge-")
            .or_else(|| key.strip_prefix("refund-"))
            .and_then(|id| id.parse::<AttemptId>().ok())
            .ok_or_else(|| Error::not_found("payment attempt", key))?;
        // The attempt first: a key this library never made is `not_found` whether or not a
        // provider is configured.
        let attempt = self.store.payment_attempt(id).await?;
        if attempt.key != key {
            return Err(Error::not_found("payment attempt", key));
        }
        let provider = self.provider()?;
        match (attempt.kind, &attempt.state) {
            // A refund's news: make it again under its key (idempotent), which answers its
            // outcome, and settle that.
            (AttemptKind::Refund, AttemptState::Pending) => {
                self.refund(&attempt).await;
            }
            // A pending charge, or one settled as declined that the provider may report
            // captured after all (then it is refunded): ask, and settle what is decided.
            (AttemptKind::Charge, AttemptState::Pending | AttemptState::Failed { .. }) => {
                let status = self
                    .call(provider.status(key))
                    .await
                    .map_err(|e| Error::backend("payment provider", true, e))?;
                if let ChargeStatus::Done(outcome) = status {
                    self.settle(&attempt, outcome).await?;
                }
            }
            _ => {}
        }
        self.store.payment_attempt(id).await
    }

    /// One step of the recovery job (docs/payments.md): every attempt pending for longer than
    /// `grace` (keep it above `provider_timeout`), up to `limit`, is finished: a charge the
    /// provider decided is settled; one past its deadline with no outcome is voided and settled
    /// with the void's answer; a refund is made again under its key. A provider that cannot be
    /// reached leaves the attempt for the next step.
    pub async fn recover_payments(
        &self,
        limit: usize,
        grace: chrono::Duration,
    ) -> Result<RecoveryReport> {
        let provider = self.provider()?;
        let mut report = RecoveryReport::default();
        let now = self.clock.now();
        for attempt in self.store.pending_attempts(limit).await? {
            if attempt.created_at + grace > now {
                report.still_pending += 1;
                continue;
            }
            if attempt.kind == AttemptKind::Refund {
                if self.refund(&attempt).await {
                    report.refunds_settled += 1;
                } else {
                    report.still_pending += 1;
                }
                continue;
            }
            let status = match self.call(provider.status(&attempt.key)).await {
                Ok(status) => status,
                Err(_) => {
                    report.still_pending += 1;
                    continue;
                }
            };
            let outcome = match rules::recovery_step(&attempt, &status, self.clock.now()) {
                Recovery::Settle(outcome) => outcome,
                Recovery::Void => match self.call(provider.void(&attempt.key)).await {
                    Ok(outcome) => {
                        report.charges_voided += 1;
                        outcome
                    }
                    Err(_) => {
                        report.still_pending += 1;
                        continue;
                    }
                },
                Recovery::Wait | Recovery::RetryRefund => {
                    report.still_pending += 1;
                    continue;
                }
            };
            match self.settle(&attempt, outcome).await {
                Ok(_) => report.charges_settled += 1,
                Err(e) => {
                    tracing::warn!(
                        target: "ticketing::provider",
                        attempt = %attempt.id,
                        error = %e,
                        "settling a recovered charge failed: the next step tries again"
                    );
                    report.still_pending += 1;
                }
            }
        }
        tracing::debug!(target: "ticketing::provider", ?report, "recovery step");
        Ok(report)
    }
}

fn reason_of(attempt: &PaymentAttempt) -> String {
    match &attempt.state {
        AttemptState::Failed { reason } => reason.clone(),
        _ => "declined".into(),
    }
}

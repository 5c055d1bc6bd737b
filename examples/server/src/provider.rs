//! A payment provider reached over HTTP (`TICKETING_PROVIDER=http`), with a small JSON protocol
//! an adapter in front of a real processor can speak (and the server-process fault tests serve):
//!
//! - `POST {url}/charges` `{"key", "amount", "description"}` → `{"outcome": "captured",
//!   "reference"}` or `{"outcome": "declined", "reason"}`; one key, at most one charge.
//! - `GET {url}/charges/{key}` → `{"status": "captured", "reference"}`, `{"status":
//!   "declined", "reason"}`, `{"status": "pending"}` or `{"status": "unknown"}`.
//! - `POST {url}/charges/{key}/void` → an outcome, as a charge answers.
//! - `POST {url}/refunds` `{"key", "charge_key", "amount"}` → `{"outcome": "refunded",
//!   "reference"}` or `{"outcome": "refused", "reason"}`.
//!
//! A connection that could not be made, or a `503`, did nothing (`unavailable`); anything else
//! that is not an answer (a timeout, a lost connection, another status) is an unknown outcome.

use serde::Deserialize;
use serde_json::json;
use ticketing::async_trait;
use ticketing::provider::{
    ChargeOutcome, ChargeStatus, PaymentProvider, ProviderCharge, ProviderError, ProviderRefund,
    RefundOutcome,
};

/// The provider at a base URL.
#[derive(Debug, Clone)]
pub struct HttpProvider {
    http: reqwest::Client,
    base: String,
}

impl HttpProvider {
    /// The provider at `base` (e.g. `http://127.0.0.1:9000`).
    pub fn new(base: &str) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: base.trim_end_matches('/').to_owned(),
        }
    }

    async fn send<T: for<'de> Deserialize<'de>>(
        &self,
        req: reqwest::RequestBuilder,
    ) -> Result<T, ProviderError> {
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                ProviderError::Unavailable {
                    message: e.to_string(),
                }
            } else {
                ProviderError::OutcomeUnknown {
                    message: e.to_string(),
                }
            }
        })?;
        let status = resp.status();
        if status == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            return Err(ProviderError::Unavailable {
                message: "the provider answered 503".into(),
            });
        }
        if !status.is_success() {
            return Err(ProviderError::OutcomeUnknown {
                message: format!("the provider answered {status}"),
            });
        }
        resp.json()
            .await
            .map_err(|e| ProviderError::OutcomeUnknown {
                message: format!("an answer that could not be read: {e}"),
            })
    }
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Charged {
    Captured { reference: String },
    Declined { reason: String },
}

impl From<Charged> for ChargeOutcome {
    fn from(c: Charged) -> Self {
        match c {
            Charged::Captured { reference } => ChargeOutcome::Captured { reference },
            Charged::Declined { reason } => ChargeOutcome::Declined { reason },
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
enum Status {
    Captured { reference: String },
    Declined { reason: String },
    Pending,
    Unknown,
}

#[derive(Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
enum Refunded {
    Refunded { reference: String },
    Refused { reason: String },
}

#[async_trait]
impl PaymentProvider for HttpProvider {
    async fn charge(&self, charge: &ProviderCharge) -> Result<ChargeOutcome, ProviderError> {
        let body = json!({"key": charge.key, "amount": charge.amount.0, "description": charge.description});
        let answer: Charged = self
            .send(self.http.post(format!("{}/charges", self.base)).json(&body))
            .await?;
        Ok(answer.into())
    }

    async fn status(&self, key: &str) -> Result<ChargeStatus, ProviderError> {
        let answer: Status = self
            .send(self.http.get(format!("{}/charges/{key}", self.base)))
            .await?;
        Ok(match answer {
            Status::Captured { reference } => {
                ChargeStatus::Done(ChargeOutcome::Captured { reference })
            }
            Status::Declined { reason } => ChargeStatus::Done(ChargeOutcome::Declined { reason }),
            Status::Pending => ChargeStatus::Pending,
            Status::Unknown => ChargeStatus::Unknown,
        })
    }

    async fn void(&self, key: &str) -> Result<ChargeOutcome, ProviderError> {
        let answer: Charged = self
            .send(self.http.post(format!("{}/charges/{key}/void", self.base)))
            .await?;
        Ok(answer.into())
    }

    async fn refund(&self, refund: &ProviderRefund) -> Result<RefundOutcome, ProviderError> {
        let body =
            json!({"key": refund.key, "charge_key": refund.charge_key, "amount": refund.amount.0});
        let answer: Refunded = self
            .send(self.http.post(format!("{}/refunds", self.base)).json(&body))
            .await?;
        Ok(match answer {
            Refunded::Refunded { reference } => RefundOutcome::Refunded { reference },
            Refunded::Refused { reason } => RefundOutcome::Refused { reason },
        })
    }
}

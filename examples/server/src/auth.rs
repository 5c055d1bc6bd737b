//! Who is calling. With `TICKETING_AUTH=jwt` every user-scoped request carries
//! `Authorization: Bearer <JWT>` whose `sub` is the user id and whose `exp` has not passed
//! (HS256 with a shared secret, or RS256 / EdDSA with the issuer's public key), and acts for that
//! user only: a body or path naming another user is `403 forbidden`, no or a bad token `401
//! unauthorized`. With `TICKETING_AUTH=none` (the demo) anyone may act for anyone, as API.md
//! was written, and the server says so loudly at start.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use ticketing::UserId;

use crate::config::{AuthKind, Config, JwtAlgorithm};
use crate::error::ApiError;
use crate::state::AppState;

/// How callers are identified.
#[derive(Clone, Default)]
pub enum Auth {
    /// Nobody is: requests act for whichever user they name (the demo of API.md).
    #[default]
    None,
    /// Bearer JWTs, checked with this key.
    Jwt(Arc<Jwt>),
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::None => f.write_str("Auth::None"),
            Auth::Jwt(j) => write!(f, "Auth::Jwt({:?})", j.validation.algorithms),
        }
    }
}

/// A JWT verifier.
pub struct Jwt {
    key: DecodingKey,
    validation: Validation,
}

/// The claims the server reads (and [`mint`] writes).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The user id, as a decimal string.
    pub sub: String,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
}

impl Jwt {
    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::new(DecodingKey::from_secret(secret), Algorithm::HS256)
    }

    fn new(key: DecodingKey, algorithm: Algorithm) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.leeway = 5;
        validation.validate_nbf = true;
        // No audience configured: a token's `aud`, if any, is not checked (see
        // `with_audience`).
        validation.validate_aud = false;
        Self { key, validation }
    }

    /// Accept only tokens whose `aud` names `audience` (and that have one).
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self.validation.validate_aud = true;
        self.validation.required_spec_claims.insert("aud".into());
        self
    }

    /// Accept only tokens whose `iss` is `issuer` (and that have one).
    pub fn with_issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self.validation.required_spec_claims.insert("iss".into());
        self
    }

    /// The user a bearer token names, if it is valid now.
    pub fn user(&self, token: &str) -> Result<UserId, String> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.key, &self.validation)
            .map_err(|e| e.to_string())?;
        match data.claims.sub.parse::<i64>() {
            Ok(id) if id > 0 => Ok(UserId(id)),
            _ => Err("`sub` is not a positive user id".into()),
        }
    }
}

impl Auth {
    /// The identification the configuration asks for.
    pub fn from_config(config: &Config) -> Result<Self, String> {
        match config.auth {
            AuthKind::None => Ok(Auth::None),
            AuthKind::Jwt => {
                let jwt = match config.jwt_algorithm {
                    JwtAlgorithm::Hs256 => Jwt::hs256(hs256_secret(config)?),
                    algorithm => {
                        let path = config.jwt_public_key.as_deref().ok_or(
                            "TICKETING_AUTH=jwt with RS256 or EdDSA needs TICKETING_JWT_PUBLIC_KEY (a PEM file)",
                        )?;
                        let pem = std::fs::read(path)
                            .map_err(|e| format!("reading {}: {e}", path.display()))?;
                        let (key, algorithm) = match algorithm {
                            JwtAlgorithm::Rs256 => {
                                (DecodingKey::from_rsa_pem(&pem), Algorithm::RS256)
                            }
                            _ => (DecodingKey::from_ed_pem(&pem), Algorithm::EdDSA),
                        };
                        let key = key.map_err(|e| format!("{}: {e}", path.display()))?;
                        Jwt::new(key, algorithm)
                    }
                };
                let jwt = match &config.jwt_audience {
                    Some(audience) => jwt.with_audience(audience),
                    None => jwt,
                };
                let jwt = match &config.jwt_issuer {
                    Some(issuer) => jwt.with_issuer(issuer),
                    None => jwt,
                };
                Ok(Auth::Jwt(Arc::new(jwt)))
            }
        }
    }
}

/// The configured HS256 secret, refused under 32 bytes.
pub fn hs256_secret(config: &Config) -> Result<&[u8], String> {
    config
        .jwt_secret
        .as_ref()
        .map(|s| s.0.as_bytes())
        .filter(|s| s.len() >= 32)
        .ok_or_else(|| "HS256 needs TICKETING_JWT_SECRET of at least 32 bytes".to_owned())
}

/// A token for `user` valid for `ttl_secs`, signed HS256 with `secret` (the `mint-token`
/// subcommand, for demos and tests).
pub fn mint(secret: &[u8], user: i64, ttl_secs: u64) -> Result<String, String> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|e| e.to_string())?
        .as_secs();
    let claims = Claims {
        sub: user.to_string(),
        exp: now.saturating_add(ttl_secs),
    };
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}

/// Who is calling: the authenticated user, or anyone (`TICKETING_AUTH=none`).
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<UserId>);

impl Caller {
    /// Whether the caller may act for `user`: `403 forbidden` if authenticated as another.
    pub fn may_act_for(&self, user: i64) -> Result<(), ApiError> {
        match self.0 {
            // Not a user id at all: the service answers `400 invalid_request`.
            _ if user <= 0 => Ok(()),
            Some(me) if me.0 != user => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                ticketing::ErrorCode::Forbidden.as_str(),
                "the bearer token's user may act only for themselves",
            )),
            _ => Ok(()),
        }
    }
}

fn unauthorized(detail: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
}

/// A `401` that says how to authenticate (`WWW-Authenticate: Bearer`).
fn challenge(e: ApiError) -> axum::response::Response {
    let mut response = axum::response::IntoResponse::into_response(e);
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// The token of an `Authorization: Bearer <token>` header (at most 8 KiB).
fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("an Authorization: Bearer token is required"))?;
    // The scheme is case-insensitive (RFC 9110), separated by spaces or tabs.
    value
        .to_str()
        .ok()
        .map(str::trim)
        .and_then(|v| v.split_once([' ', '\t']))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|t| !t.is_empty() && t.len() <= 8 * 1024)
        .ok_or_else(|| unauthorized("the Authorization header is not a Bearer token"))
}

/// The operator's credential for the admin endpoints (`TICKETING_ADMIN_TOKEN`, at least 32
/// bytes), sent as `Authorization: Bearer <token>`. Separate from users' JWTs: no user token
/// is ever an admin one.
#[derive(Clone)]
pub struct AdminToken(Arc<[u8]>);

impl std::fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminToken(***)")
    }
}

impl AdminToken {
    /// The configured token (`TICKETING_ADMIN_TOKEN` or `--admin-token-file`), if any; refused
    /// under 32 bytes, and when both are given.
    pub fn from_config(config: &Config) -> Result<Option<Self>, String> {
        let token = match (&config.admin_token, &config.admin_token_file) {
            (None, None) => return Ok(None),
            (Some(_), Some(_)) => {
                return Err(
                    "give the admin token in TICKETING_ADMIN_TOKEN or in a file, not both".into(),
                );
            }
            (Some(t), None) => t.0.clone(),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("reading the admin token file {}: {e}", path.display()))?;
                text.trim_end().to_owned()
            }
        };
        Self::new(&token)
            .map(Some)
            .ok_or_else(|| "the admin token must be at least 32 bytes".into())
    }

    /// A token from its bytes (at least 32; tests and embedders).
    pub fn new(token: &str) -> Option<Self> {
        (token.len() >= 32).then(|| Self(token.as_bytes().into()))
    }

    fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        // Constant time in the token's content (its length is not a secret worth hiding).
        bool::from(self.0.as_ref().ct_eq(presented.as_bytes()))
    }
}

/// An authenticated operator: the request carried the admin token. Without an admin token
/// configured nobody is one (`401` for every admin request).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(admin) = &state.admin else {
            return Err(challenge(unauthorized("no admin token is configured")));
        };
        let refused = |why: &str| {
            let request = parts
                .headers
                .get("x-request-id")
                .and_then(|v| v.to_str().ok());
            tracing::warn!(target: "ticketing::admin", request_id = ?request, "admin request refused: {why}");
        };
        let token = bearer_token(&parts.headers).map_err(|e| {
            refused("no bearer token");
            challenge(e)
        })?;
        if admin.matches(token) {
            Ok(Admin)
        } else {
            refused("a wrong token");
            Err(challenge(unauthorized("the admin token is not valid")))
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = axum::response::Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Auth::Jwt(jwt) = &state.auth else {
            return Ok(Caller(None));
        };
        let token = bearer_token(&parts.headers).map_err(challenge)?;
        jwt.user(token).map(|user| Caller(Some(user))).map_err(|e| {
            // The reason is for the operator's log, not for a caller probing tokens.
            tracing::debug!(error = %e, "bearer token refused");
            challenge(unauthorized(
                "the bearer token is invalid, expired or not for this server",
            ))
        })
    }
}

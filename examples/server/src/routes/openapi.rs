//! The OpenAPI document, generated from the handlers' annotations.

use axum::Json;
use axum::extract::State;
use ticketing::ServiceConfig;
use utoipa::OpenApi;

use crate::routes::{admin, concerts, health, payments, points, queue, reservations};
use crate::state::AppState;

/// `GET /api-docs/openapi.json`: the document with the bounds this server was configured with.
#[utoipa::path(get, path = "/api-docs/openapi.json",
    responses((status = 200, description = "this document", content_type = "application/json")))]
pub async fn openapi(State(s): State<AppState>) -> Json<serde_json::Value> {
    Json(document(s.service.config()))
}

/// The OpenAPI document, with the bounds `config` sets: how many seats one hold may name (the
/// smaller of the per-request and per-user limits: more can never be held at once), unique and
/// positive; the largest charge.
pub fn document(config: &ServiceConfig) -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let schemas = &mut doc["components"]["schemas"];
    let max_seats = config
        .max_seats_per_request
        .min(config.max_seats_per_user as usize);
    schemas["HoldBody"]["properties"]["seat_ids"] = serde_json::json!({
        "type": "array",
        "description": "The seats, all held or none: each of this option, none twice.",
        "items": {"type": "integer", "format": "int64", "minimum": 1},
        "minItems": 1,
        "maxItems": max_seats,
        "uniqueItems": true,
    });
    schemas["ChargeBody"]["properties"]["amount"]["maximum"] = config.max_charge.0.into();
    // What `IdempotencyKey::new` accepts: 1 to 200 visible ASCII characters.
    let key = serde_json::json!({
        "type": "string", "minLength": 1, "maxLength": ticketing::MAX_KEY_LEN,
        "pattern": "^[!-~]+$",
    });
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths.values_mut().filter_map(|p| p.as_object_mut()) {
            let params = op
                .values_mut()
                .filter_map(|o| o.get_mut("parameters").and_then(|p| p.as_array_mut()));
            for params in params {
                for p in params.iter_mut().filter(|p| p["name"] == "Idempotency-Key") {
                    p["schema"] = key.clone();
                }
            }
        }
    }
    doc
}

/// The OpenAPI document of the server (served at `/api-docs/openapi.json`).
#[derive(OpenApi)]
#[openapi(
    info(
        title = "ticketing server",
        description = "The HTTP contract of API.md."
    ),
    paths(
        queue::enqueue,
        queue::token_status,
        queue::leave,
        concerts::concerts,
        concerts::options,
        concerts::seats,
        concerts::availability,
        reservations::hold,
        reservations::reservation,
        reservations::cancel,
        reservations::user_reservations,
        payments::pay,
        payments::webhook,
        points::charge,
        points::points,
        health::health,
        health::live,
        health::ready,
        health::metrics_text,
        openapi,
        admin::add_catalog,
        admin::set_sale_window,
        admin::close_sale
    ),
    components(schemas(crate::dto::SeatFilter)),
    modifiers(&SharedAnswers, &BearerAuth)
)]
pub struct ApiDoc;

/// The answers every operation may give besides its own, added to each: `503 unavailable`
/// (nothing changed; `Retry-After`) everywhere, and on every change (POST, DELETE) `429
/// rate_limited` (`Retry-After`) and `504 outcome_unknown`, and `413 payload_too_large` on
/// those with a body (POST). Every
/// error answer (4xx, 5xx) is documented as `application/problem+json`, which is what it is.
struct SharedAnswers;

impl utoipa::Modify for SharedAnswers {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Header, ObjectBuilder, Ref, ResponseBuilder, Type};
        let answer = |description: &str, retry_after: bool| {
            let mut r = ResponseBuilder::new().description(description).content(
                "application/problem+json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ProblemView")))
                    .build(),
            );
            if retry_after {
                r = r.header(
                    "Retry-After",
                    Header::new(ObjectBuilder::new().schema_type(Type::Integer)),
                );
            }
            r.build()
        };
        let shared = [
            (
                "503",
                "unavailable: nothing changed; try again after Retry-After seconds",
                true,
                false,
            ),
            (
                "413",
                "payload_too_large: the body is over the server's limit",
                false,
                true,
            ),
            (
                "429",
                "rate_limited: try again after Retry-After seconds",
                true,
                true,
            ),
            (
                "504",
                "outcome_unknown: the change may have happened; retry with the same Idempotency-Key",
                false,
                true,
            ),
        ];
        for item in openapi.paths.paths.values_mut() {
            // (operation, changes something, reads a body)
            for (op, change, body) in [
                (item.get.as_mut(), false, false),
                (item.post.as_mut(), true, true),
                (item.put.as_mut(), true, true),
                (item.delete.as_mut(), true, false),
            ] {
                let Some(op) = op else { continue };
                // Whatever takes input may find it malformed.
                let has_input = op.request_body.is_some()
                    || op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if has_input {
                    op.responses
                        .responses
                        .entry("400".to_owned())
                        .or_insert_with(|| {
                            answer(
                                "invalid_request: a malformed body, parameter or header",
                                false,
                            )
                            .into()
                        });
                }
                for (status, description, retry_after, only_changes) in shared {
                    if (only_changes && !change) || (status == "413" && !body) {
                        continue;
                    }
                    op.responses
                        .responses
                        .entry(status.to_owned())
                        .or_insert_with(|| answer(description, retry_after).into());
                }
                for (status, response) in op.responses.responses.iter_mut() {
                    let utoipa::openapi::RefOr::T(response) = response else {
                        continue;
                    };
                    if (status.starts_with('4') || status.starts_with('5'))
                        && let Some(json) = response.content.shift_remove("application/json")
                    {
                        response
                            .content
                            .insert("application/problem+json".to_owned(), json);
                    }
                }
            }
        }
    }
}

/// The identity of `TICKETING_AUTH=jwt`: a bearer security scheme, required (or nothing, with
/// `TICKETING_AUTH=none`) on every user-scoped operation, which may then answer `401
/// unauthorized` (no valid token) and `403 forbidden` (another user's id, reservation or
/// queue token). The catalog reads, health and metrics are open.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "admin",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("TICKETING_ADMIN_TOKEN, for /admin/ operations."))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "With TICKETING_AUTH=jwt: `sub` is the user id, `exp` is enforced.",
                    ))
                    .build(),
            ),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ProblemView")))
                        .build(),
                )
                .build()
        };
        let user_scoped = [
            "/api/ticketing/queue/tokens",
            "/api/ticketing/reservations",
            "/api/ticketing/payments",
            "/api/ticketing/point/charge",
            "/api/ticketing/users/",
        ];
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !user_scoped.iter().any(|p| path.starts_with(p)) {
                continue;
            }
            for op in [item.get.as_mut(), item.post.as_mut(), item.delete.as_mut()]
                .into_iter()
                .flatten()
            {
                op.security = Some(vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::default(),
                ]);
                let responses = &mut op.responses.responses;
                responses.entry("401".to_owned()).or_insert_with(|| {
                    problem(
                        "unauthorized (TICKETING_AUTH=jwt): no valid bearer token; or \
                         queue_token_required",
                    )
                    .into()
                });
                responses.entry("403".to_owned()).or_insert_with(|| {
                    problem(
                        "forbidden: the bearer token's user may act only for themselves \
                         (or another queue token error)",
                    )
                    .into()
                });
            }
        }
    }
}

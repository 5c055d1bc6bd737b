//! Starting the example server in-process and talking to it over real HTTP.

#![allow(dead_code, missing_docs)]

use std::time::Duration;

use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use ticketing::TicketingService;

pub use ticketing_server as app;

/// A running server: its API base URL and the service behind it.
pub struct Server {
    pub base: String,
    pub root: String,
    pub service: TicketingService,
    pub http: reqwest::Client,
}

/// Start a server on an ephemeral port with these flags (after the program name).
pub async fn start(flags: &[&str]) -> Server {
    let mut argv = vec!["server"];
    // Every test talks from 127.0.0.1; the one that tests the per-client limit sets it.
    if !flags.contains(&"--rate-per-client") {
        argv.extend_from_slice(&["--rate-per-client", "0"]);
    }
    // Tests read what they just changed; the one that tests the catalog cache sets it.
    if !flags.contains(&"--catalog-cache-ms") {
        argv.extend_from_slice(&["--catalog-cache-ms", "0"]);
    }
    argv.extend_from_slice(flags);
    let config = app::config::Config::parse_from(argv);
    let backends = app::backends::build(&config)
        .await
        .expect("building the service");
    app::spawn_background(&backends);
    let limits = std::sync::Arc::new(app::limit::Limits::from_config(&config).expect("limits"));
    app::limit::spawn_pruning(limits.clone());
    let settings = app::Settings::from_config(&config).expect("settings");
    let router = app::router(backends.service.clone(), limits, settings);
    listen(router, backends.service).await
}

/// Serve API.md over `service` (no background tasks) on an ephemeral port.
pub async fn serve(
    service: TicketingService,
    timeout: Duration,
    max_body: usize,
    limits: std::sync::Arc<app::limit::Limits>,
) -> Server {
    let settings = app::Settings {
        timeout,
        max_body,
        ..Default::default()
    };
    let router = app::router(service.clone(), limits, settings);
    listen(router, service).await
}

/// Serve `router` on an ephemeral port.
pub async fn listen(router: axum::Router, service: TicketingService) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("binding a port");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move {
        axum::serve(
            listener,
            router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .await
    });
    Server {
        base: format!("http://{addr}/api/ticketing"),
        root: format!("http://{addr}"),
        service,
        http: reqwest::Client::new(),
    }
}

/// One answer: status, headers' content type, JSON body (Null if none).
pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    /// The `Retry-After` header, if any.
    pub retry_after: Option<String>,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    pub body: Value,
}

impl Answer {
    /// Assert an error answer with this status and code, as problem+json.
    #[track_caller]
    pub fn problem(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "{}", self.body);
        assert_eq!(
            self.content_type, "application/problem+json",
            "{}",
            self.body
        );
        assert_eq!(self.body["code"], code, "{}", self.body);
        assert_eq!(self.body["status"], status, "{}", self.body);
    }
}

impl Server {
    pub async fn send(&self, req: reqwest::RequestBuilder) -> Answer {
        let resp = req.send().await.expect("the server answers");
        let status = resp.status();
        let content_type = resp
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = resp.text().await.expect("a body");
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Answer {
            status,
            content_type,
            retry_after,
            etag,
            body,
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub async fn post(&self, path: &str, body: Value, headers: &[(&str, &str)]) -> Answer {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req).await
    }

    /// Join the queue and wait (at most 5 s) until admitted; returns the token.
    pub async fn admitted_token(&self, user: i64, concert: i64) -> String {
        let a = self
            .post(
                "/queue/tokens",
                json!({"user_id": user, "concert_id": concert}),
                &[],
            )
            .await;
        assert!(a.status.is_success(), "{}", a.body);
        let token = a.body["token"].as_str().expect("a token").to_owned();
        for _ in 0..100 {
            let s = self.get(&format!("/queue/tokens/{token}")).await;
            if s.body["status"] == "admitted" {
                return token;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("token {token} was not admitted in time");
    }

    pub async fn charge(&self, user: i64, amount: i64) {
        let a = self
            .post(
                "/point/charge",
                json!({"user_id": user, "amount": amount}),
                &[],
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    }
}

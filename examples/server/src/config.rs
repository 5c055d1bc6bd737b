//! Configuration: the `TICKETING_*` variables of API.md, mirrored as flags.

use clap::{Parser, Subcommand, ValueEnum};

/// Which store holds seats, reservations and wallets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StoreKind {
    /// In process memory (nothing survives a restart).
    Memory,
    /// PostgreSQL at `DATABASE_URL`.
    Postgres,
    /// MySQL or MariaDB at `MYSQL_URL`.
    Mysql,
}

/// How seat writes are guarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StrategyKind {
    /// Row / seat locks.
    Pessimistic,
    /// Version compare-and-set.
    Optimistic,
    /// A Redis lease with a fencing token in front of the store.
    DistributedLock,
}

/// Which payment provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ProviderKind {
    /// Points only.
    None,
    /// The fake provider in memory.
    Fake,
    /// A provider over HTTP at `--provider-url` (the protocol of `provider.rs`).
    Http,
}

/// Where the waiting queue lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum QueueKind {
    /// In process memory.
    Memory,
    /// Redis at `REDIS_URL`.
    Redis,
}

/// How callers are identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AuthKind {
    /// Nobody is: a request acts for the user it names (the demo of API.md; said loudly at
    /// start).
    None,
    /// `Authorization: Bearer <JWT>`: `sub` is the user id, `exp` is enforced, and a request
    /// acts for that user only.
    Jwt,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line (for log shippers).
    Json,
}

/// How bearer tokens are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum JwtAlgorithm {
    /// HMAC-SHA256 with `TICKETING_JWT_SECRET`.
    #[value(name = "HS256")]
    Hs256,
    /// RSA, verified with the PEM public key at `TICKETING_JWT_PUBLIC_KEY`.
    #[value(name = "RS256")]
    Rs256,
    /// Ed25519, verified with the PEM public key at `TICKETING_JWT_PUBLIC_KEY`.
    #[value(name = "EdDSA")]
    EdDsa,
}

/// A secret: printed as `***` by `Debug`, so a logged configuration never shows it.
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl Config {
    /// The secrets read from the environment only (`TICKETING_ADMIN_TOKEN`): the binary calls
    /// this after parsing its flags.
    pub fn with_environment_secrets(mut self) -> Self {
        self.admin_token = std::env::var("TICKETING_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(Secret);
        self
    }
}

/// What the binary does besides serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print an HS256 bearer token for a user, signed with TICKETING_JWT_SECRET (demos, tests).
    MintToken {
        /// The user the token acts for.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        user: i64,
        /// How long it is valid, in seconds (at most a day).
        #[arg(long, default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        ttl_secs: u64,
    },
}

/// The ticketing server (API.md).
#[derive(Debug, Clone, Parser)]
#[command(name = "ticketing-server", version)]
pub struct Config {
    /// Something other than serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How callers are identified: `none` (anyone acts for anyone: a demo) or `jwt`.
    #[arg(long, env = "TICKETING_AUTH", value_enum, default_value = "none")]
    pub auth: AuthKind,
    /// Signature algorithm of the bearer tokens (with `--auth jwt`).
    #[arg(
        long,
        env = "TICKETING_JWT_ALGORITHM",
        value_enum,
        default_value = "HS256"
    )]
    pub jwt_algorithm: JwtAlgorithm,
    /// HS256 secret, at least 32 bytes (with `--auth jwt`; also signs `mint-token`).
    #[arg(
        long,
        env = "TICKETING_JWT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub jwt_secret: Option<Secret>,
    /// The operator's token for the admin endpoints (`/api/ticketing/admin/...`: add to the
    /// catalog, set or close a sale), at least 32 bytes, sent as `Authorization: Bearer`. Read
    /// from the environment variable `TICKETING_ADMIN_TOKEN` only (a command-line flag would
    /// show it to anyone who can list processes), or from `--admin-token-file`.
    /// (Filled by the binary from the environment after parsing, see
    /// [`Config::with_environment_secrets`]; a configuration parsed in a test has none.)
    #[arg(skip)]
    pub admin_token: Option<Secret>,
    /// A file holding the admin token (e.g. a mounted secret; trailing whitespace is ignored),
    /// instead of the environment variable `TICKETING_ADMIN_TOKEN` (never a flag: it would show
    /// in `ps`). Neither: every admin request is `401`.
    #[arg(long, env = "TICKETING_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<std::path::PathBuf>,
    /// Accept only bearer tokens whose `aud` is this (unset: `aud` is not checked).
    #[arg(long, env = "TICKETING_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Accept only bearer tokens whose `iss` is this (unset: `iss` is not checked).
    #[arg(long, env = "TICKETING_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// PEM file of the issuer's public key (RS256, EdDSA).
    #[arg(long, env = "TICKETING_JWT_PUBLIC_KEY")]
    pub jwt_public_key: Option<std::path::PathBuf>,
    /// Log line format: `text` or `json` (one object per line). The filter is `RUST_LOG`
    /// (default `info`: one line per answered request, with its `x-request-id`).
    #[arg(long, env = "TICKETING_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
    /// Browser origins allowed to call the API (CORS), comma-separated, e.g.
    /// `https://tickets.example.com`; unset: no CORS headers.
    #[arg(long, env = "TICKETING_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
    /// At SIGTERM or Ctrl-C, answer readiness 503 for this many seconds (so load balancers stop
    /// sending buyers) before closing the listener and finishing the requests in flight.
    #[arg(long, env = "TICKETING_DRAIN_SECS", default_value_t = 0)]
    pub drain_secs: u64,
    /// Listen address.
    #[arg(long, env = "TICKETING_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: String,
    /// Store backend.
    #[arg(long, env = "TICKETING_STORE", value_enum, default_value = "memory")]
    pub store: StoreKind,
    /// Seat-guarding strategy.
    #[arg(
        long,
        env = "TICKETING_STRATEGY",
        value_enum,
        default_value = "optimistic"
    )]
    pub strategy: StrategyKind,
    /// Waiting-queue backend.
    #[arg(long, env = "TICKETING_QUEUE", value_enum, default_value = "memory")]
    pub queue: QueueKind,
    /// PostgreSQL URL (for `--store postgres`).
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: Option<String>,
    /// MySQL / MariaDB URL (for `--store mysql`).
    #[arg(long, env = "MYSQL_URL")]
    pub mysql_url: Option<String>,
    /// Redis URL (for `--queue redis` and `--strategy distributed-lock`).
    #[arg(long, env = "REDIS_URL")]
    pub redis_url: Option<String>,
    /// PEM file of the CA that signed the Redis server's certificate, for a `rediss://`
    /// `REDIS_URL` whose certificate the webpki roots do not cover (a private CA).
    #[arg(long, env = "TICKETING_REDIS_CA_FILE")]
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// Prefix of every Redis key.
    #[arg(long, env = "TICKETING_REDIS_PREFIX", default_value = "ticketing:")]
    pub redis_prefix: String,
    /// How long a hold lasts, in seconds.
    #[arg(long, env = "TICKETING_HOLD_TTL_SECS", default_value_t = 300)]
    pub hold_ttl_secs: u32,
    /// Seats per user and option, held plus sold.
    #[arg(long, env = "TICKETING_MAX_SEATS_PER_USER", default_value_t = 4)]
    pub max_seats_per_user: u32,
    /// Admission rate of the waiting queue, per second.
    #[arg(long, env = "TICKETING_QUEUE_ADMIT_PER_SEC", default_value_t = 500)]
    pub queue_admit_per_sec: u32,
    /// Admitted tokens at once.
    #[arg(long, env = "TICKETING_QUEUE_MAX_ACTIVE", default_value_t = 10_000)]
    pub queue_max_active: u32,
    /// How long an admitted token stays valid, in seconds.
    #[arg(long, env = "TICKETING_QUEUE_ACTIVE_TTL_SECS", default_value_t = 600)]
    pub queue_active_ttl_secs: u32,
    /// A catalog file to sell (JSON, or TOML when the name ends in `.toml`): `concerts` (`id`,
    /// `title`, `venue`), `options` (`id`, `concert_id`, `starts_at`, optional `sale_opens_at`
    /// and `sale_closes_at`) and `seats` (`id`, `option_id`, `seat_no`, `grade`, `price`), the
    /// body of `POST /admin/catalog`. Loaded into an empty store at start instead of the demo
    /// catalog.
    #[arg(long, env = "TICKETING_CATALOG")]
    pub catalog: Option<std::path::PathBuf>,
    /// Demo catalog: concerts, each with 2 options.
    #[arg(long, env = "TICKETING_DEMO_CONCERTS", default_value_t = 3)]
    pub demo_concerts: u32,
    /// Demo catalog: seats per option.
    #[arg(long, env = "TICKETING_DEMO_SEATS", default_value_t = 1000)]
    pub demo_seats: u32,
    /// Lease of the distributed lock on a hold's seats, in milliseconds (for
    /// `--strategy distributed-lock`): longer than any one store call, short enough that a
    /// crashed or paused holder frees its seats soon.
    #[arg(long, env = "TICKETING_LOCK_LEASE_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub lock_lease_ms: u32,
    /// Connections of the PostgreSQL pool.
    #[arg(long, env = "TICKETING_PG_POOL", default_value_t = 16)]
    pub pg_pool: u32,
    /// Connections of the MySQL pool.
    #[arg(long, env = "TICKETING_MYSQL_POOL", default_value_t = 16)]
    pub mysql_pool: u32,
    /// PostgreSQL group commit: batch workers (each runs one shared transaction at a time);
    /// 0 runs every command in a transaction of its own.
    /// (2: one batch commits while the next loads and writes; see BatchConfig::workers).
    #[arg(long, env = "TICKETING_PG_BATCH", default_value_t = 2)]
    pub pg_batch: usize,
    /// PostgreSQL group commit: the most commands one batch takes.
    #[arg(long, env = "TICKETING_PG_BATCH_MAX", default_value_t = 128, value_parser = clap::value_parser!(u32).range(1..))]
    pub pg_batch_max: u32,
    /// How long idempotency records (and acknowledged outbox events) are kept, in seconds: a
    /// retry under an older key is a new request.
    #[arg(long, env = "TICKETING_RETENTION_SECS", default_value_t = 86_400, value_parser = clap::value_parser!(u32).range(1..))]
    pub retention_secs: u32,
    /// Per-request time limit, in milliseconds.
    #[arg(long, env = "TICKETING_REQUEST_TIMEOUT_MS", default_value_t = 10_000)]
    pub request_timeout_ms: u64,
    /// Requests per second on the gated endpoints for one queue token (burst: twice that).
    #[arg(long, env = "TICKETING_RATE_PER_TOKEN", default_value_t = 50)]
    pub rate_per_token: u32,
    /// Requests per second from one client address to the open endpoints that change something
    /// (enqueue, charge, cancel; burst: twice that); 0 turns the limit off (load tests from one
    /// address, or behind a proxy that limits instead).
    #[arg(long, env = "TICKETING_RATE_PER_CLIENT", default_value_t = 100)]
    pub rate_per_client: u32,
    /// A header a trusted proxy in front of the server sets to the client's address (e.g.
    /// `X-Forwarded-For`; its last entry is used) for the per-client limit. Unset: the
    /// connection's address. Behind a proxy, set it (or every buyer shares the proxy's bucket).
    #[arg(long, env = "TICKETING_CLIENT_IP_HEADER")]
    pub client_ip_header: Option<String>,
    /// Changes (holds, payments, cancels, charges, enqueues) in flight at most; past it a change
    /// is answered 503 before it starts.
    #[arg(long, env = "TICKETING_MAX_CHANGES_IN_FLIGHT", default_value_t = 4096, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_changes_in_flight: u32,
    /// How stale the options and seat maps served may be, in milliseconds: each is read from
    /// the store at most once per this time, however many ask (0: every request reads the
    /// store). Holds are always decided by the store.
    #[arg(long, env = "TICKETING_CATALOG_CACHE_MS", default_value_t = 250)]
    pub catalog_cache_ms: u64,
    /// The payment provider `POST /payments` with `"method": "provider"` charges: `none` (only
    /// points), or `fake`, a provider in memory that approves every charge after
    /// `--provider-latency-ms`, to show the flow without an account anywhere.
    #[arg(long, env = "TICKETING_PROVIDER", value_enum, default_value = "none")]
    pub provider: ProviderKind,
    /// The provider's base URL, for `--provider http`.
    #[arg(long, env = "TICKETING_PROVIDER_URL")]
    pub provider_url: Option<String>,
    /// The fake provider's answer time, in milliseconds.
    #[arg(long, env = "TICKETING_PROVIDER_LATENCY_MS", default_value_t = 0)]
    pub provider_latency_ms: u64,
    /// How long a hold's seats are kept, at least, for the provider's answer, in seconds.
    #[arg(long, env = "TICKETING_PROVIDER_BOUND_SECS", default_value_t = 120, value_parser = clap::value_parser!(u32).range(1..))]
    pub provider_bound_secs: u32,
    /// How long one provider call may take before its outcome counts as unknown (the payment
    /// is answered `202` pending and settled by the webhook or the recovery job), in ms.
    #[arg(long, env = "TICKETING_PROVIDER_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..))]
    pub provider_timeout_ms: u32,
    /// Largest request body, in bytes.
    #[arg(long, env = "TICKETING_MAX_BODY_BYTES", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
}

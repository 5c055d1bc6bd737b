//! The Redis [`WaitingQueue`]: per concert a sorted set of waiting tokens (score: arrival
//! sequence) and one of admitted tokens (score: admission end).

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use redis::{AsyncCommands, Script};
use ticketing_core::{
    ConcertId, Error, QueueConfig, QueueEntry, QueueLength, QueueTicket, QueueToken, Result,
    UserId, WaitingQueue, async_trait,
};
use uuid::Uuid;

use crate::backend;
use crate::connection::RedisConnection;

static ENQUEUE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/queue_enqueue.lua")));
static STATUS: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/queue_status.lua")));
static LEAVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/queue_leave.lua")));
static ADMIT: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("../lua/queue_admit.lua")));

/// The waiting room in Redis; any number of processes may share it.
#[derive(Clone)]
pub struct RedisQueue {
    conn: RedisConnection,
    prefix: String,
    config: QueueConfig,
}

impl std::fmt::Debug for RedisQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisQueue")
            .field("prefix", &self.prefix)
            .field("config", &self.config)
            .finish()
    }
}

fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

impl RedisQueue {
    /// A queue whose keys start with `prefix`, admitting as `config` says.
    pub fn new(
        conn: impl Into<RedisConnection>,
        prefix: impl Into<String>,
        config: QueueConfig,
    ) -> Self {
        Self {
            conn: conn.into(),
            prefix: prefix.into(),
            config,
        }
    }

    /// A concert's key `name`, tagged so all of one concert's keys share a Cluster slot.
    fn key(&self, concert: ConcertId, name: &str) -> String {
        format!("{}{{c:{}}}:{name}", self.prefix, concert)
    }

    fn concerts_key(&self) -> String {
        format!("{}queue:concerts", self.prefix)
    }

    /// Tokens carry their concert so their keys can be found: `<concert>.<random>`.
    fn parse(token: &QueueToken) -> Option<ConcertId> {
        let (concert, rest) = token.0.split_once('.')?;
        let id: i64 = concert.parse().ok()?;
        (id > 0 && !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(ConcertId(id))
    }
}

#[async_trait]
impl WaitingQueue for RedisQueue {
    async fn enqueue(
        &self,
        user: UserId,
        concert: ConcertId,
        now: DateTime<Utc>,
    ) -> Result<(QueueTicket, bool)> {
        let fresh = format!("{}.{}", concert, Uuid::new_v4().simple());
        let mut conn = self.conn.clone();
        // The set of lines first, so the admitter never misses a line that has someone in it
        // (a line in the set that stays empty costs the admitter one script call). It is a key
        // of another cluster slot than the line's, so it cannot be in the script.
        let _: u8 = conn
            .sadd(self.concerts_key(), concert.0)
            .await
            .map_err(backend)?;
        let (token, created): (String, u8) = ENQUEUE
            .key(self.key(concert, &format!("u:{user}")))
            .key(self.key(concert, "seq"))
            .key(self.key(concert, "waiting"))
            .arg(&fresh)
            .arg(user.0)
            .arg(micros(now))
            .arg(self.key(concert, "t:"))
            .invoke_async(&mut conn)
            .await
            .map_err(backend)?;
        let ticket = self.status(&QueueToken(token), now).await?;
        Ok((ticket, created == 1))
    }

    async fn status(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<QueueTicket> {
        let unknown = || Error::not_found("queue token", token);
        let concert = Self::parse(token).ok_or_else(unknown)?;
        let fields: Vec<String> = STATUS
            .key(self.key(concert, &format!("t:{}", token.0)))
            .key(self.key(concert, "through"))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        let [user, seq, until, through] = fields.as_slice() else {
            return Err(unknown());
        };
        let corrupt = |what: &str| Error::Unavailable {
            message: format!("corrupt queue entry: {what}"),
            retryable: false,
            source: None,
        };
        let user = user.parse().map_err(|_| corrupt("user"))?;
        let seq = seq.parse().map_err(|_| corrupt("seq"))?;
        let until = if until.is_empty() {
            None
        } else {
            Some(until.parse::<f64>().map_err(|_| corrupt("until"))? as i64)
        };
        let through = through.parse().map_err(|_| corrupt("through"))?;
        let entry = QueueEntry {
            user_id: UserId(user),
            concert_id: concert,
            seq,
            admitted_until: until.and_then(DateTime::<Utc>::from_timestamp_micros),
            admitted_through: through,
        };
        Ok(self.config.ticket(token.clone(), &entry, now))
    }

    async fn leave(&self, token: &QueueToken, now: DateTime<Utc>) -> Result<()> {
        let unknown = || Error::not_found("queue token", token);
        let concert = Self::parse(token).ok_or_else(unknown)?;
        let remember_ms = self.config.active_ttl.num_milliseconds().clamp(1, i64::MAX);
        let known: u8 = LEAVE
            .key(self.key(concert, &format!("t:{}", token.0)))
            .key(self.key(concert, "waiting"))
            .key(self.key(concert, "admitted"))
            .arg(&token.0)
            .arg(micros(now))
            .arg(remember_ms)
            .arg(self.key(concert, "u:"))
            .invoke_async(&mut self.conn.clone())
            .await
            .map_err(backend)?;
        if known == 0 {
            return Err(unknown());
        }
        Ok(())
    }

    async fn admit(&self, now: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.conn.clone();
        let concerts: Vec<i64> = conn.smembers(self.concerts_key()).await.map_err(backend)?;
        let mut total = 0;
        for concert in concerts.into_iter().map(ConcertId) {
            let admitted: u64 = ADMIT
                .key(self.key(concert, "waiting"))
                .key(self.key(concert, "admitted"))
                .key(self.key(concert, "through"))
                .key(self.key(concert, "last"))
                .arg(micros(now))
                .arg(self.config.admit_per_sec)
                .arg(self.config.max_active)
                .arg(
                    self.config
                        .active_ttl
                        .num_microseconds()
                        .unwrap_or(i64::MAX),
                )
                .arg(self.key(concert, "t:"))
                .arg(self.key(concert, "u:"))
                .invoke_async(&mut conn)
                .await
                .map_err(backend)?;
            total += admitted;
        }
        Ok(total)
    }

    async fn lengths(&self, now: DateTime<Utc>) -> Result<Vec<QueueLength>> {
        let mut conn = self.conn.clone();
        let mut concerts: Vec<i64> = conn.smembers(self.concerts_key()).await.map_err(backend)?;
        concerts.sort_unstable();
        let mut lengths = Vec::with_capacity(concerts.len());
        for concert in concerts.into_iter().map(ConcertId) {
            // Admitted tokens are scored by the end of their admission (exclusive).
            let (waiting, admitted): (u64, u64) = redis::pipe()
                .zcard(self.key(concert, "waiting"))
                .zcount(
                    self.key(concert, "admitted"),
                    format!("({}", micros(now)),
                    "+inf",
                )
                .query_async(&mut conn)
                .await
                .map_err(backend)?;
            lengths.push(QueueLength {
                concert_id: concert,
                waiting,
                admitted,
            });
        }
        Ok(lengths)
    }

    /// The tokens this queue issues: `<concert>.<32 hexadecimal digits>`.
    fn is_well_formed(&self, token: &str) -> bool {
        token.len() <= 64 && Self::parse(&QueueToken(token.to_owned())).is_some()
    }
}

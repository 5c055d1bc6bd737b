//! Catalog reads under a rush: every buyer refreshes the seat map, so options and seat maps are
//! served from a short-lived cache instead of the store.
//!
//! - **Bounded staleness**: an entry is served for at most the configured time (default 250
//!   ms) after it was read from the store; `0` turns the cache off.
//! - **One store read per refresh**: concurrent misses of one key wait for the first one's read
//!   instead of each reading the store.
//! - **Serialized once**: an entry holds its answers as JSON bytes (and, from 1 KiB, gzip of
//!   them for clients that accept it), with an `ETag` each, so a hit costs a copy of a
//!   reference, and a client polling with `If-None-Match` gets `304`.
//! - **Bounded memory**: at most [`CAPACITY_BYTES`] of seat maps (and an eighth of that of
//!   options), evicted by quick_cache's policy (CLOCK-Pro); only what the store found is kept
//!   (an unknown id is never cached). One shard, so the bound is the cache's, not a shard's.
//!
//! An answer is at most the configured time old when it is asked for: a request that waited
//! for another one's store read gets that read, even if the read itself took longer.
//!
//! A hold is always decided by the store, never by what this cache says.

use std::sync::Arc;
use std::time::{Duration, Instant};

use std::io::Write;

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use flate2::Compression;
use flate2::write::GzEncoder;
use quick_cache::Weighter;
use quick_cache::sync::Cache;
use serde::Serialize;
use ticketing::{ConcertId, OptionId, SeatStatus, TicketingService};

use crate::dto::{AvailabilityView, OptionView, SeatViewDto};

/// The most bytes of answers the cache keeps.
pub const CAPACITY_BYTES: u64 = 64 * 1024 * 1024;

/// Answers at least this long are also kept gzip-compressed, for clients that accept it.
const GZIP_FROM_BYTES: usize = 1024;

/// One answer, serialized (and compressed) once, with its entity tags.
#[derive(Debug, Clone)]
pub struct Body {
    json: Bytes,
    etag: HeaderValue,
    /// The same JSON gzip-compressed, and its tag (another representation: another tag).
    gzip: Option<(Bytes, HeaderValue)>,
}

impl Body {
    /// `value` as JSON, and gzip-compressed too if `compress` and it is long enough.
    fn new(value: &impl Serialize, compress: bool) -> ticketing::Result<Self> {
        let json = serde_json::to_vec(value).map_err(|e| ticketing::Error::Unavailable {
            message: format!("serializing a catalog answer: {e}"),
            retryable: false,
            source: None,
        })?;
        // FNV-1a: the same bytes give the same tag in every instance and every build.
        let hash = json.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
        let tag = |suffix: &str| {
            HeaderValue::from_str(&format!("\"{hash:016x}-{:x}{suffix}\"", json.len()))
                .unwrap_or_else(|_| HeaderValue::from_static("\"0\""))
        };
        let gzip = (compress && json.len() >= GZIP_FROM_BYTES)
            .then(|| {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
                encoder
                    .write_all(&json)
                    .and_then(|()| encoder.finish())
                    .ok()
            })
            .flatten()
            .map(|bytes| (Bytes::from(bytes), tag("-gz")));
        Ok(Self {
            etag: tag(""),
            json: Bytes::from(json),
            gzip,
        })
    }

    /// Whether the request's `Accept-Encoding` takes gzip (a `q` of 0 refuses it).
    fn accepts_gzip(request: &HeaderMap) -> bool {
        request
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or("").trim();
                // `q` (any case) of 0, or not a number, refuses the coding.
                let refused = parts.any(|p| {
                    p.split_once('=').is_some_and(|(name, q)| {
                        name.trim().eq_ignore_ascii_case("q")
                            && !q
                                .trim()
                                .parse::<f32>()
                                .is_ok_and(|q| q.is_finite() && q > 0.0)
                    })
                });
                coding.eq_ignore_ascii_case("gzip") && !refused
            })
    }

    /// `200` with the JSON (gzip-compressed when the client accepts it and the answer is
    /// long), or `304` when the request's `If-None-Match` names the version it would get.
    pub fn answer(&self, request: &HeaderMap) -> Response {
        let (bytes, etag, gzip) = match &self.gzip {
            Some((bytes, etag)) if Self::accepts_gzip(request) => (bytes, etag, true),
            _ => (&self.json, &self.etag, false),
        };
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|tag| {
                let tag = tag.trim();
                tag == "*" || tag.trim_start_matches("W/").as_bytes() == etag.as_bytes()
            });
        let headers = [
            (header::ETAG, etag.clone()),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::VARY, HeaderValue::from_static("accept-encoding")),
        ];
        if fresh {
            return (StatusCode::NOT_MODIFIED, headers).into_response();
        }
        let mut response = (
            headers,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            bytes.clone(),
        )
            .into_response();
        if gzip {
            response
                .headers_mut()
                .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        }
        response
    }

    fn len(&self) -> u64 {
        (self.json.len() + self.gzip.as_ref().map_or(0, |(b, _)| b.len())) as u64
    }
}

/// An option's seat map in its three forms, all from one store read.
#[derive(Debug, Clone)]
pub struct SeatMap {
    /// Every seat (`?status=all`).
    pub all: Body,
    /// The available seats (the default).
    pub available: Body,
    /// The compact form ([`AvailabilityView`]).
    pub availability: Body,
}

/// An answer and when it was read from the store.
#[derive(Debug)]
struct Stamped<T> {
    read_at: Instant,
    value: T,
}

/// What an answer weighs in the cache: its bytes.
trait Size {
    fn size(&self) -> u64;
}

impl Size for Body {
    fn size(&self) -> u64 {
        self.len()
    }
}

impl Size for SeatMap {
    fn size(&self) -> u64 {
        self.all.len() + self.available.len() + self.availability.len()
    }
}

#[derive(Debug, Clone)]
struct BySize;

impl<K, T: Size> Weighter<K, Arc<Stamped<T>>> for BySize {
    fn weight(&self, _: &K, entry: &Arc<Stamped<T>>) -> u64 {
        entry.value.size().max(1)
    }
}

type Entries<K, T> = Cache<K, Arc<Stamped<T>>, BySize>;

/// The cache of catalog answers (see the module's docs).
pub struct CatalogCache {
    ttl: Duration,
    options: Entries<ConcertId, Body>,
    seats: Entries<OptionId, SeatMap>,
}

impl std::fmt::Debug for CatalogCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatalogCache")
            .field("ttl", &self.ttl)
            .field("options", &self.options.len())
            .field("seats", &self.seats.len())
            .finish()
    }
}

impl CatalogCache {
    /// A cache serving each answer for at most `ttl` after its store read; `Duration::ZERO`
    /// reads the store every time.
    pub fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            options: entries(1_024, CAPACITY_BYTES / 8),
            seats: entries(4_096, CAPACITY_BYTES),
        }
    }

    /// A concert's options, as JSON.
    pub async fn options(
        &self,
        service: &TicketingService,
        concert: ConcertId,
    ) -> ticketing::Result<Body> {
        // Compressed once per refresh; with the cache off, not on every request.
        let compress = !self.ttl.is_zero();
        get(&self.options, self.ttl, concert, || async {
            let options: Vec<OptionView> = service
                .options(concert)
                .await?
                .into_iter()
                .map(Into::into)
                .collect();
            Body::new(&options, compress)
        })
        .await
    }

    /// An option's seat map, in its three forms.
    pub async fn seats(
        &self,
        service: &TicketingService,
        option: OptionId,
    ) -> ticketing::Result<SeatMap> {
        let compress = !self.ttl.is_zero();
        get(&self.seats, self.ttl, option, || async {
            let mut seats = service.seats(option).await?;
            seats.sort_by_key(|v| v.seat.id);
            let mut bitmap = vec![0u8; seats.len().div_ceil(8)];
            let mut available = 0;
            for (i, v) in seats.iter().enumerate() {
                if v.status == SeatStatus::Available {
                    bitmap[i / 8] |= 0x80 >> (i % 8);
                    available += 1;
                }
            }
            let compact = AvailabilityView {
                option_id: option.0,
                seats: seats.len() as u64,
                available,
                bitmap: base64::engine::general_purpose::STANDARD.encode(&bitmap),
            };
            let availability = Body::new(&compact, compress)?;
            let all: Vec<SeatViewDto> = seats.into_iter().map(Into::into).collect();
            let open: Vec<&SeatViewDto> = all.iter().filter(|s| s.status == "available").collect();
            Ok(SeatMap {
                available: Body::new(&open, compress)?,
                all: Body::new(&all, compress)?,
                availability,
            })
        })
        .await
    }
}

/// A cache of one shard holding up to `bytes` of answers.
fn entries<K: Eq + std::hash::Hash, T: Size>(items: usize, bytes: u64) -> Entries<K, T> {
    let options = quick_cache::OptionsBuilder::new()
        .estimated_items_capacity(items)
        .weight_capacity(bytes)
        .shards(1)
        .build();
    match options {
        Ok(options) => Cache::with_options(
            options,
            BySize,
            quick_cache::DefaultHashBuilder::default(),
            quick_cache::sync::DefaultLifecycle::default(),
        ),
        Err(_) => Cache::with_weighter(items, bytes, BySize),
    }
}

/// The answer for `key`: cached if read less than `ttl` ago, else read (once, however many ask
/// at the same time) and kept.
async fn get<K, T, F, Fut>(
    entries: &Entries<K, T>,
    ttl: Duration,
    key: K,
    read: F,
) -> ticketing::Result<T>
where
    K: Eq + std::hash::Hash + Clone,
    T: Size + Clone,
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ticketing::Result<T>>,
{
    if ttl.is_zero() {
        return read().await;
    }
    // Negative control (scripts/controls.sh): a cache whose concurrent misses each read the
    // store; the coalescing test must catch it.
    #[cfg(ticketing_control = "uncoalesced")]
    {
        if let Some(entry) = entries.get(&key).filter(|e| e.read_at.elapsed() < ttl) {
            return Ok(entry.value.clone());
        }
        let read_at = Instant::now();
        let value = read().await?;
        entries.insert(
            key,
            Arc::new(Stamped {
                read_at,
                value: value.clone(),
            }),
        );
        return Ok(value);
    }
    // Fresh enough if it was less than `ttl` old when asked for: a caller that waited for
    // another one's read takes that read, however long it took (else a read slower than `ttl`
    // would serve one waiter per read).
    let asked = Instant::now();
    #[allow(unreachable_code)]
    loop {
        match entries.get_value_or_guard_async(&key).await {
            Ok(entry) if asked.saturating_duration_since(entry.read_at) < ttl => {
                return Ok(entry.value.clone());
            }
            Ok(stale) => {
                // Out of date: the first caller to see it so takes it out, and the next turn
                // of the loop reads it anew (the others wait for that read).
                entries.remove_if(&key, |current| Arc::ptr_eq(current, &stale));
            }
            Err(guard) => {
                let read_at = Instant::now();
                let value = read().await?;
                let _ = guard.insert(Arc::new(Stamped {
                    read_at,
                    value: value.clone(),
                }));
                return Ok(value);
            }
        }
    }
}

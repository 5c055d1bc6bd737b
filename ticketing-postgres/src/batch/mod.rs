//! Group commit: concurrent commands share one transaction and one commit.
//!
//! Commands go to a queue served by a few workers. A free worker takes whatever is queued, up to
//! [`BatchConfig::max_batch`] (smart batching: no timer, so a lone command is not delayed and
//! batches grow only under load), and runs the batch as one transaction of a constant number of
//! set-based statements: load and lock every row the batch needs in one global order (its users'
//! per-user locks, then wallets, reservations, seats; each ascending, so batches never deadlock
//! each other), decide each
//! command in arrival order with `ticketing_core::rules` over what the commands before it left,
//! write what changed, commit once.
//!
//! A refusal answers its caller alone. A database error before the commit was sent fails the
//! batch: it is run again once, and if it fails again it is split in halves, each run on its
//! own, so one poisonous command cannot fail its neighbours forever. A failure of the commit
//! itself (a lost connection) leaves the outcome unknown: nothing is retried and every caller is
//! told `unavailable` (retryable; a retry with the same idempotency key gets the first answer).
//! A command runs in the worker, not in the caller's future: a caller that gives up (drops the
//! future) never leaves a half-applied command; a command whose caller is gone before its batch
//! starts is not run at all.

mod io;
mod state;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sqlx::PgPool;
use ticketing_core::Error;
use tokio::sync::{Mutex, mpsc, oneshot};

pub(crate) use state::{Command, Outcome};

use crate::error::{code, commit_refused, db};

/// Settings of the group-commit mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchConfig {
    /// Batches in flight at once (each holds one pooled connection while it runs). Default 2:
    /// one batch commits while the next one loads and writes. More workers make smaller
    /// batches; on 2 cores (database, server and load on one machine) 2 was the fastest
    /// (BENCHMARKS.md); a database with more cores may take more.
    pub workers: usize,
    /// The most commands one batch takes.
    pub max_batch: usize,
    /// Commands waiting at most; past it callers wait for room (backpressure).
    pub queue: usize,
}

ticketing_core::__with_setters!(BatchConfig {
    with_workers => workers: usize,
    with_max_batch => max_batch: usize,
    with_queue => queue: usize,
});

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            workers: 2,
            max_batch: 128,
            queue: 8192,
        }
    }
}

/// Counters of the group-commit mode, since the store was made.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchStats {
    /// Batch transactions started (retries and split halves included).
    pub batches: u64,
    /// Commands taken by the workers (a retried or split command counts once).
    pub commands: u64,
    /// The most commands one batch took.
    pub largest: u64,
    /// Commands queued now, not yet taken by a worker.
    pub waiting: u64,
}

#[derive(Debug, Default)]
struct Counters {
    batches: AtomicU64,
    commands: AtomicU64,
    largest: AtomicU64,
}

impl Counters {
    fn snapshot(&self) -> BatchStats {
        BatchStats {
            batches: self.batches.load(Ordering::Relaxed),
            commands: self.commands.load(Ordering::Relaxed),
            largest: self.largest.load(Ordering::Relaxed),
            waiting: 0,
        }
    }
}

struct Job {
    cmd: Command,
    reply: oneshot::Sender<Result<Outcome, Error>>,
}

/// The queue in front of the batch workers; workers start on the first command.
pub(crate) struct Batcher {
    config: BatchConfig,
    skip_locked: bool,
    pool: PgPool,
    tx: mpsc::Sender<Job>,
    /// Handed to the workers when they start: once every worker is gone (its runtime shut
    /// down), the queue closes and callers are told so instead of waiting forever.
    rx: std::sync::Mutex<Option<mpsc::Receiver<Job>>>,
    started: OnceLock<()>,
    counters: Arc<Counters>,
}

impl std::fmt::Debug for Batcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("config", &self.config)
            .field("skip_locked", &self.skip_locked)
            .finish_non_exhaustive()
    }
}

impl Batcher {
    pub(crate) fn new(pool: PgPool, config: BatchConfig, skip_locked: bool) -> Self {
        let (tx, rx) = mpsc::channel(config.queue.max(1));
        Self {
            config,
            skip_locked,
            pool,
            tx,
            rx: std::sync::Mutex::new(Some(rx)),
            started: OnceLock::new(),
            counters: Arc::default(),
        }
    }

    /// The counters so far.
    pub(crate) fn stats(&self) -> BatchStats {
        BatchStats {
            waiting: (self.tx.max_capacity() - self.tx.capacity()) as u64,
            ..self.counters.snapshot()
        }
    }

    /// Run `cmd` in a batch and wait for its answer.
    pub(crate) async fn submit(&self, cmd: Command) -> Result<Outcome, Error> {
        self.started.get_or_init(|| {
            let Some(rx) = self.rx.lock().ok().and_then(|mut rx| rx.take()) else {
                return;
            };
            let rx = Arc::new(Mutex::new(rx));
            for _ in 0..self.config.workers.max(1) {
                let worker = Worker {
                    rx: rx.clone(),
                    pool: self.pool.clone(),
                    max_batch: self.config.max_batch.max(1),
                    skip_locked: self.skip_locked,
                    counters: self.counters.clone(),
                };
                tokio::spawn(worker.run());
            }
        });
        let (reply, answer) = oneshot::channel();
        self.tx.send(Job { cmd, reply }).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

fn gone() -> Error {
    Error::Unavailable {
        message: "the batch workers stopped".into(),
        retryable: true,
        source: None,
    }
}

struct Worker {
    rx: Arc<Mutex<mpsc::Receiver<Job>>>,
    pool: PgPool,
    max_batch: usize,
    skip_locked: bool,
    counters: Arc<Counters>,
}

impl Worker {
    async fn run(self) {
        loop {
            // Let the callers this worker has just answered run first: most submit their next
            // command at once, and it joins this batch instead of waiting for the next one
            // (measured: 17 → 26 commands per batch at 64 in flight on 2 workers). No timer:
            // a lone command is not delayed.
            tokio::task::yield_now().await;
            let mut jobs = Vec::new();
            {
                let mut rx = self.rx.lock().await;
                match rx.recv().await {
                    Some(job) => jobs.push(job),
                    // Every sender (the store and its clones) is gone.
                    None => return,
                }
                while jobs.len() < self.max_batch {
                    match rx.try_recv() {
                        Ok(job) => jobs.push(job),
                        Err(_) => break,
                    }
                }
            }
            // A caller that gave up before its batch started: its command is not run.
            jobs.retain(|j| !j.reply.is_closed());
            if !jobs.is_empty() {
                let n = jobs.len() as u64;
                self.counters.commands.fetch_add(n, Ordering::Relaxed);
                self.counters.largest.fetch_max(n, Ordering::Relaxed);
                self.run_jobs(jobs).await;
            }
        }
    }

    /// Run `jobs` as one batch; on a database error before the commit run it again, then split.
    async fn run_jobs(&self, jobs: Vec<Job>) {
        let mut pending = vec![jobs];
        while let Some(mut jobs) = pending.pop() {
            // A caller that gave up before this run (a split half's) started is not run.
            jobs.retain(|j| !j.reply.is_closed());
            if jobs.is_empty() {
                continue;
            }
            self.counters.batches.fetch_add(1, Ordering::Relaxed);
            let mut result = self.execute(&jobs).await;
            // A batch that did not happen is run again: once for any error, up to
            // RERUNS times with a growing pause when its connection was lost (a restart or a
            // killed backend: a command alone would have failed the same way, a batch of
            // many should not fail for one lost connection).
            let mut reruns = 0;
            while let Err(Failure::BeforeCommit(e)) = &result {
                let lost = connection_lost(e);
                if reruns >= if lost { RERUNS } else { 1 } {
                    break;
                }
                tracing::debug!(
                    target: "ticketing::postgres",
                    error = %e,
                    commands = jobs.len(),
                    connection_lost = lost,
                    "batch failed before its commit: run again"
                );
                if lost {
                    tokio::time::sleep(Duration::from_millis(10 << (2 * reruns))).await;
                }
                reruns += 1;
                // A caller that gave up meanwhile was never answered: its command is not
                // run (it may retry it, and a keyless charge must not count twice).
                jobs.retain(|j| !j.reply.is_closed());
                if jobs.is_empty() {
                    result = Ok(Vec::new());
                    break;
                }
                self.counters.batches.fetch_add(1, Ordering::Relaxed);
                result = self.execute(&jobs).await;
            }
            match result {
                Ok(answers) => {
                    for (job, answer) in jobs.into_iter().zip(answers) {
                        let _ = job.reply.send(answer);
                    }
                }
                // A statement the server refused may be one command's fault: split, so the
                // others go through. A lost connection or a pool timeout is nobody's: answer.
                Err(Failure::BeforeCommit(e)) if jobs.len() > 1 && commands_may_be_at_fault(&e) => {
                    tracing::debug!(
                        target: "ticketing::postgres",
                        error = %e,
                        commands = jobs.len(),
                        "batch refused by the database: split in two"
                    );
                    let mut first = jobs;
                    let second = first.split_off(first.len() / 2);
                    // Run the first half first: arrival order is kept.
                    pending.push(second);
                    pending.push(first);
                }
                Err(failure) => answer_all(jobs, failure),
            }
        }
    }

    async fn execute(&self, jobs: &[Job]) -> Result<Vec<Result<Outcome, Error>>, Failure> {
        let cmds: Vec<&Command> = jobs.iter().map(|j| &j.cmd).collect();
        execute(&self.pool, &cmds, self.skip_locked).await
    }
}

/// Whether a failed statement may be some command's fault, or the batch's size, so that
/// splitting the batch lets the others through: a data error (SQLSTATE classes 22 and 23), or
/// PostgreSQL's lock table full (53200: a batch takes one per-user lock per distinct user, and
/// a half takes fewer). Lost connections, timeouts, deadlocks and other lack of resources would
/// fail every half alike: they are answered at once (after the one re-run).
fn commands_may_be_at_fault(e: &sqlx::Error) -> bool {
    matches!(code(e).as_deref(), Some(c) if c.starts_with("22") || c.starts_with("23") || c == "53200")
}

/// Re-runs of a batch whose connection was lost before its commit (pauses 10, 40, 160 ms).
const RERUNS: u32 = 3;

/// Whether the error is a lost connection or a server going away (not any command's doing).
fn connection_lost(e: &sqlx::Error) -> bool {
    match e {
        // Not a pool that timed out (every connection busy: pausing and re-running would add
        // to the load) nor one that was closed (the store is shutting down).
        sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed | sqlx::Error::Protocol(_) => true,
        _ => matches!(code(e).as_deref(), Some(c) if c.starts_with("08") || c.starts_with("57P")),
    }
}

/// How a batch's transaction failed.
enum Failure {
    /// Before the commit was sent, or refused by the server: the transaction did not happen.
    BeforeCommit(sqlx::Error),
    /// The commit was sent and no answer came back: whether it happened is unknown.
    AtCommit(sqlx::Error),
}

/// Tell every caller of a failed batch why.
fn answer_all(mut jobs: Vec<Job>, failure: Failure) {
    if jobs.len() == 1 {
        if let Some(job) = jobs.pop() {
            let _ = job.reply.send(Err(failure.into_error()));
        }
        return;
    }
    let (message, source) = match failure {
        Failure::BeforeCommit(e) => ("the batch's transaction failed; nothing of it happened", e),
        Failure::AtCommit(e) => (UNKNOWN, e),
    };
    let unknown = message == UNKNOWN;
    let source = Arc::new(source);
    for job in jobs {
        let message = message.to_owned();
        let source: Option<ticketing_core::BoxError> = Some(Box::new(source.clone()));
        let _ = job.reply.send(Err(if unknown {
            Error::OutcomeUnknown { message, source }
        } else {
            Error::Unavailable {
                message,
                retryable: true,
                source,
            }
        }));
    }
}

const UNKNOWN: &str =
    "the batch's commit got no answer: it may have happened; retry with the same idempotency key";

impl Failure {
    fn into_error(self) -> Error {
        match self {
            Failure::BeforeCommit(e) => db(e),
            Failure::AtCommit(e) => Error::OutcomeUnknown {
                message: UNKNOWN.into(),
                source: Some(e.into()),
            },
        }
    }
}

/// One batch: begin, load and lock, decide, write, commit.
async fn execute(
    pool: &PgPool,
    cmds: &[&Command],
    skip_locked: bool,
) -> Result<Vec<Result<Outcome, Error>>, Failure> {
    let mut tx = pool
        .begin_with(sqlx::AssertSqlSafe(include_str!(
            "../../sql/batch_begin.sql"
        )))
        .await
        .map_err(Failure::BeforeCommit)?;
    let mut state = io::load(&mut tx, cmds, skip_locked)
        .await
        .map_err(Failure::BeforeCommit)?;
    #[cfg(not(ticketing_control = "batch_snapshot"))]
    let answers: Vec<Result<Outcome, Error>> = cmds.iter().map(|c| state.apply(c)).collect();
    #[cfg(ticketing_control = "batch_snapshot")]
    let answers = state::apply_on_snapshot(&mut state, cmds);
    io::write(&mut tx, &state)
        .await
        .map_err(Failure::BeforeCommit)?;
    match tx.commit().await {
        Ok(()) => Ok(answers),
        // The server refused the commit (serialization, a deferred constraint): it did not
        // happen. Any other error (a FATAL, a lost connection) leaves the outcome unknown.
        Err(e) if commit_refused(&e) => Err(Failure::BeforeCommit(e)),
        Err(e) => Err(Failure::AtCommit(e)),
    }
}

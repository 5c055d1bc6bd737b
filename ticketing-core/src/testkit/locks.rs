//! The lock-manager suite: what every [`LockManager`] must do, whatever holds its leases.
//! Run it with [`lock_manager_suite!`](crate::lock_manager_suite) and a factory of managers that
//! judge lease ends by the real clock (each case uses keys of its own, so one Redis may serve
//! them all).

use std::sync::Arc;

use chrono::{Duration, Utc};

use crate::lock::{Acquired, Lease, LockManager};

/// Fresh keys for one case: `n` of them, sorted, never used by another case or run.
fn keys(n: usize) -> Vec<String> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut keys: Vec<String> = (0..n).map(|i| format!("{{suite}}:{run}:{i}")).collect();
    keys.sort();
    keys
}

async fn lease(m: &dyn LockManager, keys: &[String], ttl: Duration) -> Lease {
    m.try_acquire(keys, ttl)
        .await
        .expect("the lock backend answers")
        .unwrap_or_else(|| panic!("{keys:?} were free"))
}

async fn busy(m: &dyn LockManager, keys: &[String]) -> bool {
    m.try_acquire(keys, Duration::seconds(5))
        .await
        .expect("the lock backend answers")
        .is_none()
}

/// A lease covers every key or none: a request overlapping a held key gets nothing, and the
/// keys it did not overlap stay free.
pub async fn leases_are_all_or_none(m: Arc<dyn LockManager>) {
    let k = keys(3);
    let held = lease(&*m, &k[..2], Duration::seconds(5)).await;
    assert_eq!(held.keys, k[..2].to_vec(), "a lease names its keys, sorted");
    assert!(busy(&*m, &k[1..]).await, "overlapping a held key: nothing");
    let rest = lease(&*m, &k[2..], Duration::seconds(5)).await;
    assert!(rest.token > held.token);
    assert!(
        busy(&*m, &k[..1]).await,
        "the first lease still holds its keys"
    );
}

/// Every lease's token is greater than that of every earlier lease on any of its keys, so a
/// store that keeps the greatest token it saw refuses a lapsed holder's writes.
pub async fn fencing_tokens_always_rise(m: Arc<dyn LockManager>) {
    let k = keys(2);
    let mut last = None;
    for round in 0..5 {
        let keys = if round % 2 == 0 { &k[..1] } else { &k[..] };
        let l = lease(&*m, keys, Duration::seconds(5)).await;
        if let Some(previous) = last {
            assert!(
                l.token > previous,
                "round {round}: {:?} after {previous:?}",
                l.token
            );
        }
        last = Some(l.token);
        assert!(m.release(&l).await.expect("release"));
    }
}

/// Only the owner releases a lease: a lease with another owner (or one already given back)
/// releases nothing and the keys stay held.
pub async fn only_the_owner_releases(m: Arc<dyn LockManager>) {
    let k = keys(2);
    let held = lease(&*m, &k, Duration::seconds(5)).await;
    let forged = Lease {
        owner: uuid::Uuid::new_v4(),
        ..held.clone()
    };
    assert!(!m.release(&forged).await.expect("release"), "not the owner");
    assert!(busy(&*m, &k).await, "still held");
    assert!(m.release(&held).await.expect("release"), "the owner");
    assert!(
        !m.release(&held).await.expect("release"),
        "given back already"
    );
    let next = lease(&*m, &k, Duration::seconds(5)).await;
    assert!(next.token > held.token);
}

/// A lease lapses at its end without being released: the keys can be leased again (with a
/// greater token), and the lapsed holder can no longer release them.
pub async fn leases_lapse_at_their_end(m: Arc<dyn LockManager>) {
    let k = keys(1);
    let short = lease(&*m, &k, Duration::milliseconds(150)).await;
    assert!(busy(&*m, &k).await, "held until its end");
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let next = lease(&*m, &k, Duration::seconds(5)).await;
    assert!(next.token > short.token);
    assert!(
        !m.release(&short).await.expect("release"),
        "a lapsed lease releases nothing"
    );
    assert!(busy(&*m, &k).await, "the new lease still holds");
}

/// A "taken" hint left by `release_taken` turns callers of `try_acquire_untaken` away early
/// (naming the hinted keys) until its end or `clear_taken`, and never grants a lease on a key
/// someone holds. A manager that keeps no hints (the trait's defaults) passes by granting or
/// refusing as `try_acquire` would.
pub async fn hints_turn_callers_away_early_and_never_grant_a_held_key(m: Arc<dyn LockManager>) {
    let k = keys(2);
    let now = Utc::now();
    let first = lease(&*m, &k, Duration::seconds(5)).await;
    assert!(
        m.release_taken(&first, now + Duration::minutes(1))
            .await
            .expect("release")
    );
    let hinted = m
        .try_acquire_untaken(&k, Duration::seconds(5), now)
        .await
        .expect("answers");
    let keeps_hints = match &hinted {
        Acquired::Taken(taken) => {
            assert_eq!(taken, &k, "the hinted keys, sorted");
            true
        }
        Acquired::Lease(l) => {
            assert!(m.release(l).await.expect("release"));
            false
        }
        Acquired::Busy => panic!("released keys are not busy"),
    };
    if keeps_hints {
        // After the hint's end it no longer turns anyone away.
        let later = now + Duration::minutes(2);
        let after = m.try_acquire_untaken(&k, Duration::seconds(5), later).await;
        match after.expect("answers") {
            Acquired::Lease(l) => assert!(m.release(&l).await.expect("release")),
            other => panic!("a hint past its end turned a caller away: {other:?}"),
        }
        // Cleared, it turns nobody away either.
        let again = lease(&*m, &k, Duration::seconds(5)).await;
        assert!(
            m.release_taken(&again, now + Duration::minutes(1))
                .await
                .expect("release")
        );
        m.clear_taken(&k).await.expect("clear");
        match m
            .try_acquire_untaken(&k, Duration::seconds(5), now)
            .await
            .expect("answers")
        {
            Acquired::Lease(l) => assert!(m.release(&l).await.expect("release")),
            other => panic!("a cleared hint turned a caller away: {other:?}"),
        }
    }
    // Never a lease on a key someone holds, hint or none.
    let holder = lease(&*m, &k[..1], Duration::seconds(5)).await;
    let later = now + Duration::minutes(2);
    match m
        .try_acquire_untaken(&k, Duration::seconds(5), later)
        .await
        .expect("answers")
    {
        Acquired::Busy | Acquired::Taken(_) => {}
        Acquired::Lease(l) => panic!("a lease on a held key: {l:?} while {holder:?}"),
    }
}

/// Only a whole lease leaves a hint: `release_taken` of a lease that lapsed releases nothing
/// and leaves no hint on keys another caller may now hold.
pub async fn a_lapsed_lease_leaves_no_hint(m: Arc<dyn LockManager>) {
    let k = keys(1);
    let now = Utc::now();
    let short = lease(&*m, &k, Duration::milliseconds(150)).await;
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let released = m
        .release_taken(&short, now + Duration::minutes(1))
        .await
        .expect("release");
    assert!(!released, "a lapsed lease releases nothing");
    match m
        .try_acquire_untaken(&k, Duration::seconds(5), now)
        .await
        .expect("answers")
    {
        Acquired::Lease(l) => assert!(m.release(&l).await.expect("release")),
        other => panic!("a lapsed lease left a hint: {other:?}"),
    }
}

/// Generate the lock-manager cases for a factory: an `async fn() -> Option<Arc<dyn
/// LockManager>>` (`None` skips, after printing why), attributes after `;` as for
/// [`conformance_suite!`](crate::conformance_suite).
#[macro_export]
macro_rules! lock_manager_suite {
    ($factory:path $(; #[$attr:meta])*) => {
        $crate::__lock_cases!($factory, [$(#[$attr])*];
            leases_are_all_or_none,
            fencing_tokens_always_rise,
            only_the_owner_releases,
            leases_lapse_at_their_end,
            hints_turn_callers_away_early_and_never_grant_a_held_key,
            a_lapsed_lease_leaves_no_hint,
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __lock_cases {
    ($factory:path, [$(#[$attr:meta])*]; $name:ident $(, $rest:ident)* $(,)?) => {
        #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
        $(#[$attr])*
        async fn $name() {
            let Some(manager) = $factory().await else { return };
            $crate::testkit::locks::$name(manager).await;
        }
        $crate::__lock_cases!($factory, [$(#[$attr])*]; $($rest),*);
    };
    ($factory:path, [$(#[$attr:meta])*];) => {};
}

//! One connection type for a single Redis server and for a Redis Cluster.

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

/// A connection to one Redis server (a [`ConnectionManager`], which reconnects by itself) or to
/// a Redis Cluster (a [`ClusterConnection`], which follows slot moves and failovers). Cheap to
/// clone; the lock manager, the queue and the publisher take either (`impl Into<RedisConnection>`).
///
/// On a cluster, the keys a script touches together must share a slot, so those keys carry a
/// hash tag: `{opt:<id>}` for the seat locks of one option, `{c:<id>}` for one concert's waiting
/// line (the set of lines and the event stream are keys of their own, used alone). A `{` in a
/// key prefix would put every key in one slot (it still works, on one node).
///
/// Three queue scripts (joining, admission, leaving) also reach keys they read the names of in the
/// script (a token's hash, a user's token key), always of the same concert's slot: a cluster
/// serves them from the slot's node, but while that slot is being migrated between nodes such
/// a call fails with a retryable error (`TRYAGAIN`/`ASK`), to be retried by the caller.
#[derive(Clone)]
#[non_exhaustive]
pub enum RedisConnection {
    /// One server (or a primary with replicas behind one address).
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for RedisConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Single(_) => "RedisConnection::Single",
            Self::Cluster(_) => "RedisConnection::Cluster",
        })
    }
}

impl From<ConnectionManager> for RedisConnection {
    fn from(conn: ConnectionManager) -> Self {
        Self::Single(conn)
    }
}

impl From<ClusterConnection> for RedisConnection {
    fn from(conn: ClusterConnection) -> Self {
        Self::Cluster(conn)
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Self::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

//! A three-node Redis Cluster on loopback ports, started once per test process (nodes of its
//! own, in a temporary directory, nothing on disk kept) and stopped when the process ends: a
//! watchdog beside each node kills it once the test process is gone.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ticketing_redis::RedisConnection;

/// The nodes' ports once the cluster is up (every slot served), or why it could not start:
/// the first failure is kept, so the other tests fail at once instead of starting nodes again.
static CLUSTER: OnceLock<Result<Vec<u16>, String>> = OnceLock::new();

/// A port free now whose cluster bus port (+10000) is free too, both below the range the
/// kernel hands out for outgoing connections (32768 up), so a test's client socket cannot take
/// one between this check and the node's bind; and neither meets another node's pair.
fn free_port(taken: &[u16]) -> Result<u16, String> {
    let seed = uuid::Uuid::new_v4().as_u128();
    for i in 0..2_000u128 {
        let port = 20_000 + ((seed + i * 7_919) % 2_700) as u16;
        let bus = port + 10_000;
        let clashes = taken
            .iter()
            .any(|&t| [t, t + 10_000].iter().any(|&p| p == port || p == bus));
        if !clashes
            && TcpListener::bind(("127.0.0.1", port)).is_ok()
            && TcpListener::bind(("127.0.0.1", bus)).is_ok()
        {
            return Ok(port);
        }
    }
    Err("no free pair of loopback ports for a cluster node".into())
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output();
    // No redis-cli: an empty answer, and the wait for the node times out saying what it waited for.
    out.map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) -> Result<(), String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        if Instant::now() >= deadline {
            return Err(format!("timed out waiting for {what}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn start() -> Result<Vec<u16>, String> {
    let dir = std::env::temp_dir().join(format!(
        "ticketing-cluster-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).map_err(|e| format!("a directory for the node files: {e}"))?;
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = free_port(&ports)?;
        ports.push(port);
        let node = format!(
            "redis-server --port {port} --bind 127.0.0.1 --cluster-enabled yes \
             --cluster-config-file nodes-{port}.conf --dir '{}' --save '' --appendonly no \
             --daemonize no --logfile '{}/node-{port}.log'",
            dir.display(),
            dir.display()
        );
        // The node runs until the test process is gone, then the watchdog stops it.
        let watched = format!(
            "{node} & node=$!; while kill -0 {} 2>/dev/null; do sleep 1; done; kill $node; \
             wait $node; rm -f '{dir}/nodes-{port}.conf' '{dir}/node-{port}.log'; \
             rmdir '{dir}' 2>/dev/null || true",
            std::process::id(),
            dir = dir.display()
        );
        // In the background of a shell that returns at once: the node and its watchdog are
        // nobody's children to wait for.
        Command::new("sh")
            .args(["-c", &format!("( {watched} ) &")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| format!("starting a shell for redis-server: {e}"))?;
    }
    for &port in &ports {
        wait_for("a cluster node", || cli(port, &["PING"]).trim() == "PONG")?;
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .map_err(|e| format!("running redis-cli --cluster create: {e}"))?;
    if !created.status.success() {
        return Err(format!(
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&created.stdout)
        ));
    }
    for &port in &ports {
        wait_for("every slot to be served", || {
            let info = cli(port, &["CLUSTER", "INFO"]);
            info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
        })?;
    }
    Ok(ports)
}

/// The cluster's node ports (starting it on first use).
///
/// # Panics
/// If the cluster could not be started (every test using it fails with the first reason).
pub fn ports() -> &'static [u16] {
    match CLUSTER.get_or_init(start) {
        Ok(ports) => ports,
        Err(why) => panic!("the test cluster did not start: {why}"),
    }
}

/// A connection to the cluster and a fresh key prefix (tests share the cluster, not keys).
pub async fn cluster() -> (RedisConnection, String) {
    let nodes: Vec<String> = ports()
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let conn = ticketing_redis::connect_cluster(nodes)
        .await
        .expect("connecting to the test cluster");
    (
        conn,
        format!("ticketing:cluster:{}:", uuid::Uuid::new_v4().simple()),
    )
}

//! A three-node Redis Cluster on loopback ports, started once per test process (nodes of its
//! own, in a temporary directory, nothing on disk kept) and stopped when the process ends: a
//! watchdog beside each node kills it once the test process is gone.

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ticketing_redis::RedisConnection;

/// The nodes' ports, once the cluster is up (every slot served).
static CLUSTER: OnceLock<Vec<u16>> = OnceLock::new();

/// A port free now whose cluster bus port (+10000) is free too.
fn free_port(taken: &[u16]) -> u16 {
    for _ in 0..1000 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("binding a loopback port");
        if port < 55_000
            && !taken.contains(&port)
            && TcpListener::bind(("127.0.0.1", port + 10_000)).is_ok()
        {
            return port;
        }
    }
    panic!("no free pair of loopback ports for a cluster node");
}

fn cli(port: u16, args: &[&str]) -> String {
    let out = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .args(args)
        .output()
        .expect("running redis-cli");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn wait_for(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !ready() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start() -> Vec<u16> {
    let dir = std::env::temp_dir().join(format!(
        "ticketing-cluster-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).expect("a directory for the cluster's node files");
    let mut ports = Vec::new();
    for _ in 0..3 {
        let port = free_port(&ports);
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
        let started = Command::new("sh")
            .args(["-c", &format!("( {watched} ) &")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("starting redis-server");
        assert!(started.success(), "starting redis-server: {started}");
    }
    for &port in &ports {
        wait_for("a cluster node", || cli(port, &["PING"]).trim() == "PONG");
    }
    let nodes: Vec<String> = ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let created = Command::new("redis-cli")
        .args(["--cluster", "create"])
        .args(&nodes)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("running redis-cli --cluster create");
    assert!(
        created.status.success(),
        "redis-cli --cluster create failed: {}",
        String::from_utf8_lossy(&created.stdout)
    );
    for &port in &ports {
        wait_for("every slot to be served", || {
            let info = cli(port, &["CLUSTER", "INFO"]);
            info.contains("cluster_state:ok") && info.contains("cluster_known_nodes:3")
        });
    }
    ports
}

/// The cluster's node ports (starting it on first use).
pub fn ports() -> &'static [u16] {
    CLUSTER.get_or_init(start)
}

/// A connection to the cluster and a fresh key prefix (tests share the cluster, not keys).
pub async fn cluster() -> (RedisConnection, String) {
    let nodes: Vec<String> = ports()
        .iter()
        .map(|p| format!("redis://127.0.0.1:{p}"))
        .collect();
    let nodes: Vec<&str> = nodes.iter().map(String::as_str).collect();
    let conn = ticketing_redis::connect_cluster(&nodes)
        .await
        .expect("connecting to the test cluster");
    (
        conn,
        format!("ticketing:cluster:{}:", uuid::Uuid::new_v4().simple()),
    )
}

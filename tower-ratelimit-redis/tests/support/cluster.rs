//! A throwaway Redis Cluster for the tests: masters on free loopback ports, no
//! persistence, no replicas, in a temporary directory of their own; every server is
//! killed and the directory removed on drop, also when a test panics.
//!
//! The slots are assigned by `redis-cli --cluster create` (`$REDIS_CLI` names another
//! client, e.g. `valkey-cli`).

use super::{free_port, RedisServer};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// A running cluster of masters.
pub struct RedisCluster {
    nodes: Vec<RedisServer>,
    dir: PathBuf,
}

fn cli() -> String {
    std::env::var("REDIS_CLI").unwrap_or_else(|_| "redis-cli".to_owned())
}

impl RedisCluster {
    /// Starts `masters` servers in cluster mode, joins them into one cluster covering
    /// all 16 384 slots, and waits until every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> RedisCluster {
        let dir = std::env::temp_dir().join(format!(
            "tower-ratelimit-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("create the cluster's directory");
        // Built before the first server starts, so that a panic part-way through
        // still drops (kills) the servers already running.
        let mut cluster = RedisCluster {
            nodes: Vec::with_capacity(masters),
            dir,
        };
        for _ in 0..masters {
            let node = cluster.start_node();
            cluster.nodes.push(node);
        }
        cluster.create();
        cluster.wait_ok();
        cluster
    }

    fn start_node(&self) -> RedisServer {
        let mut last = String::new();
        // Another process may take a free port between the probe and the start.
        for _ in 0..5 {
            let port = free_port();
            let extra = [
                "--cluster-enabled".to_owned(),
                "yes".to_owned(),
                // The bus port is set explicitly (Redis 7): port + 10 000 may be taken.
                "--cluster-port".to_owned(),
                free_port().to_string(),
                "--cluster-config-file".to_owned(),
                format!("nodes-{port}.conf"),
                "--cluster-node-timeout".to_owned(),
                "5000".to_owned(),
            ];
            match RedisServer::start_in(port, &extra, &self.dir) {
                Ok(node) => return node,
                Err(e) => last = e,
            }
        }
        panic!("could not start a cluster node: {last}");
    }

    fn create(&self) {
        let mut command = Command::new(cli());
        command.arg("--cluster").arg("create");
        for node in &self.nodes {
            command.arg(format!("127.0.0.1:{}", node.port()));
        }
        command.args(["--cluster-replicas", "0", "--cluster-yes"]);
        let output = command.output().unwrap_or_else(|e| {
            panic!(
                "could not run {} ({e}): the cluster test needs redis-cli, which comes with \
                 the Debian package redis-tools (a dependency of redis-server)",
                cli()
            )
        });
        assert!(
            output.status.success(),
            "redis-cli --cluster create failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn wait_ok(&self) {
        let deadline = Instant::now() + Duration::from_secs(15);
        let masters = self.nodes.len().to_string();
        loop {
            let ready = self.nodes.iter().all(|node| {
                let info: String = node.cmd(&["CLUSTER", "INFO"]);
                let field = |name: &str| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(str::trim)
                        .unwrap_or("")
                        .to_owned()
                };
                field("cluster_state:") == "ok"
                    && field("cluster_known_nodes:") == masters
                    && field("cluster_slots_ok:") == "16384"
            });
            if ready {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the cluster did not reach cluster_state:ok within 15 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `redis://127.0.0.1:<port>/` of every node.
    pub fn urls(&self) -> Vec<String> {
        self.nodes.iter().map(RedisServer::url).collect()
    }

    /// The nodes, for direct commands (`DBSIZE`, `SCRIPT FLUSH`).
    pub fn nodes(&self) -> &[RedisServer] {
        &self.nodes
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        // The servers go first: they hold files in the directory.
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

//! A TCP proxy in front of a test server that can go silent: its open connections
//! stop forwarding (bytes are read and dropped, nothing is answered, the sockets stay
//! open), as a vanished host behind a middlebox looks to a client, while new
//! connections reach the backend it points at now (a failover).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The proxy; its tasks run on the test's runtime.
pub struct SilentProxy {
    addr: SocketAddr,
    backend: Arc<Mutex<SocketAddr>>,
    /// Bumped by `fail_over`: connections made before it forward nothing more.
    generation: Arc<AtomicU64>,
    /// How long a new connection waits before it reaches the backend, in ms.
    delay_ms: Arc<AtomicU64>,
}

fn lock(backend: &Mutex<SocketAddr>) -> SocketAddr {
    *backend.lock().unwrap_or_else(|p| p.into_inner())
}

/// Copies `from` to `to` while the proxy's generation is `born`; after that reads
/// and drops, keeping both sockets open.
async fn forward(
    mut from: impl AsyncReadExt + Unpin,
    mut to: impl AsyncWriteExt + Unpin,
    generation: Arc<AtomicU64>,
    born: u64,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if generation.load(Ordering::SeqCst) == born
                    && to.write_all(&buf[..n]).await.is_err()
                {
                    break;
                }
            }
        }
    }
    // Silent, not closed: the peer learns nothing.
    std::future::pending::<()>().await;
}

impl SilentProxy {
    /// A proxy on a free loopback port, forwarding to `backend`.
    pub async fn start(backend: SocketAddr) -> SilentProxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        let backend = Arc::new(Mutex::new(backend));
        let generation = Arc::new(AtomicU64::new(0));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let (to, now, delay) = (backend.clone(), generation.clone(), delay_ms.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let born = now.load(Ordering::SeqCst);
                let (to, now) = (lock(&to), now.clone());
                let delay = Duration::from_millis(delay.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let Ok(server) = TcpStream::connect(to).await else {
                        return;
                    };
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::spawn(forward(client_read, server_write, now.clone(), born));
                    tokio::spawn(forward(server_read, client_write, now, born));
                });
            }
        });
        SilentProxy {
            addr,
            backend,
            generation,
            delay_ms,
        }
    }

    /// `redis://<proxy>/`.
    pub fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    /// Every open connection goes silent; new ones reach `backend` after `delay`
    /// (a connection slower to make than a call's timeout).
    pub fn fail_over_slowly(&self, backend: SocketAddr, delay: Duration) {
        let ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        self.delay_ms.store(ms, Ordering::SeqCst);
        self.fail_over(backend);
    }

    /// Every open connection goes silent; new ones reach `backend`.
    pub fn fail_over(&self, backend: SocketAddr) {
        *self.backend.lock().unwrap_or_else(|p| p.into_inner()) = backend;
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

//! A TCP proxy on 127.0.0.1 that delays every chunk by half a round trip in each direction, so
//! that benchmarks see round trips as a real network shows them (there is no netem here).
//!
//! The connection set-up is modelled too: the kernel completes the TCP handshake at once, so the
//! proxy holds the client's first bytes until one full round trip after the accept has passed,
//! plus their own half. A client that writes at once after connecting therefore waits
//! 1.5 round trips for its first bytes to arrive, as on a real network. The one difference: a
//! connection opened and closed without a byte costs nothing here, where it costs a round trip in
//! life.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// A running proxy; stops (with its connections) when dropped.
pub struct LatencyProxy {
    pub addr: SocketAddr,
    /// Connections accepted so far.
    pub connections: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LatencyProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LatencyProxy {
    /// Listens on 127.0.0.1 (a free port) and forwards to `upstream` with `rtt` per round trip.
    pub async fn start(upstream: SocketAddr, rtt: Duration) -> std::io::Result<LatencyProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let connections = Arc::new(AtomicU64::new(0));
        let task = tokio::spawn(accept_loop(listener, upstream, rtt, connections.clone()));
        Ok(LatencyProxy {
            addr,
            connections,
            task,
        })
    }

    pub fn connections(&self) -> u64 {
        self.connections.load(Ordering::Relaxed)
    }
}

async fn accept_loop(
    listener: TcpListener,
    upstream: SocketAddr,
    rtt: Duration,
    connections: Arc<AtomicU64>,
) {
    // Dropping this set (when the loop is aborted) aborts every connection.
    let mut conns = JoinSet::new();
    loop {
        while conns.try_join_next().is_some() {}
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        connections.fetch_add(1, Ordering::Relaxed);
        let accepted = Instant::now();
        conns.spawn(async move {
            let Ok(server) = TcpStream::connect(upstream).await else {
                return;
            };
            let _ = client.set_nodelay(true);
            let _ = server.set_nodelay(true);
            let one_way = rtt / 2;
            let (cr, cw) = client.into_split();
            let (sr, sw) = server.into_split();
            tokio::join!(
                pipe(cr, sw, one_way, Some(accepted + rtt + one_way)),
                pipe(sr, cw, one_way, None),
            );
        });
    }
}

/// Copies `from` to `to`, each chunk delivered `delay` after it was read (in order, without the
/// delays adding up), the first not before `first_not_before`.
async fn pipe(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    mut first_not_before: Option<Instant>,
) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let mut at = Instant::now() + delay;
            if let Some(not_before) = first_not_before.take() {
                at = at.max(not_before);
            }
            if tx.send((at, buf[..n].to_vec())).is_err() {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, chunk)) = rx.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_request_and_its_reply_take_the_round_trips_of_a_real_network() {
        let echo = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let upstream = echo.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 16];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let rtt = Duration::from_millis(100);
        let proxy = LatencyProxy::start(upstream, rtt).await.expect("proxy");
        let started = std::time::Instant::now();
        let mut c = TcpStream::connect(proxy.addr).await.expect("connect");
        let mut buf = [0u8; 4];
        // connect (1 round trip) + the first exchange (1)
        c.write_all(b"ping").await.expect("write");
        c.read_exact(&mut buf).await.expect("read");
        let first = started.elapsed();
        assert_eq!(&buf, b"ping");
        assert!(
            first >= Duration::from_millis(200) && first < Duration::from_millis(600),
            "{first:?}"
        );
        // a later exchange: one round trip
        let t = std::time::Instant::now();
        c.write_all(b"pong").await.expect("write");
        c.read_exact(&mut buf).await.expect("read");
        let second = t.elapsed();
        assert!(
            second >= Duration::from_millis(100) && second < Duration::from_millis(500),
            "{second:?}"
        );
        assert_eq!(proxy.connections(), 1);
    }
}

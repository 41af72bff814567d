//! Serving HTTP/1.1 connections so that no client can hold the service: every connection
//! has a deadline for what it is doing now, and the number of connections is capped below
//! the process's file-descriptor limit.
//!
//! A connection is in one of four phases, each with its own deadline:
//!
//! | phase | deadline (from its start) |
//! | --- | --- |
//! | idle: keep-alive, waiting for a request | `idle_timeout` |
//! | header: newly accepted, or the first bytes of a request came; the header is not complete | `header_timeout` |
//! | body: the header came, the body is still arriving | the endpoint's body timeout |
//! | busy: the request is handled and its response written | `request_timeout` from the header |
//!
//! Past its deadline a connection is closed; a stalled writer or a reader that stopped
//! reading is dropped the same way. When all slots are taken, a new connection evicts the
//! oldest connection that is idle, still sending a header, or still sending a body (in that
//! order); busy connections are never evicted. One client (address) holds at most
//! `max_client_connections`. So a flood of slow or half-open connections cannot lock out a
//! probe or another client.

use super::client::ClientId;
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use http_body::Frame;
use hyper::body::Incoming;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};

/// How long each phase may last, and how many connections there may be.
#[derive(Clone)]
pub struct ConnLimits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    /// Body timeout of ordinary requests.
    pub body_timeout: Duration,
    /// Body timeout of requests `long_body` picks (uploads).
    pub long_body_timeout: Duration,
    pub long_body: fn(&http::request::Parts) -> bool,
    /// The whole exchange, from the complete header to the last byte of the response.
    pub request_timeout: Duration,
    pub max_connections: usize,
    pub max_client_connections: usize,
    /// Peers whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Arc<Vec<ipnet::IpNet>>,
}

impl std::fmt::Debug for ConnLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnLimits")
            .field("header_timeout", &self.header_timeout)
            .field("idle_timeout", &self.idle_timeout)
            .field("body_timeout", &self.body_timeout)
            .field("long_body_timeout", &self.long_body_timeout)
            .field("request_timeout", &self.request_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_client_connections", &self.max_client_connections)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

fn never(_: &http::request::Parts) -> bool {
    false
}

impl Default for ConnLimits {
    fn default() -> Self {
        let max = default_max_connections();
        ConnLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            long_body_timeout: Duration::from_secs(30),
            long_body: never,
            request_timeout: Duration::from_secs(120),
            max_connections: max,
            max_client_connections: (max / 4).max(16),
            trusted_proxies: Arc::new(Vec::new()),
        }
    }
}

/// Raises the soft file-descriptor limit to the hard one, and returns the connection cap
/// that leaves room below it for files, the object store and the Flight SQL port: three
/// quarters of the limit, at most 4096.
pub fn default_max_connections() -> usize {
    let limit = raise_fd_limit().unwrap_or(1024);
    ((limit.saturating_sub(64)) * 3 / 4).clamp(8, 4096) as usize
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the soft limit now in force.
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit/setrlimit read and write the struct we pass.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
                return None;
            }
            if r.rlim_cur < r.rlim_max {
                let want = libc::rlimit {
                    rlim_cur: r.rlim_max,
                    rlim_max: r.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                    r.rlim_cur = r.rlim_max;
                }
            }
        }
        #[allow(clippy::unnecessary_cast)] // rlim_t is not u64 everywhere
        Some(r.rlim_cur as u64)
    }
    #[cfg(not(unix))]
    None
}

const IDLE: u8 = 0;
const HEADER: u8 = 1;
const BODY: u8 = 2;
const BUSY: u8 = 3;

/// What one connection is doing, shared by its I/O, its requests and the registry.
#[derive(Debug)]
pub struct ConnState {
    id: u64,
    pub peer: SocketAddr,
    client: ClientId,
    phase: AtomicU8,
    /// When the current phase began, as milliseconds since `epoch`.
    since_ms: AtomicU64,
    /// The body deadline of the current request, ms since `epoch`.
    body_ms: AtomicU64,
    epoch: Instant,
    kill: tokio::sync::Notify,
}

impl ConnState {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
    fn set(&self, phase: u8) {
        self.since_ms.store(self.now_ms(), Ordering::Release);
        self.phase.store(phase, Ordering::Release);
    }
    fn phase(&self) -> u8 {
        self.phase.load(Ordering::Acquire)
    }
    fn since(&self) -> u64 {
        self.since_ms.load(Ordering::Acquire)
    }
    /// When the current phase must end.
    fn deadline(&self, l: &ConnLimits) -> Instant {
        let since = self.epoch + Duration::from_millis(self.since());
        match self.phase() {
            IDLE => since + l.idle_timeout,
            HEADER => since + l.header_timeout,
            // The body watcher reports the timeout as an error a little earlier, so the
            // handler can still answer; this closes connections whose handler does not read.
            BODY => {
                self.epoch
                    + Duration::from_millis(self.body_ms.load(Ordering::Acquire))
                    + Duration::from_secs(2)
            }
            _ => since + l.request_timeout,
        }
    }
}

/// The live connections, for the cap and eviction.
#[derive(Default)]
struct Registry {
    next: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<ConnState>>>,
}

impl Registry {
    fn count(&self) -> usize {
        self.conns.lock().map(|c| c.len()).unwrap_or(0)
    }
    fn of_client(&self, client: &ClientId) -> usize {
        self.conns
            .lock()
            .map(|c| c.values().filter(|s| &s.client == client).count())
            .unwrap_or(0)
    }
    /// Closes the connection that is the best to give up: idle, then sending a header, then
    /// sending a body; the oldest in its phase; of `client` only, when given.
    fn evict(&self, client: Option<&ClientId>) -> bool {
        let Ok(conns) = self.conns.lock() else {
            return false;
        };
        let rank = |p: u8| match p {
            IDLE => 0,
            HEADER => 1,
            BODY => 2,
            _ => 3,
        };
        let victim = conns
            .values()
            .filter(|s| s.phase() != BUSY && client.is_none_or(|c| &s.client == c))
            .min_by_key(|s| (rank(s.phase()), s.since()));
        match victim {
            Some(v) => {
                v.kill.notify_one();
                crate::telemetry::metrics().http_connections_evicted.inc();
                true
            }
            None => false,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then lets in-flight requests finish
/// for up to `grace`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let limits = Arc::new(limits);
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    let epoch = Instant::now();
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors (or another transient error): make room and
                    // go on accepting; never stop serving.
                    tracing::warn!(error = %e, "accept failed");
                    registry.evict(None);
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            },
        };
        while tasks.try_join_next().is_some() {}
        let client = ClientId::of_peer(peer.ip());
        if registry.of_client(&client) >= limits.max_client_connections
            && !registry.evict(Some(&client))
        {
            crate::telemetry::metrics().http_connections_refused.inc();
            drop(stream);
            continue;
        }
        if registry.count() >= limits.max_connections && !registry.evict(None) {
            crate::telemetry::metrics().http_connections_refused.inc();
            drop(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let state = Arc::new(ConnState {
            id: registry.next.fetch_add(1, Ordering::Relaxed),
            peer,
            client,
            // Waiting for its first request counts as sending a header: the header deadline
            // runs from the connect, and eviction takes it after every older half-sent
            // header. (As idle, a probe's new connection was the first to go when a flood
            // still waiting in the accept queue came in behind it.)
            phase: AtomicU8::new(HEADER),
            since_ms: AtomicU64::new(epoch.elapsed().as_millis() as u64),
            body_ms: AtomicU64::new(0),
            epoch,
            kill: tokio::sync::Notify::new(),
        });
        if let Ok(mut c) = registry.conns.lock() {
            c.insert(state.id, state.clone());
        }
        crate::telemetry::metrics().http_connections.inc();
        tasks.spawn(connection(
            stream,
            state,
            app.clone(),
            limits.clone(),
            registry.clone(),
            stop_rx.clone(),
        ));
    }
    let _ = stop_tx.send(true);
    drop(listener);
    let _ = tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
    Ok(())
}

async fn connection(
    stream: TcpStream,
    state: Arc<ConnState>,
    app: Router,
    limits: Arc<ConnLimits>,
    registry: Arc<Registry>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let io = Watched {
        io: stream,
        state: state.clone(),
        limits: limits.clone(),
        sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
        armed: None,
    };
    let svc_state = state.clone();
    let svc_limits = limits.clone();
    let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
        let state = svc_state.clone();
        let limits = svc_limits.clone();
        let mut app = app.clone();
        async move {
            let (mut parts, body) = req.into_parts();
            let has_body = !hyper::body::Body::is_end_stream(&body);
            let body_timeout = if (limits.long_body)(&parts) {
                limits.long_body_timeout
            } else {
                limits.body_timeout
            };
            let guard = RequestGuard(state.clone());
            if has_body {
                let at = state.now_ms() + body_timeout.as_millis() as u64;
                state.body_ms.store(at, Ordering::Release);
                state.set(BODY);
            } else {
                state.set(BUSY);
            }
            parts.extensions.insert(ConnectInfo(state.peer));
            parts.extensions.insert(state.clone());
            let body = Body::new(BodyWatch {
                inner: body,
                state: state.clone(),
                timeout: body_timeout,
                deadline: Box::pin(tokio::time::sleep(body_timeout)),
                done: !has_body,
            });
            let req = http::Request::from_parts(parts, body);
            let resp = match tower_service::Service::call(&mut app, req).await {
                Ok(r) => r,
                Err(never) => match never {},
            };
            Ok::<_, std::convert::Infallible>(resp.map(|b| TrackedBody {
                inner: b,
                guard: Some(guard),
            }))
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        .max_buf_size(64 << 10)
        .max_headers(100);
    let conn = builder.serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let stopping = tokio::select! {
        _ = conn.as_mut() => false,
        _ = state.kill.notified() => false,
        r = stop.wait_for(|v| *v) => r.is_ok(),
    };
    if stopping {
        conn.as_mut().graceful_shutdown();
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = state.kill.notified() => {}
        }
    }
    if let Ok(mut c) = registry.conns.lock() {
        c.remove(&state.id);
    }
    crate::telemetry::metrics().http_connections.dec();
}

/// Marks the end of a request when its response is done (or dropped).
struct RequestGuard(Arc<ConnState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.set(IDLE);
    }
}

/// The response body, ending the request's busy phase when it has been sent.
struct TrackedBody {
    inner: Body,
    guard: Option<RequestGuard>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(None) = r {
            self.guard.take();
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Why a request body was cut off.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {0:?}")]
pub struct BodyTimeout(pub Duration);

/// The request body: ends the body phase when it is complete, and fails when it takes longer
/// than the endpoint's body timeout.
struct BodyWatch {
    inner: Incoming,
    state: Arc<ConnState>,
    timeout: Duration,
    deadline: Pin<Box<Sleep>>,
    done: bool,
}

impl http_body::Body for BodyWatch {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(None) => {
                this.done = true;
                this.state.set(BUSY);
                Poll::Ready(None)
            }
            Poll::Ready(Some(Ok(f))) => {
                if this.inner.is_end_stream() {
                    this.done = true;
                    this.state.set(BUSY);
                }
                Poll::Ready(Some(Ok(f)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Pending => match this.deadline.as_mut().poll(cx) {
                Poll::Ready(()) => {
                    this.done = true;
                    Poll::Ready(Some(Err(Box::new(BodyTimeout(this.timeout)))))
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }
    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }
    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// The socket, failing reads and writes once the connection's phase is past its deadline.
struct Watched {
    io: TcpStream,
    state: Arc<ConnState>,
    limits: Arc<ConnLimits>,
    sleep: Pin<Box<Sleep>>,
    armed: Option<Instant>,
}

impl Watched {
    /// Err when the phase's deadline has passed; otherwise arms the timer to wake the task
    /// at that deadline.
    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        let deadline = self.state.deadline(&self.limits);
        if Instant::now() >= deadline {
            crate::telemetry::metrics().http_connections_timed_out.inc();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection deadline passed",
            ));
        }
        if self.armed != Some(deadline) {
            self.sleep.as_mut().reset(deadline);
            self.armed = Some(deadline);
        }
        let _ = self.sleep.as_mut().poll(cx);
        Ok(())
    }
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            // The first bytes of a request after an idle spell start its header phase.
            if this.state.phase() == IDLE {
                this.state.set(HEADER);
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Accepted connections for a server that runs its own protocol on them (Flight SQL's
/// HTTP/2): at most `max` at once (more are closed at once), each failing its reads and
/// writes when the client sent nothing within `first_bytes`, or when nothing moved either way
/// for `idle`. Accept errors (out of descriptors) pause accepting briefly; they never end it.
pub fn capped_incoming(
    listener: TcpListener,
    max: usize,
    first_bytes: Duration,
    idle: Duration,
) -> impl futures::Stream<Item = std::io::Result<IdleIo>> + Send + 'static {
    let permits = Arc::new(tokio::sync::Semaphore::new(max));
    futures::stream::unfold((listener, permits), move |(l, p)| async move {
        loop {
            match l.accept().await {
                Ok((s, _)) => {
                    let Ok(permit) = p.clone().try_acquire_owned() else {
                        crate::telemetry::metrics().http_connections_refused.inc();
                        drop(s);
                        continue;
                    };
                    // Without it every Flight SQL call waits ~40 ms: Nagle's algorithm holding
                    // the last small HTTP/2 frame until the client's delayed ACK (the
                    // flight test compares round trips with HTTP's).
                    let _ = s.set_nodelay(true);
                    let io = IdleIo {
                        io: s,
                        _permit: permit,
                        idle,
                        deadline: Instant::now() + first_bytes,
                        sleep: Box::pin(tokio::time::sleep(first_bytes)),
                    };
                    return Some((Ok(io), (l, p)));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    })
}

/// A connection closed when nothing moves on it for too long (see [`capped_incoming`]).
pub struct IdleIo {
    io: TcpStream,
    _permit: tokio::sync::OwnedSemaphorePermit,
    idle: Duration,
    deadline: Instant,
    sleep: Pin<Box<Sleep>>,
}

impl IdleIo {
    fn check(&mut self, cx: &mut Context<'_>) -> std::io::Result<()> {
        if Instant::now() >= self.deadline {
            crate::telemetry::metrics().http_connections_timed_out.inc();
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "connection idle too long",
            ));
        }
        if self.sleep.deadline() != self.deadline {
            self.sleep.as_mut().reset(self.deadline);
        }
        let _ = self.sleep.as_mut().poll(cx);
        Ok(())
    }
    fn moved(&mut self) {
        self.deadline = Instant::now() + self.idle;
    }
}

impl AsyncRead for IdleIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut this.io).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.moved();
        }
        r
    }
}

impl AsyncWrite for IdleIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = &mut *self;
        if let Err(e) = this.check(cx) {
            return Poll::Ready(Err(e));
        }
        let r = Pin::new(&mut this.io).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            this.moved();
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl tonic::transport::server::Connected for IdleIo {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.io.local_addr().ok(),
            remote_addr: self.io.peer_addr().ok(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// All slots held by half-sent headers; a client connects, and before it has sent its
    /// request one more half-open connection arrives. The newcomer must evict the oldest
    /// half-sent header, not the client that has only just connected.
    #[tokio::test]
    async fn a_new_connection_outlives_older_half_sent_headers() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let limits = ConnLimits {
            max_connections: 4,
            max_client_connections: 100,
            ..ConnLimits::default()
        };
        let app = Router::new().route("/livez", axum::routing::get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve(
            listener,
            app,
            limits,
            async {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        let settle = || tokio::time::sleep(Duration::from_millis(100));
        let mut flood = Vec::new();
        for _ in 0..3 {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /livez HTTP/1.1\r\nX-Slow: ")
                .await
                .unwrap();
            flood.push(s);
            settle().await;
        }
        let mut probe = TcpStream::connect(addr).await.unwrap();
        settle().await;
        let mut late = TcpStream::connect(addr).await.unwrap();
        late.write_all(b"GET /livez HTTP/1.1\r\nX-Slow: ")
            .await
            .unwrap();
        settle().await;
        probe
            .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = String::new();
        probe.read_to_string(&mut answer).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        // The oldest half-sent header made room.
        let mut buf = [0u8; 16];
        let n = tokio::time::timeout(Duration::from_secs(2), flood[0].read(&mut buf))
            .await
            .expect("the oldest half-open connection was closed");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
        drop((flood, late));
        let _ = stop.send(());
        server.await.unwrap().unwrap();
    }
}

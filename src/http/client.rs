//! Who a request comes from, and where the client believes it sent it.
//!
//! - [`ClientId`]: the client's address — the peer, or, when the peer is a trusted proxy
//!   (`--trusted-proxy`), the nearest untrusted address in `X-Forwarded-For`. IPv6 clients
//!   are grouped by their /64 (one host usually owns a whole /64). Per-client caps key on it.
//! - [`base_url`]: `scheme://host[:port]` for absolute links in documents and `Location`
//!   headers; `X-Forwarded-Proto`/`-Host` only from trusted proxies, and every host checked
//!   to be a plain host name or address, so nothing a client sends is echoed unvalidated.
//! - [`Slots`]: at most N things at once per client (queries, uploads);
//!   [`RateLimiter`]: at most N per minute per client (submissions).

use axum::http::HeaderMap;
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// A client, as far as per-client caps are concerned.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ClientId(String);

impl ClientId {
    /// The client at this address (IPv6 by its /64).
    pub fn of_peer(ip: IpAddr) -> Self {
        match ip {
            IpAddr::V4(v4) => ClientId(v4.to_string()),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => ClientId(v4.to_string()),
                None => {
                    let s = v6.segments();
                    ClientId(format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3]))
                }
            },
        }
    }

    /// The client behind a request from `peer`.
    pub fn of_request(peer: SocketAddr, headers: &HeaderMap, trusted: &[IpNet]) -> Self {
        Self::of_peer(client_ip(peer.ip(), headers, trusted))
    }

    /// An identity stored earlier (an async job's owner), for its per-client slots.
    pub fn from_stored(s: String) -> Self {
        ClientId(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn is_trusted(ip: IpAddr, trusted: &[IpNet]) -> bool {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    };
    trusted.iter().any(|n| n.contains(&ip))
}

/// The client's address: the peer, unless it is a trusted proxy; then the right-most
/// address of `X-Forwarded-For` that is not itself a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let hops: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse::<IpAddr>().ok())
        .collect();
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(*ip, trusted))
        .unwrap_or(peer)
}

/// Whether `host` is a host name, IPv4 address or bracketed IPv6 address, with an optional
/// port — nothing that could break out of a URL, a header or an XML attribute.
pub fn valid_host(host: &str) -> bool {
    if host.is_empty() || host.len() > 255 {
        return false;
    }
    let (name, port) = if let Some(rest) = host.strip_prefix('[') {
        let Some((addr, after)) = rest.split_once(']') else {
            return false;
        };
        if addr.parse::<std::net::Ipv6Addr>().is_err() {
            return false;
        }
        match after {
            "" => return true,
            p => ("x", p.strip_prefix(':').unwrap_or("x")),
        }
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, p),
            None => (host, "0"),
        }
    };
    let port_ok = port.len() <= 5 && port.parse::<u16>().is_ok();
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !name.starts_with(['-', '.']);
    port_ok && name_ok
}

/// `scheme://host[:port]` as the client addressed this service, for absolute links.
/// Forwarded headers count only from trusted proxies; an invalid host falls back to the
/// address the request arrived on.
pub fn base_url(
    peer: Option<SocketAddr>,
    headers: &HeaderMap,
    trusted: &[IpNet],
    local: Option<SocketAddr>,
) -> String {
    let get = |h: &str| headers.get(h).and_then(|v| v.to_str().ok()).map(str::trim);
    let via_proxy = peer.is_some_and(|p| is_trusted(p.ip(), trusted));
    let proto = match get("x-forwarded-proto") {
        Some(p) if via_proxy && (p.eq_ignore_ascii_case("https")) => "https",
        _ => "http",
    };
    let forwarded = if via_proxy {
        get("x-forwarded-host").map(|h| h.split(',').next().unwrap_or("").trim())
    } else {
        None
    };
    let host = forwarded
        .filter(|h| valid_host(h))
        .or_else(|| get(http::header::HOST.as_str()).filter(|h| valid_host(h)))
        .map(str::to_string)
        .or_else(|| local.map(|a| a.to_string()))
        .unwrap_or_else(|| "localhost".to_string());
    format!("{proto}://{host}")
}

/// At most `per_client` at once per client.
#[derive(Debug)]
pub struct Slots {
    per_client: usize,
    held: Mutex<HashMap<ClientId, Arc<tokio::sync::Semaphore>>>,
}

/// A held slot, released when dropped.
#[derive(Debug)]
pub struct Slot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl Slots {
    pub fn new(per_client: usize) -> Self {
        Slots {
            per_client: per_client.max(1),
            held: Mutex::new(HashMap::new()),
        }
    }

    pub fn per_client(&self) -> usize {
        self.per_client
    }

    fn semaphore(&self, client: &ClientId) -> Arc<tokio::sync::Semaphore> {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.len() > 4096 {
            // Forget clients that hold nothing.
            let n = self.per_client;
            held.retain(|_, s| s.available_permits() < n);
        }
        held.entry(client.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_client)))
            .clone()
    }

    /// A slot now, or None when the client holds all of its own.
    pub fn try_acquire(&self, client: &ClientId) -> Option<Slot> {
        self.semaphore(client).try_acquire_owned().ok().map(Slot)
    }

    /// A slot, waiting for one of the client's own to be released.
    pub async fn acquire(&self, client: &ClientId) -> Slot {
        let s = self.semaphore(client);
        // The semaphore is never closed.
        Slot(s.acquire_owned().await.expect("slots are never closed"))
    }
}

/// At most `per_minute` events per minute per client (bursts of up to `per_minute`).
#[derive(Debug)]
pub struct RateLimiter {
    per_minute: f64,
    buckets: Mutex<HashMap<ClientId, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(per_minute: u32) -> Self {
        RateLimiter {
            per_minute: per_minute.max(1) as f64,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one event for `client`; Err with the seconds until the next is allowed.
    pub fn take(&self, client: &ClientId) -> Result<(), u64> {
        let now = Instant::now();
        let rate = self.per_minute / 60.0;
        let mut b = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if b.len() > 4096 {
            let full = self.per_minute;
            b.retain(|_, (tokens, at)| *tokens + at.elapsed().as_secs_f64() * rate < full);
        }
        let (tokens, at) = b.entry(client.clone()).or_insert((self.per_minute, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * rate).min(self.per_minute);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - *tokens) / rate).ceil() as u64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            "6.6.6.6, 1.2.3.4, 10.0.0.7".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let direct: IpAddr = "9.9.9.9".parse().unwrap();
        assert_eq!(
            client_ip(proxy, &h, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(client_ip(direct, &h, &trusted), direct);
        let a = ClientId::of_peer("2001:db8:1:2::5".parse().unwrap());
        let b = ClientId::of_peer("2001:db8:1:2:ffff::9".parse().unwrap());
        assert_eq!(a, b);
    }

    #[test]
    fn hosts_are_validated_before_they_are_echoed() {
        for ok in [
            "example.org",
            "example.org:8080",
            "127.0.0.1:1",
            "[::1]:80",
            "[::1]",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "",
            "a\"b",
            "x><y",
            "host:99999",
            "evil.org/path",
            "a b",
            "[::1]x",
            "-x",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
        let mut h = HeaderMap::new();
        h.insert("host", "ok.example:80".parse().unwrap());
        h.insert("x-forwarded-host", "\"><x".parse().unwrap());
        h.insert("x-forwarded-proto", "https".parse().unwrap());
        let peer: SocketAddr = "127.0.0.1:5".parse().unwrap();
        // Untrusted peer: forwarded headers ignored.
        assert_eq!(base_url(Some(peer), &h, &[], None), "http://ok.example:80");
        // Trusted peer, invalid forwarded host: the Host header is used.
        let t: Vec<IpNet> = vec!["127.0.0.0/8".parse().unwrap()];
        assert_eq!(base_url(Some(peer), &h, &t, None), "https://ok.example:80");
    }

    #[test]
    fn slots_and_rates_are_per_client() {
        let s = Slots::new(2);
        let a = ClientId::of_peer("1.1.1.1".parse().unwrap());
        let b = ClientId::of_peer("2.2.2.2".parse().unwrap());
        let h1 = s.try_acquire(&a).unwrap();
        let _h2 = s.try_acquire(&a).unwrap();
        assert!(s.try_acquire(&a).is_none());
        assert!(s.try_acquire(&b).is_some());
        drop(h1);
        assert!(s.try_acquire(&a).is_some());
        let r = RateLimiter::new(2);
        assert!(r.take(&a).is_ok());
        assert!(r.take(&a).is_ok());
        assert!(r.take(&a).is_err());
        assert!(r.take(&b).is_ok());
    }
}

//! Who is calling, by address: the socket's peer, or — only when that peer
//! is a proxy `TRUSTED_PROXIES` names — the nearest untrusted address in
//! `X-Forwarded-For`. A client cannot make itself look like another by
//! sending the header itself.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::Cidr;

/// The caller's address for rate limits.
pub fn resolve(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[Cidr]) -> Option<IpAddr> {
    let peer = peer?.ip();
    let is_trusted = |ip: IpAddr| trusted.iter().any(|c| c.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    // Right to left: each hop appends the address it saw.
    forwarded
        .iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(*ip))
        .or_else(|| forwarded.first().copied())
        .or(Some(peer))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", xff.parse().unwrap());
        h
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let proxy: SocketAddr = "10.0.0.5:4000".parse().unwrap();
        let trusted = [Cidr::parse("10.0.0.0/8").unwrap()];
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        // Not behind a trusted proxy: the header is ignored.
        assert_eq!(
            resolve(Some(proxy), &headers("1.2.3.4"), &[]),
            ip("10.0.0.5")
        );
        // Behind one: the nearest address it did not add itself.
        assert_eq!(
            resolve(
                Some(proxy),
                &headers("6.6.6.6, 1.2.3.4, 10.0.0.9"),
                &trusted
            ),
            ip("1.2.3.4")
        );
        assert_eq!(
            resolve(Some(proxy), &HeaderMap::new(), &trusted),
            ip("10.0.0.5")
        );
        assert_eq!(resolve(None, &HeaderMap::new(), &trusted), None);
    }
}

//! The address of the TCP peer, as the server framework recorded it in the request's
//! extensions.
//!
//! axum records it as `ConnectInfo<SocketAddr>` when the app is served with
//! `into_make_service_with_connect_info::<SocketAddr>()` (feature `axum`); tonic's
//! transport records `TcpConnectInfo` (feature `tonic`). See [`peer_addr`] for tonic over TLS. With plain hyper, where the
//! accept loop knows the address, insert a [`PeerAddr`] yourself:
//!
//! ```
//! use std::net::SocketAddr;
//! use tower_ratelimit_http::server::key::{peer_addr, PeerAddr};
//!
//! let addr: SocketAddr = "192.0.2.7:40000".parse()?;
//! let mut request = http::Request::new(());
//! request.extensions_mut().insert(PeerAddr(addr));
//! assert_eq!(peer_addr(request.extensions()), Some(addr));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use http::Extensions;
use std::net::SocketAddr;

/// The peer address of a connection, placed in request extensions by the code that
/// accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// The peer address recorded in `extensions`: a [`PeerAddr`], a bare [`SocketAddr`],
/// axum's `ConnectInfo<SocketAddr>` (feature `axum`) or tonic's `TcpConnectInfo`
/// (feature `tonic`), in that order.
///
/// Over TLS, tonic records `TlsConnectInfo<TcpConnectInfo>` instead, a type of tonic's
/// TLS features that this crate does not read (it would build a TLS stack into every
/// user's program): put a `tower::util::MapRequestLayer` in front of the rate-limit
/// layer that copies `info.get_ref().remote_addr()` into a [`PeerAddr`].
pub fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    if let Some(addr) = extensions.get::<SocketAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    #[cfg(feature = "tonic")]
    if let Some(info) = extensions.get::<tonic::transport::server::TcpConnectInfo>() {
        if let Some(addr) = info.remote_addr() {
            return Some(addr);
        }
    }
    None
}

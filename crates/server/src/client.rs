//! The client's address of a request: the peer's, or behind a trusted reverse proxy the one its
//! `X-Forwarded-For` names ([`consentry_service::auth::proxies`]). [`resolve`] runs first on every request
//! and leaves a [`ClientAddr`] for the failed-authentication limit and the verification limits.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::Extensions;
use axum::middleware::Next;
use axum::response::Response;
use consentry_service::auth::proxies::TrustedProxies;

/// The address of the client a request came from, as far as this node can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client's address of a request whose extensions these are; none for a request without a peer
    /// (a handler test without a socket).
    pub fn of(extensions: &Extensions) -> Option<IpAddr> {
        extensions.get::<ClientAddr>().map(|c| c.0)
    }
}

/// Adds the request's [`ClientAddr`], from its peer address and the trusted proxies' `X-Forwarded-For`.
pub async fn resolve(
    State(proxies): State<Arc<TrustedProxies>>,
    mut request: Request,
    next: Next,
) -> Response {
    if let Some(ConnectInfo(peer)) = request.extensions().get::<ConnectInfo<SocketAddr>>().copied() {
        let hops = request.headers().get_all("x-forwarded-for").iter().map(|v| v.as_bytes());
        let client = proxies.client(peer.ip(), hops);
        request.extensions_mut().insert(ClientAddr(client));
    }
    next.run(request).await
}

//! The Prometheus registry and the warp filter that serves it at `/metrics`.
//!
//! Names follow `<service>_<what>_<unit>`, counters end in `_total`, labels are bounded.

use std::convert::Infallible;
use std::net::SocketAddr;

use prometheus::{Encoder, Registry, TextEncoder};
use tokio_util::sync::CancellationToken;
use warp::Filter;

/// Render a registry in the Prometheus text format.
pub fn render(registry: &Registry) -> String {
    let mut buf = Vec::new();
    let encoder = TextEncoder::new();
    if let Err(error) = encoder.encode(&registry.gather(), &mut buf) {
        tracing::warn!(%error, "Cannot encode metrics");
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// `GET /metrics` serving `registry`.
pub fn filter(
    registry: Registry,
) -> impl Filter<Extract = (impl warp::Reply,), Error = warp::Rejection> + Clone {
    warp::path("metrics")
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::any().map(move || registry.clone()))
        .and_then(|registry: Registry| async move {
            Ok::<_, Infallible>(warp::reply::with_header(
                render(&registry),
                "content-type",
                "text/plain; version=0.0.4",
            ))
        })
}

/// Serve `/metrics` on `addr` until `shutdown`; returns the bound address (port 0 → a free one).
pub fn serve(
    registry: Registry,
    addr: SocketAddr,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), warp::Error> {
    let (bound, server) = warp::serve(filter(registry))
        .try_bind_with_graceful_shutdown(addr, async move { shutdown.cancelled().await })?;
    Ok((bound, tokio::spawn(server)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn metrics_are_served_in_the_prometheus_text_format() {
        let registry = Registry::new();
        let counter = prometheus::IntCounter::new("test_messages_total", "Messages seen.").unwrap();
        registry.register(Box::new(counter.clone())).unwrap();
        counter.inc_by(3);
        let reply = warp::test::request()
            .path("/metrics")
            .reply(&filter(registry))
            .await;
        assert_eq!(reply.status(), 200);
        let body = String::from_utf8(reply.body().to_vec()).unwrap();
        assert!(body.contains("test_messages_total 3"));
    }
}

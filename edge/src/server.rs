//! The HTTP server: connection limits, header and request timeouts, and the keyless
//! `/metrics` listener for Prometheus.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::routes;
use crate::state::{ms, Edge, EdgeError};

/// The address of a request's connection, as the server records it.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Serve the API until `shutdown`; returns the bound address (port 0 → a free one). A
/// connection must send a request's headers within `header_timeout_ms` and have its request
/// answered within `request_timeout_ms` (408, then closed); at most `max_connections` are
/// served at once (503, then closed).
pub fn serve(
    edge: Arc<Edge>,
    addr: &str,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), EdgeError> {
    use warp::hyper::server::conn::AddrStream;
    use warp::hyper::service::{make_service_fn, service_fn, Service};
    use warp::hyper::{Body, Response, StatusCode};

    let parsed: SocketAddr = addr.parse().map_err(|_| EdgeError::Address(addr.into()))?;
    let settings = edge.settings.clone();
    if !settings.metrics_bind.is_empty() {
        let metrics_addr: SocketAddr = settings
            .metrics_bind
            .parse()
            .map_err(|_| EdgeError::Address(settings.metrics_bind.clone()))?;
        let (bound, _) =
            runtime::metrics::serve(edge.registry.clone(), metrics_addr, shutdown.clone())
                .map_err(|e| EdgeError::Bind {
                    address: settings.metrics_bind.clone(),
                    source: Box::new(e),
                })?;
        tracing::info!(%bound, "Serving /metrics for Prometheus");
    }
    let request_timeout = ms(settings.request_timeout_ms);
    let permits = Arc::new(tokio::sync::Semaphore::new(settings.max_connections.max(1)));
    let svc = warp::service(routes::routes(edge));
    // The API's error shape, with the connection closed after it.
    let refuse = |status: StatusCode, code: &str, message: &str| {
        let body =
            serde_json::json!({"error": code, "message": message, "details": null}).to_string();
        let mut r = Response::new(Body::from(body));
        *r.status_mut() = status;
        r.headers_mut()
            .insert("connection", warp::http::HeaderValue::from_static("close"));
        r.headers_mut().insert(
            "content-type",
            warp::http::HeaderValue::from_static("application/json"),
        );
        r
    };
    let make = make_service_fn(move |conn: &AddrStream| {
        let client = ClientAddr(conn.remote_addr());
        let svc = svc.clone();
        // Held by the connection's service: released when the connection closes.
        let permit = Arc::clone(&permits).try_acquire_owned().ok().map(Arc::new);
        async move {
            Ok::<_, std::convert::Infallible>(service_fn(move |mut req| {
                let mut svc = svc.clone();
                let permit = permit.clone();
                async move {
                    if permit.is_none() {
                        return Ok::<_, std::convert::Infallible>(refuse(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "unavailable",
                            "too many connections; retry",
                        ));
                    }
                    req.extensions_mut().insert(client);
                    match tokio::time::timeout(request_timeout, svc.call(req)).await {
                        Ok(Ok(r)) => Ok(r),
                        Ok(Err(never)) => match never {},
                        Err(_) => Ok(refuse(
                            StatusCode::REQUEST_TIMEOUT,
                            "request_timeout",
                            "the request was not complete in time",
                        )),
                    }
                }
            }))
        }
    });
    let server = warp::hyper::Server::try_bind(&parsed)
        .map_err(|e| EdgeError::Bind {
            address: addr.into(),
            source: Box::new(e),
        })?
        .http1_header_read_timeout(ms(settings.header_timeout_ms))
        .serve(make);
    let bound = server.local_addr();
    let server = server.with_graceful_shutdown(async move { shutdown.cancelled().await });
    Ok((
        bound,
        tokio::spawn(async move {
            if let Err(error) = server.await {
                tracing::warn!(%error, "The HTTP server stopped");
            }
        }),
    ))
}

//! The edge under abuse from the outside: floods of unknown keys are throttled before they
//! reach the database, slow clients are disconnected, invented methods make no new metric
//! series, and every response carries the security headers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

mod common;

use common::spawn_edge;
use edge::EdgeSettings;
use sqlx::PgPool;

/// Transactions committed or rolled back in the test's database so far (every backend of the
/// edge's pool must have reported: the pool is closed first).
async fn transactions(pool: &PgPool) -> i64 {
    sqlx::query("SELECT pg_stat_clear_snapshot()")
        .execute(pool)
        .await
        .unwrap();
    sqlx::query_scalar(
        "SELECT (xact_commit + xact_rollback)::int8 FROM pg_stat_database \
         WHERE datname = current_database()",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_unknown_keys_from_one_address_are_throttled_before_the_database() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let routes = edge::routes::routes(h.edge.clone());
    let from: SocketAddr = "203.0.113.7:40000".parse().unwrap();
    let get = |key: String| {
        let routes = routes.clone();
        async move {
            warp::test::request()
                .method("GET")
                .path("/api/portfolio/trend")
                .header("x-api-key", key)
                .remote_addr(from)
                .reply(&routes)
                .await
                .status()
                .as_u16()
        }
    };
    // The valid key is known before the flood (an answer other than 401 or 429).
    let ok = get(h.analyst.clone()).await;
    assert!(ok != 401 && ok != 429, "{ok}");
    let before = transactions(&h.owner).await;
    let (mut unauthorized, mut throttled) = (0, 0);
    for n in 0..10_000u32 {
        match get(format!("cr_k{n:05}_{:032x}", u128::from(n) * 7919)).await {
            401 => unauthorized += 1,
            429 => throttled += 1,
            other => panic!("an unknown key got {other}"),
        }
        if n % 2_000 == 0 {
            // Valid keys keep working from the same address during the flood.
            let s = get(h.analyst.clone()).await;
            assert!(s != 401 && s != 429, "the valid key got {s}");
        }
    }
    assert_eq!(unauthorized + throttled, 10_000);
    assert!(
        throttled > 9_000,
        "{throttled} throttled, {unauthorized} looked up"
    );
    // Every backend of the edge's pool reports its transactions when it exits.
    h.edge.pool.close().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = transactions(&h.owner).await;
    assert!(
        after - before < 1_000,
        "{} transactions for 10,000 unknown keys",
        after - before
    );
}

/// Whether the server closed `s` (reads end or fail) within `within`, while `each` is written
/// every 200 ms.
fn closed_while_dripping(s: &mut TcpStream, each: &[u8], within: Duration) -> (bool, String) {
    s.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let started = Instant::now();
    let mut got = Vec::new();
    while started.elapsed() < within {
        if s.write_all(each).is_err() {
            return (true, String::from_utf8_lossy(&got).into());
        }
        let mut buf = [0u8; 4096];
        match s.read(&mut buf) {
            Ok(0) => return (true, String::from_utf8_lossy(&got).into()),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return (true, String::from_utf8_lossy(&got).into()),
        }
    }
    (false, String::from_utf8_lossy(&got).into())
}

fn health(addr: SocketAddr) -> String {
    get(addr, "/health")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_header_and_slow_body_connections_are_closed_while_others_are_served() {
    let settings = EdgeSettings {
        header_timeout_ms: 1_000,
        request_timeout_ms: 2_000,
        ..EdgeSettings::default()
    };
    let h = spawn_edge(settings).await;
    let (addr, _task) = edge::serve(h.edge.clone(), "127.0.0.1:0", h.shutdown.clone()).unwrap();
    let key = h.analyst.clone();
    let slow_header = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /health HTTP/1.1\r\nhost: edge\r\n")
            .unwrap();
        closed_while_dripping(&mut s, b"x-drip: 1\r\n", Duration::from_secs(8))
    });
    let slow_body = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        let head = format!(
            "POST /api/portfolio/stress-test HTTP/1.1\r\nhost: edge\r\nx-api-key: {key}\r\n\
             content-type: application/json\r\ncontent-length: 1000\r\n\r\n{{"
        );
        s.write_all(head.as_bytes()).unwrap();
        closed_while_dripping(&mut s, b" ", Duration::from_secs(8))
    });
    // Others are served meanwhile.
    for _ in 0..5 {
        let answer = tokio::task::spawn_blocking(move || health(addr))
            .await
            .unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (closed, _) = slow_header.await.unwrap();
    assert!(
        closed,
        "a connection sending one header line at a time stayed open"
    );
    let (closed, answer) = slow_body.await.unwrap();
    assert!(
        closed,
        "a connection sending its body a byte at a time stayed open"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"error\":\"request_timeout\""), "{answer}");
    let answer = tokio::task::spawn_blocking(move || health(addr))
        .await
        .unwrap();
    // Security headers on every response.
    for header in [
        "x-content-type-options: nosniff",
        "referrer-policy: no-referrer",
        "cache-control: no-store",
    ] {
        assert!(answer.to_lowercase().contains(header), "{header}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_http_methods_make_no_new_metric_series() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let routes = edge::routes::routes(h.edge.clone());
    for n in 0..15 {
        let method = format!("INVENTED{n}{}", "X".repeat(n * 200));
        let _ = warp::test::request()
            .method(&method)
            .path("/health")
            .reply(&routes)
            .await;
    }
    let families = h.edge.registry.gather();
    let requests = families
        .iter()
        .find(|f| f.name() == "edge_http_requests_total")
        .expect("edge_http_requests_total");
    let methods: std::collections::BTreeSet<String> = requests
        .get_metric()
        .iter()
        .flat_map(|m| m.get_label())
        .filter(|l| l.name() == "method")
        .map(|l| l.value().to_string())
        .collect();
    assert_eq!(
        methods,
        ["other".to_string()].into_iter().collect(),
        "{methods:?}"
    );
}

/// The answer to `GET path` on `addr` (status line, headers and body).
fn get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nhost: edge\r\nconnection: close\r\n\r\n").as_bytes(),
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_its_own_listener_and_the_public_port_shows_no_figures_without_a_key() {
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics_addr = free.local_addr().unwrap();
    drop(free);
    let h = spawn_edge(EdgeSettings {
        metrics_bind: metrics_addr.to_string(),
        ..EdgeSettings::default()
    })
    .await;
    let (addr, _task) = edge::serve(h.edge.clone(), "127.0.0.1:0", h.shutdown.clone()).unwrap();
    // Something to count.
    let _ = tokio::task::spawn_blocking(move || health(addr)).await;
    let public = tokio::task::spawn_blocking(move || get(addr, "/metrics"))
        .await
        .unwrap();
    assert!(public.starts_with("HTTP/1.1 401"), "{public}");
    assert!(!public.contains("edge_http_requests_total"));
    let scraped = tokio::task::spawn_blocking(move || get(metrics_addr, "/metrics"))
        .await
        .unwrap();
    assert!(scraped.starts_with("HTTP/1.1 200"), "{scraped}");
    assert!(scraped.contains("edge_http_requests_total"), "{scraped}");
    // That listener serves nothing else.
    let api = tokio::task::spawn_blocking(move || get(metrics_addr, "/api/portfolio/summary"))
        .await
        .unwrap();
    assert!(api.starts_with("HTTP/1.1 404"), "{api}");
}

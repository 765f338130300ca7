//! `aggregate --http C`: the portfolio summary through the HTTP edge (key check, rate
//! limiter, query, JSON) under C concurrent connections, measured with wrk, beside a plain warp
//! route on the same machine.

use std::process::Command;
use std::time::Duration;

use anyhow::Context;
use serde_json::json;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use warp::Filter;

use crate::settings::Settings;
use crate::sys::proc_status_mb;

/// wrk's figures: requests per second and latency percentiles (ms).
fn parse_wrk(out: &str) -> anyhow::Result<serde_json::Value> {
    let ms = |v: &str| -> Option<f64> {
        let (n, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
        let n: f64 = n.parse().ok()?;
        Some(match unit {
            "us" => n / 1e3,
            "ms" => n,
            "s" => n * 1e3,
            _ => return None,
        })
    };
    let pct = |p: &str| {
        out.lines()
            .map(str::trim)
            .find(|l| l.starts_with(p))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(ms)
    };
    let rps = out
        .lines()
        .find(|l| l.starts_with("Requests/sec:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .context("no Requests/sec in wrk's output")?;
    let errors = out
        .lines()
        .find(|l| l.trim_start().starts_with("Non-2xx"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(json!({
        "requests_per_sec": rps.round(),
        "p50_ms": pct("50%"),
        "p90_ms": pct("90%"),
        "p99_ms": pct("99%"),
        "non_2xx": errors,
    }))
}

fn wrk(
    url: &str,
    key: Option<&str>,
    threads: u32,
    connections: u32,
    seconds: u32,
) -> anyhow::Result<serde_json::Value> {
    let mut cmd = Command::new("wrk");
    cmd.args([
        &format!("-t{threads}"),
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if let Some(k) = key {
        cmd.args(["-H", &format!("X-API-Key: {k}")]);
    }
    let out = cmd
        .arg(url)
        .output()
        .context("running wrk (Debian package `wrk`)")?;
    anyhow::ensure!(
        out.status.success(),
        "wrk failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    parse_wrk(&String::from_utf8_lossy(&out.stdout))
}

/// Run both wrk measurements; the figures as JSON fields.
pub async fn run(
    settings: &Settings,
    pool: &PgPool,
    connections: u32,
    seconds: u32,
) -> anyhow::Result<serde_json::Map<String, serde_json::Value>> {
    let shutdown = CancellationToken::new();
    let topics = settings.infra.kafka.topics.clone();
    let kafka = runtime::kafka::EmbeddedKafka::start(1, &topics.all())?;
    // No per-key limit: the benchmark is one key at full speed.
    let edge_settings = edge::EdgeSettings {
        rate_limit_per_sec: 0.0,
        ..settings.edge.clone()
    };
    let edge = edge::build(
        pool.clone(),
        kafka.bootstrap_servers(),
        topics,
        edge_settings,
        settings.domain.clone(),
        prometheus::Registry::new(),
        shutdown.clone(),
    )
    .await?;
    let key = edge::auth::create_key(pool, edge::auth::Role::Analyst, "bench", "bench").await?;
    let (addr, server) = edge::serve(edge, "127.0.0.1:0", shutdown.clone())?;
    let plain = warp::path!("plain").map(|| warp::reply::json(&json!({"status": "ok"})));
    let stop = shutdown.clone();
    let (plain_addr, plain_server) =
        warp::serve(plain).try_bind_with_graceful_shutdown(([127, 0, 0, 1], 0), async move {
            stop.cancelled().await
        })?;
    let plain_task = tokio::spawn(plain_server);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let url = format!("http://{addr}/api/portfolio/summary");
    let plain_url = format!("http://{plain_addr}/plain");
    let mut runs = Vec::new();
    for threads in [1u32, 2] {
        eprintln!("wrk: {threads} thread(s), {connections} connections, {seconds} s per route …");
        let (u, k) = (url.clone(), key.key.clone());
        let summary =
            tokio::task::spawn_blocking(move || wrk(&u, Some(&k), threads, connections, seconds))
                .await??;
        let p = plain_url.clone();
        let baseline =
            tokio::task::spawn_blocking(move || wrk(&p, None, threads, connections, seconds))
                .await??;
        runs.push(json!({"wrk_threads": threads, "summary": summary, "plain_warp": baseline}));
    }
    let rss = proc_status_mb("VmRSS:");
    shutdown.cancel();
    let _ = server.await;
    let _ = plain_task.await;
    drop(kafka);
    let mut m = serde_json::Map::new();
    m.insert("http_connections".into(), json!(connections));
    m.insert("http_runs".into(), json!(runs));
    m.insert("http_process_rss_mb".into(), json!(rss));
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_output_is_read_in_milliseconds() {
        let out = "Running 10s test @ http://x\n  Latency Distribution\n     50%  512.00us\n     75%    1.10ms\n     90%    2.00ms\n     99%    1.20s\n  100 requests in 10.00s\nRequests/sec:  12345.67\n";
        let v = parse_wrk(out).unwrap();
        assert_eq!(v["requests_per_sec"], 12346.0);
        assert_eq!(v["p50_ms"], 0.512);
        assert_eq!(v["p99_ms"], 1200.0);
        assert_eq!(v["non_2xx"], 0);
    }
}

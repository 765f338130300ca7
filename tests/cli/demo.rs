//! `credit-risk demo` from the outside, as a newcomer and a seed-era API client meet it: the
//! process comes up on embedded infrastructure, and through HTTP the dashboard page loads, the
//! portfolio is non-empty with NPA figures, the seed's curl examples (health, portfolio
//! summary, register then apply with the seed's body) answer with the seed's field names,
//! live decisions carry reasons, and SIGTERM stops it cleanly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use tests::process::Killed;

const BIN: &str = env!("CARGO_BIN_EXE_credit-risk");

fn http(
    addr: &str,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> (u16, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let payload = body.map(|b| b.to_string()).unwrap_or_default();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("X-API-Key: {k}\r\n"));
    }
    if body.is_some() {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            payload.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(&payload);
    s.write_all(req.as_bytes()).unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").unwrap();
    let status = head.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, body.to_string())
}

fn get_json(addr: &str, path: &str, key: &str) -> (u16, Value) {
    let (s, b) = http(addr, "GET", path, Some(key), None);
    (s, serde_json::from_str(&b).unwrap_or(Value::Null))
}

#[test]
fn the_demo_comes_up_and_serves_the_seed_api_the_dashboard_and_live_decisions_with_reasons() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--bind",
            "127.0.0.1:0",
            "--applications-per-month",
            "400",
            "--days-per-minute",
            "120",
            "--retrain-every-days",
            "0",
        ])
        .current_dir(dir.path())
        .env_remove("KAFKA_BROKERS")
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let stdout = child.stdout.take().unwrap();
    let demo = Killed(child);
    let (tx, rx) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let started = Instant::now();
    let (mut addr, mut analyst, mut originator) = (String::new(), String::new(), String::new());
    let mut output = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(300).saturating_sub(started.elapsed()))
            .unwrap_or_else(|_| panic!("the demo did not go live in time: {output:#?}"));
        if let Some(rest) = line.trim().strip_prefix("Dashboard:") {
            let url = rest.trim().strip_prefix("http://").unwrap();
            addr = url.split('/').next().unwrap().to_string();
        }
        if let Some(k) = line.trim().strip_prefix("analyst") {
            analyst = k.trim().to_string();
        }
        if let Some(k) = line.trim().strip_prefix("originator") {
            originator = k.trim().to_string();
        }
        let live = line.starts_with("Live:");
        output.push(line);
        if live {
            break;
        }
    }
    assert!(!addr.is_empty() && analyst.starts_with("cr_") && originator.starts_with("cr_"));

    // The seed's README: health.
    let (s, body) = http(&addr, "GET", "/health", None, None);
    assert_eq!(s, 200);
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["status"],
        "healthy"
    );

    // The dashboard page and its chart library.
    let (s, page) = http(&addr, "GET", "/", None, None);
    assert_eq!(s, 200);
    assert!(page.contains("/assets/chart.umd.min.js"));
    let (s, lib) = http(&addr, "GET", "/assets/chart.umd.min.js", None, None);
    assert_eq!(s, 200);
    assert!(lib.contains("Chart.js"));

    // The seed's README: portfolio summary, with its field names and a non-empty book.
    let (s, summary) = get_json(&addr, "/api/portfolio/summary", &analyst);
    assert_eq!(s, 200, "{summary}");
    assert!(
        summary["loan_statistics"]["total_loans"].as_i64().unwrap() > 1_000,
        "{summary}"
    );
    assert!(summary["loan_statistics"]["active_loans"].as_i64().unwrap() > 0);
    assert!(
        summary["loan_statistics"]["defaulted_loans"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(
        summary["financial_metrics"]["total_disbursed"]
            .as_i64()
            .unwrap()
            > 0
    );
    assert!(summary["financial_metrics"]["npa_amount"].as_i64().unwrap() > 0);
    assert!(summary["financial_metrics"]["npa_ratio"].as_f64().unwrap() > 0.0);
    assert!(summary["risk_metrics"]["default_rate"].as_f64().unwrap() > 0.0);
    // Approval rate = approved / (approved + declined); referrals are their own rate.
    let stat = |k: &str| summary["loan_statistics"][k].as_i64().unwrap();
    let (approved, referred, declined) = (
        stat("approved_applications"),
        stat("referred_applications"),
        stat("declined_applications"),
    );
    assert!(referred > 0 && declined > 0, "{summary}");
    assert_eq!(approved + referred + declined, stat("total_applications"));
    let approval = summary["risk_metrics"]["approval_rate"].as_f64().unwrap();
    assert!(
        (approval - approved as f64 / (approved + declined) as f64).abs() < 1e-12,
        "{summary}"
    );
    let referral = summary["risk_metrics"]["referral_rate"].as_f64().unwrap();
    assert!(
        (referral - referred as f64 / stat("total_applications") as f64).abs() < 1e-12,
        "{summary}"
    );
    let (s, npa) = get_json(&addr, "/api/portfolio/npa-analysis", &analyst);
    assert_eq!(s, 200);
    assert!(npa["by_class"].as_array().unwrap().len() > 1, "{npa}");

    // Register a customer the seed's way, then apply with the seed's body (numeric id).
    let customer = json!({
        "customer_id": 4242, "first_name": "Asha", "last_name": "Rao",
        "email": "asha@example.com", "phone": "+91 98000 00000", "date_of_birth": "1988-04-02",
        "employment_status": "Employed", "annual_income": 1800000, "existing_obligations": 8000,
        "dependents": 1, "residence": "own", "region": "south"
    });
    let (s, body) = http(
        &addr,
        "POST",
        "/api/customers/",
        Some(&originator),
        Some(&customer),
    );
    assert_eq!(s, 201, "{body}");
    let apply = json!({"customer_id": 4242, "loan_amount": 300000, "loan_tenure_months": 36,
                       "interest_rate": 12.5, "loan_purpose": "Personal"});
    let (s, body) = http(
        &addr,
        "POST",
        "/api/loans/apply",
        Some(&originator),
        Some(&apply),
    );
    assert_eq!(s, 200, "{body}");
    let d: Value = serde_json::from_str(&body).unwrap();
    for field in [
        "application_id",
        "credit_score",
        "risk_probability",
        "status",
        "recommendation",
    ] {
        assert!(!d[field].is_null(), "{field} missing: {d}");
    }
    let score = d["credit_score"].as_i64().unwrap();
    assert!((300..=850).contains(&score));
    if d["decision"] != "APPROVE" {
        assert!(!d["reasons"].as_array().unwrap().is_empty(), "{d}");
    }

    // What-if: the same application, nothing recorded; a larger amount never scores better.
    let (s, body) = http(
        &addr,
        "POST",
        "/api/whatif",
        Some(&originator),
        Some(&apply),
    );
    assert_eq!(s, 200, "{body}");
    let w: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(w["recorded"], false);
    assert!(!w["reasons"].as_array().unwrap().is_empty(), "{w}");

    // Unshocked, the stress test re-prices the day-end's own ECL to the paisa (one function);
    // a day-end between its two reads moves both, so it is asked again until they are of one.
    let unshocked = json!({"pd_multiplier": 1.0, "lgd_add_bps": 0});
    let mut same = false;
    for _ in 0..10 {
        let (s, body) = http(
            &addr,
            "POST",
            "/api/portfolio/stress-test",
            Some(&analyst),
            Some(&unshocked),
        );
        assert_eq!(s, 200, "{body}");
        let st: Value = serde_json::from_str(&body).unwrap();
        if st["stressed"]["ecl"] == st["baseline"]["ecl"] {
            same = true;
            break;
        }
    }
    assert!(
        same,
        "the unshocked stress test never matched the day-end's ECL"
    );

    // A stress test raises ECL and projected NPA above the baseline; drift is reported per feature.
    let shock = json!({"pd_multiplier": 2.0, "lgd_add_bps": 1000});
    let (s, body) = http(
        &addr,
        "POST",
        "/api/portfolio/stress-test",
        Some(&analyst),
        Some(&shock),
    );
    assert_eq!(s, 200, "{body}");
    let st: Value = serde_json::from_str(&body).unwrap();
    assert!(
        st["stressed"]["ecl"].as_i64().unwrap() > st["baseline"]["ecl"].as_i64().unwrap(),
        "{st}"
    );
    assert!(
        st["stressed"]["projected_npa_amount"].as_i64().unwrap()
            > st["baseline"]["npa_amount"].as_i64().unwrap(),
        "{st}"
    );
    let (s, drift) = get_json(&addr, "/api/models/drift?applications=2000", &analyst);
    assert_eq!(s, 200, "{drift}");
    assert!(drift["applications"].as_i64().unwrap() > 0, "{drift}");
    assert!(!drift["features"].as_array().unwrap().is_empty());

    // Live decisions by the scorer carry reasons when not approved.
    let deadline = Instant::now() + Duration::from_secs(120);
    let with_reasons = loop {
        let (_, page) = get_json(
            &addr,
            "/api/loans/applications?status=rejected&limit=20",
            &analyst,
        );
        let live: Vec<String> = page["applications"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| {
                a["model_version"]
                    .as_str()
                    .is_some_and(|m| m.starts_with("pd-demo"))
            })
            .map(|a| a["application_id"].as_str().unwrap().to_string())
            .collect();
        if let Some(id) = live.first() {
            break get_json(&addr, &format!("/api/loans/applications/{id}"), &analyst).1;
        }
        assert!(
            Instant::now() < deadline,
            "no live decision reached the book"
        );
        std::thread::sleep(Duration::from_secs(2));
    };
    assert!(
        !with_reasons["decision"]["reasons"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{with_reasons}"
    );

    // A headless Chromium loads the dashboard, waits for the charts and finds data in them.
    let url = format!("http://{addr}/#key={analyst}");
    let chromium = |extra: &[&str]| {
        let out = Command::new("chromium")
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--window-size=1400,1600",
                "--virtual-time-budget=20000",
            ])
            .args(extra)
            .arg(&url)
            .stderr(Stdio::null())
            .output()
            .expect("chromium (Debian package `chromium`) must be installed");
        assert!(out.status.success(), "chromium failed: {:?}", out.status);
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = chromium(&["--dump-dom"]);
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the dashboard did not load its data"
    );
    for chart in [
        "trend", "dpd", "vintage", "purpose", "classes", "approval", "psi",
    ] {
        let marker = format!("data-chart=\"{chart}\"");
        let tag = dom
            .split("<canvas")
            .find(|t| t.contains(&marker))
            .unwrap_or_else(|| panic!("no {chart} chart"));
        let points: usize = tag
            .split("data-points=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        assert!(points > 0, "the {chart} chart holds no data");
    }
    let shot = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    chromium(&[&format!("--screenshot={}", shot.display())]);
    assert!(
        std::fs::metadata(&shot).unwrap().len() > 10_000,
        "empty screenshot"
    );

    // SIGTERM stops it cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let mut demo = demo;
    let stop = Instant::now();
    let code = loop {
        if let Some(code) = demo.0.try_wait().unwrap() {
            break code;
        }
        assert!(
            stop.elapsed() < Duration::from_secs(60),
            "the demo did not stop"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(code.success(), "{code:?}");
}

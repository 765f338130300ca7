//! The API on a real database and the embedded Kafka cluster, through warp's in-process test
//! client: keys and roles, limits, field-level errors, personal data, the OpenAPI document.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{spawn_edge, Harness};
use edge::auth::{create_key, Role};
use edge::EdgeSettings;
use serde_json::{json, Value};

impl Harness {
    async fn call(
        &self,
        method: &str,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> (u16, Value, warp::http::HeaderMap) {
        let mut r = warp::test::request().method(method).path(path);
        if let Some(k) = key {
            r = r.header("x-api-key", k);
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .header("content-length", b.len().to_string())
                .body(b);
        }
        let res = r.reply(&edge::routes::routes(self.edge.clone())).await;
        let v = serde_json::from_slice(res.body()).unwrap_or(Value::Null);
        (res.status().as_u16(), v, res.headers().clone())
    }

    async fn insert_customer(&self, id: &str) {
        sqlx::query(
            "INSERT INTO customers (customer_id, registered_at, full_name, email, phone, age, \
               employment_type, years_employed, monthly_income, existing_emi, dependents, \
               residence, region, bureau) \
             VALUES ($1, now(), 'Asha Rao', 'asha@example.com', '+91 98000 00000', 36, \
               'salaried', 8, 15000000, 1000000, 1, 'own', 'south', \
               '{\"bureau_score\": 760, \"history_months\": 96, \"delinquencies_24m\": 0, \
                 \"inquiries_6m\": 1, \"revolving_utilisation_bps\": 2500, \"open_accounts\": 3}')",
        )
        .bind(id)
        .execute(&self.owner)
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn requests_without_a_known_key_get_401_and_public_endpoints_need_none() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let (s, v, _) = h.call("GET", "/api/portfolio/summary", None, None).await;
    assert_eq!(s, 401);
    assert_eq!(v["error"], "unauthorized");
    let (s, _, _) = h
        .call(
            "GET",
            "/api/portfolio/summary",
            Some("cr_000000000000_deadbeef"),
            None,
        )
        .await;
    assert_eq!(s, 401);
    let (s, v, _) = h.call("GET", "/health", None, None).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("healthy")));
    let (s, _, _) = h.call("GET", "/openapi.json", None, None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn a_role_that_may_not_use_an_endpoint_gets_403() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let body = json!({"customer_id": 1, "loan_amount": 1000, "loan_tenure_months": 12,
                      "interest_rate": 10, "loan_purpose": "Personal"})
    .to_string();
    let (s, v, _) = h
        .call("POST", "/api/loans/apply", Some(&h.analyst), Some(&body))
        .await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"], "forbidden");
    let (s, _, _) = h
        .call("GET", "/api/portfolio/summary", Some(&h.originator), None)
        .await;
    assert_eq!(s, 403);
    let (s, _, _) = h
        .call(
            "POST",
            "/api/models/m-1/promote",
            Some(&h.analyst),
            Some("{}"),
        )
        .await;
    assert_eq!(s, 403);
}

#[tokio::test]
async fn a_body_over_the_limit_gets_413() {
    let h = spawn_edge(EdgeSettings {
        body_limit_bytes: 1024,
        ..EdgeSettings::default()
    })
    .await;
    let big = json!({"customer_id": 1, "loan_purpose": "x".repeat(4096)}).to_string();
    let (s, v, _) = h
        .call("POST", "/api/loans/apply", Some(&h.originator), Some(&big))
        .await;
    assert_eq!(s, 413, "{v}");
    assert_eq!(v["error"], "payload_too_large");
}

#[tokio::test]
async fn a_key_past_its_rate_gets_429_with_retry_after_and_other_keys_do_not() {
    let h = spawn_edge(EdgeSettings {
        rate_limit_per_sec: 0.5,
        rate_limit_burst: 3.0,
        ..EdgeSettings::default()
    })
    .await;
    for _ in 0..3 {
        let (s, _, _) = h.call("GET", "/api/models", Some(&h.analyst), None).await;
        assert_eq!(s, 200);
    }
    let (s, v, headers) = h.call("GET", "/api/models", Some(&h.analyst), None).await;
    assert_eq!(s, 429, "{v}");
    let after: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&after));
    let (s, _, _) = h.call("GET", "/api/models", Some(&h.admin), None).await;
    assert_eq!(s, 200);
}

#[tokio::test]
async fn invalid_fields_get_422_naming_the_field_and_malformed_json_400() {
    let h = spawn_edge(EdgeSettings::default()).await;
    h.insert_customer("1001").await;
    let apply = |body: Value| {
        let h = &h;
        async move {
            h.call(
                "POST",
                "/api/loans/apply",
                Some(&h.originator),
                Some(&body.to_string()),
            )
            .await
        }
    };
    let good = json!({"customer_id": 1001, "loan_amount": 500000, "loan_tenure_months": 60,
                      "interest_rate": 11.5, "loan_purpose": "Home Purchase"});
    let cases = [
        ("loan_amount", json!("lots")),
        ("loan_purpose", json!("Spaceship")),
        ("interest_rate", json!(250)),
        ("loan_amount", json!(100.123)),
        ("customer_id", json!("no such customer")),
        ("customer_id", json!(424242)),
    ];
    for (field, value) in cases {
        let mut body = good.clone();
        body[field] = value.clone();
        let (s, v, _) = apply(body).await;
        assert_eq!(s, 422, "{field}={value}: {v}");
        assert_eq!(v["details"]["field"], field, "{v}");
    }
    let mut missing = good.clone();
    missing
        .as_object_mut()
        .unwrap()
        .remove("loan_tenure_months");
    let (s, v, _) = apply(missing).await;
    assert_eq!(
        (s, v["details"]["field"].as_str()),
        (422, Some("loan_tenure_months")),
        "{v}"
    );
    let mut tenure = good.clone();
    tenure["loan_tenure_months"] = json!(0);
    let (s, v, _) = apply(tenure).await;
    assert_eq!(s, 422, "{v}");
    assert!(
        v["details"]["field"].as_str().unwrap().contains("tenure"),
        "{v}"
    );
    let (s, v, _) = h
        .call(
            "POST",
            "/api/loans/apply",
            Some(&h.originator),
            Some("{\"customer_id\": "),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (400, Some("bad_request")), "{v}");
    let (s, v, _) = h
        .call("GET", "/api/customers/?limit=0", Some(&h.analyst), None)
        .await;
    assert_eq!(
        (s, v["details"]["field"].as_str()),
        (422, Some("limit")),
        "{v}"
    );
}

#[tokio::test]
async fn personal_data_is_shown_to_originators_and_admins_only() {
    let h = spawn_edge(EdgeSettings::default()).await;
    h.insert_customer("C-7").await;
    let (s, v, _) = h
        .call("GET", "/api/customers/C-7", Some(&h.analyst), None)
        .await;
    assert_eq!(s, 200);
    assert!(
        v.get("email").is_none() && v.get("full_name").is_none(),
        "{v}"
    );
    assert_eq!(v["monthly_income"], 15_000_000);
    let (_, v, _) = h
        .call("GET", "/api/customers/C-7", Some(&h.originator), None)
        .await;
    assert_eq!(v["email"], "asha@example.com");
    let (s, v, _) = h
        .call(
            "GET",
            "/api/customers/?limit=10&offset=0",
            Some(&h.analyst),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        (
            v["total"].as_i64(),
            v["limit"].as_i64(),
            v["offset"].as_i64()
        ),
        (Some(1), Some(10), Some(0))
    );
    assert!(v["customers"][0].get("phone").is_none());
    // Lists carry no personal data for any role; a single read of it is audited.
    let (_, v, headers) = h
        .call(
            "GET",
            "/api/customers/?limit=10&offset=0",
            Some(&h.originator),
            None,
        )
        .await;
    assert!(
        v["customers"][0].get("email").is_none() && v["customers"][0].get("full_name").is_none(),
        "{v}"
    );
    assert_eq!(headers["cache-control"], "no-store");
    let audited: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM audit_log WHERE action = 'customer.personal_data_read' \
           AND subject = 'C-7'",
    )
    .fetch_one(&h.edge.pool)
    .await
    .unwrap();
    assert_eq!(audited, 1, "the originator's read of C-7 is audited once");
}

#[tokio::test]
async fn a_whatif_without_a_champion_is_503_and_an_empty_book_answers_404_as_json() {
    let h = spawn_edge(EdgeSettings::default()).await;
    h.insert_customer("1").await;
    let body = json!({"customer_id": 1, "loan_amount": 1000, "loan_tenure_months": 12,
                      "interest_rate": 10, "loan_purpose": "Personal"})
    .to_string();
    let (s, v, headers) = h
        .call("POST", "/api/whatif", Some(&h.analyst), Some(&body))
        .await;
    assert_eq!((s, v["error"].as_str()), (503, Some("unavailable")), "{v}");
    assert!(headers.contains_key("retry-after"));
    let (s, v, _) = h
        .call("GET", "/api/portfolio/summary", Some(&h.analyst), None)
        .await;
    assert_eq!((s, v["error"].as_str()), (404, Some("not_found")), "{v}");
}

#[tokio::test]
async fn the_openapi_document_lists_every_route_and_every_route_is_served() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let (_, doc, _) = h.call("GET", "/openapi.json", None, None).await;
    let documented: std::collections::BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(p, ops)| {
            ops.as_object()
                .unwrap()
                .keys()
                .map(move |m| (m.to_uppercase(), p.clone()))
        })
        .collect();
    let table: std::collections::BTreeSet<(String, String)> = edge::route_table::ROUTES
        .iter()
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    assert_eq!(documented, table);
    for r in edge::route_table::ROUTES {
        let path = r
            .path
            .replace("{file}", "app.js")
            .replace("{id}", "none")
            .replace("{version}", "none");
        let body = (r.method == "POST").then_some("{}");
        let (s, v, _) = h.call(r.method, &path, Some(&h.admin), body).await;
        assert_ne!(
            v["message"], "no such endpoint",
            "{} {} is not served",
            r.method, r.path
        );
        assert_ne!(s, 405, "{} {}", r.method, r.path);
        assert!(
            s < 500 || s == 503,
            "{} {} answered {s}: {v}",
            r.method,
            r.path
        );
    }
    let (_, _, _) = h.call("GET", "/nowhere", None, None).await;
    let res = warp::test::request()
        .path("/metrics")
        .header("x-api-key", &h.admin)
        .reply(&edge::routes::routes(h.edge.clone()))
        .await;
    let text = String::from_utf8(res.body().to_vec()).unwrap();
    assert!(
        text.contains("edge_http_requests_total{method=\"GET\",route=\"/api/portfolio/summary\""),
        "{text}"
    );
}

/// A checksum of every row of `table`.
async fn checksum(pool: &sqlx::PgPool, table: &str) -> String {
    sqlx::query_scalar(&format!(
        "SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"
    ))
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_stored_application_or_customer_cannot_be_rewritten_through_the_api() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let pool = &h.owner;
    h.insert_customer("4242").await;
    h.insert_customer("4343").await;
    // A stored application, as the aggregator keeps it.
    let settings = ingest::generator::GeneratorSettings {
        seed: 3,
        applications: 5,
        months: 1,
        performance_months: 0,
        ..Default::default()
    };
    let sink = ingest::generator::sink::MemorySink::generated(
        &settings,
        &risk_core::settings::DomainSettings::default(),
    )
    .unwrap();
    let mut app = sink.applications[0].clone();
    app.customer_id = "4242".into();
    let payload = serde_json::to_value(&app).unwrap();
    sqlx::query(
        "INSERT INTO applications (application_id, customer_id, submitted_at, channel, purpose, \
           amount, tenure_months, interest_rate_bps, collateral_value, payload) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&app.application_id)
    .bind(&app.customer_id)
    .bind(app.submitted_at)
    .bind(&app.channel)
    .bind(app.loan.purpose.as_str())
    .bind(app.loan.amount)
    .bind(app.loan.tenure_months)
    .bind(app.loan.interest_rate_bps)
    .bind(app.loan.collateral_value)
    .bind(&payload)
    .execute(pool)
    .await
    .unwrap();
    let (apps, customers) = (
        checksum(pool, "applications").await,
        checksum(pool, "customers").await,
    );

    // The same id as a 100-paise gold loan of another customer: refused.
    let mut forged = payload.clone();
    forged["customer_id"] = json!("4343");
    forged["loan"]["amount"] = json!(100);
    forged["loan"]["purpose"] = json!("gold");
    let (s, v, _) = h
        .call(
            "POST",
            "/api/loans/apply",
            Some(&h.originator),
            Some(&forged.to_string()),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
    // The same application again (a retry, with or without its submission time): not
    // published again, answered with where its decision is.
    let mut retry = payload.clone();
    retry.as_object_mut().unwrap().remove("submitted_at");
    for body in [payload.clone(), retry] {
        let (s, v, _) = h
            .call(
                "POST",
                "/api/loans/apply",
                Some(&h.originator),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(s, 202, "{v}");
        assert_eq!(v["status"], "pending", "{v}");
    }
    // Registering an existing customer id again: refused, whatever the body says.
    let customer = json!({
        "customer_id": 4242, "first_name": "Mallory", "last_name": "Rao",
        "email": "mallory@example.com", "phone": "+91 98000 00001", "date_of_birth": "1988-04-02",
        "employment_status": "Employed", "annual_income": 9900000, "existing_obligations": 0,
        "dependents": 0, "residence": "own", "region": "south"
    });
    let (s, v, _) = h
        .call(
            "POST",
            "/api/customers/",
            Some(&h.originator),
            Some(&customer.to_string()),
        )
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
    assert_eq!(checksum(pool, "applications").await, apps);
    assert_eq!(checksum(pool, "customers").await, customers);
}

/// The first message on `topic` whose payload satisfies `found`, read from the beginning.
fn first_on_topic<T>(brokers: &str, topic: &str, found: impl Fn(&[u8]) -> Option<T>) -> Option<T> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", format!("test-{}", uuid::Uuid::new_v4()))
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(20) {
        if let Some(Ok(m)) = consumer.poll(std::time::Duration::from_millis(200)) {
            if let Some(t) = m.payload().and_then(&found) {
                return Some(t);
            }
        }
    }
    None
}

fn key_id(key: &str) -> &str {
    key.split('_').nth(1).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_change_is_published_kept_in_history_and_audited() {
    let h = spawn_edge(EdgeSettings {
        customer_timeout_ms: 300,
        ..EdgeSettings::default()
    })
    .await;
    h.insert_customer("C-9").await;
    let path = "/api/customers/C-9";
    let patch = |key: &str, body: &str| {
        let (key, body) = (key.to_string(), body.to_string());
        let h = &h;
        async move { h.call("PATCH", path, Some(&key), Some(&body)).await }
    };
    // Refused: analysts, markup in a field, nothing to change, unknown fields, no such customer.
    assert_eq!(patch(&h.analyst, r#"{"region":"west"}"#).await.0, 403);
    let (s, v, _) = patch(&h.originator, r#"{"full_name":"<script>x</script>"}"#).await;
    assert_eq!(
        (s, v["details"]["field"].as_str()),
        (422, Some("full_name"))
    );
    let (s, v, _) = patch(&h.originator, r#"{"phone":"<b>12345</b>"}"#).await;
    assert_eq!((s, v["details"]["field"].as_str()), (422, Some("phone")));
    assert_eq!(patch(&h.originator, "{}").await.0, 422);
    assert!(matches!(
        patch(&h.originator, r#"{"customer_id":"C-10"}"#).await.0,
        400 | 422
    ));
    let (s, _, _) = h
        .call(
            "PATCH",
            "/api/customers/C-404",
            Some(&h.originator),
            Some(r#"{"region":"west"}"#),
        )
        .await;
    assert_eq!(s, 404);

    // The change: published as CustomerUpdated naming the key (202: no aggregator here).
    let (s, v, _) = patch(
        &h.originator,
        r#"{"email":"asha.rao@example.org","monthly_income":180000.5,"reason":"new employer"}"#,
    )
    .await;
    assert_eq!(s, 202, "{v}");
    let update_id = v["update_id"].as_str().unwrap().to_string();
    let bytes = first_on_topic(h.edge.brokers.as_str(), &h.edge.topics.customers, |b| {
        schemas::decode::<schemas::CustomerUpdated>(b)
            .ok()
            .filter(|u| u.update_id == update_id)
            .map(|_| b.to_vec())
    })
    .expect("the change on the customers topic");
    let update = schemas::decode::<schemas::CustomerUpdated>(&bytes).unwrap();
    assert_eq!(update.updated_by, key_id(&h.originator));
    assert_eq!(update.monthly_income, Some(18_000_050));
    assert_eq!(update.changed_fields(), vec!["email", "monthly_income"]);

    // The aggregator applies it as it reads it off the topic.
    let incoming = book::message::Incoming {
        source: book::message::Source::Customers,
        topic: h.edge.topics.customers.clone(),
        partition: 0,
        offset: 0,
        key: None,
        payload: book::message::parse(book::message::Source::Customers, &bytes),
        bytes,
    };
    let ctx = book::write::ApplyContext {
        group: "test".into(),
        event_partitions: 1,
        domain: risk_core::settings::DomainSettings::default(),
    };
    let mut tx = h.owner.begin().await.unwrap();
    let out = book::write::apply_batch(&mut tx, &ctx, &[incoming])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert!(out.rejected.is_empty(), "{:?}", out.rejected);

    let (_, v, _) = h.call("GET", path, Some(&h.originator), None).await;
    assert_eq!(
        (v["email"].as_str(), v["monthly_income"].as_i64()),
        (Some("asha.rao@example.org"), Some(18_000_050))
    );
    let (s, v, headers) = h
        .call("GET", "/api/customers/C-9/history", Some(&h.admin), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(headers["cache-control"], "no-store");
    let version = &v["versions"][0];
    assert_eq!(version["version"], 2);
    assert_eq!(version["changed_by"], key_id(&h.originator));
    assert_eq!(version["reason"], "new employer");
    assert_eq!(version["fields"], json!(["email", "monthly_income"]));
    assert_eq!(version["before"]["email"], "asha@example.com");
    assert_eq!(version["before"]["monthly_income"], 15_000_000);
    let audited: Vec<(String, String)> = sqlx::query_as(
        "SELECT actor, action FROM audit_log WHERE subject = 'C-9' \
           AND action IN ('customer.updated', 'customer.history_read') ORDER BY id",
    )
    .fetch_all(&h.owner)
    .await
    .unwrap();
    assert_eq!(
        audited,
        vec![
            (key_id(&h.originator).into(), "customer.updated".into()),
            (key_id(&h.admin).into(), "customer.history_read".into()),
        ]
    );
    // Analysts see neither the change's values nor the history.
    let (s, _, _) = h
        .call("GET", "/api/customers/C-9/history", Some(&h.analyst), None)
        .await;
    assert_eq!(s, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scoped_originator_sees_only_the_customers_it_registered() {
    let h = spawn_edge(EdgeSettings {
        customer_timeout_ms: 300,
        originators_own_customers_only: true,
        ..EdgeSettings::default()
    })
    .await;
    let other = create_key(&h.owner, Role::Originator, "other LOS", "test")
        .await
        .unwrap()
        .key;
    let body = json!({
        "customer_id": "C-MINE", "full_name": "Meera Iyer", "email": "meera@example.com",
        "phone": "+91 98000 12345", "age": 34, "employment_type": "salaried",
        "years_employed": 6, "monthly_income": 120000, "region": "south"
    })
    .to_string();
    let (s, v, _) = h
        .call("POST", "/api/customers/", Some(&h.originator), Some(&body))
        .await;
    assert_eq!(s, 202, "{v}");
    // The aggregator stores it (no aggregator runs here).
    h.insert_customer("C-MINE").await;
    h.insert_customer("C-THEIRS").await;

    let get = |key: &str, path: &str| {
        let (key, path) = (key.to_string(), path.to_string());
        let h = &h;
        async move { h.call("GET", &path, Some(&key), None).await }
    };
    assert_eq!(get(&h.originator, "/api/customers/C-MINE").await.0, 200);
    assert_eq!(get(&h.originator, "/api/customers/C-THEIRS").await.0, 404);
    assert_eq!(get(&other, "/api/customers/C-MINE").await.0, 404);
    let (s, _, _) = h
        .call(
            "PATCH",
            "/api/customers/C-MINE",
            Some(&other),
            Some(r#"{"region":"west"}"#),
        )
        .await;
    assert_eq!(s, 404);
    let (_, v, _) = get(&h.originator, "/api/customers/?limit=10").await;
    assert_eq!(v["total"], 1, "{v}");
    assert_eq!(v["customers"][0]["customer_id"], "C-MINE");
    let (_, v, _) = get(&other, "/api/customers/?limit=10").await;
    assert_eq!(v["total"], 0, "{v}");
    // Nor through the loan endpoints: applying or scoring for another key's customer.
    let apply = json!({"customer_id": "C-MINE", "loan_amount": 500000, "loan_tenure_months": 36,
        "interest_rate": 11.5, "loan_purpose": "personal"})
    .to_string();
    for path in ["/api/loans/apply", "/api/whatif"] {
        let (s, v, _) = h.call("POST", path, Some(&other), Some(&apply)).await;
        assert_eq!(s, 404, "{path}: {v}");
    }
    let (_, v, _) = get(&other, "/api/loans/applications?limit=10").await;
    assert_eq!(v["total"], 0, "{v}");
    // An id claimed by one key cannot be registered by another before the book stores it.
    let race = body.replace("C-MINE", "C-RACE");
    let (s, _, _) = h
        .call("POST", "/api/customers/", Some(&h.originator), Some(&race))
        .await;
    assert_eq!(s, 202);
    let (s, v, _) = h
        .call("POST", "/api/customers/", Some(&other), Some(&race))
        .await;
    assert_eq!((s, v["error"].as_str()), (409, Some("conflict")), "{v}");
    assert_eq!(get(&other, "/api/customers/C-RACE").await.0, 404);
    // Admins are not scoped.
    assert_eq!(get(&h.admin, "/api/customers/C-THEIRS").await.0, 200);
    let (_, v, _) = get(&h.admin, "/api/customers/?limit=10").await;
    assert_eq!(v["total"], 2, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_past_its_expiry_is_refused_even_when_cached() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let soon = edge::auth::create_key_until(
        &h.owner,
        Role::Analyst,
        "contractor",
        "test",
        Some(chrono::Utc::now() + chrono::Duration::milliseconds(1_500)),
    )
    .await
    .unwrap()
    .key;
    let past = edge::auth::create_key_until(
        &h.owner,
        Role::Analyst,
        "expired",
        "test",
        Some(chrono::Utc::now() - chrono::Duration::days(1)),
    )
    .await
    .unwrap()
    .key;
    let (s, _, _) = h.call("GET", "/api/models", Some(&soon), None).await;
    assert_eq!(s, 200);
    assert_eq!(h.call("GET", "/api/models", Some(&past), None).await.0, 401);
    tokio::time::sleep(std::time::Duration::from_millis(1_700)).await;
    // Within the cache's lifetime, past the key's expiry.
    assert_eq!(h.call("GET", "/api/models", Some(&soon), None).await.0, 401);
    let listed = edge::auth::list_keys(&h.owner).await.unwrap();
    assert!(listed
        .iter()
        .any(|k| k.label == "contractor" && k.expires_at.is_some()));
}

#[tokio::test]
async fn metrics_on_the_api_port_need_an_analyst_or_admin_key() {
    let h = spawn_edge(EdgeSettings::default()).await;
    assert_eq!(h.call("GET", "/metrics", None, None).await.0, 401);
    assert_eq!(
        h.call("GET", "/metrics", Some(&h.originator), None).await.0,
        403
    );
    let res = warp::test::request()
        .path("/metrics")
        .header("x-api-key", &h.analyst)
        .reply(&edge::routes::routes(h.edge.clone()))
        .await;
    assert_eq!(res.status(), 200);
    assert!(String::from_utf8_lossy(res.body()).contains("edge_http_requests_total"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_refused_once_the_cache_lifetime_has_passed() {
    let h = spawn_edge(EdgeSettings::default()).await;
    assert_eq!(
        h.call("GET", "/api/models", Some(&h.analyst), None).await.0,
        200
    );
    assert!(edge::auth::revoke_key(&h.owner, key_id(&h.analyst), "test")
        .await
        .unwrap());
    tokio::time::sleep(edge::auth::KEY_CACHE_TTL + std::time::Duration::from_millis(200)).await;
    assert_eq!(
        h.call("GET", "/api/models", Some(&h.analyst), None).await.0,
        401
    );
}

#[tokio::test]
async fn markup_in_a_name_or_phone_is_refused_at_registration() {
    let h = spawn_edge(EdgeSettings::default()).await;
    let base = json!({
        "full_name": "Meera Iyer", "email": "meera@example.com", "phone": "+91 98000 12345",
        "age": 34, "employment_type": "salaried", "years_employed": 6,
        "monthly_income": 120000, "region": "south"
    });
    for (field, value) in [
        ("full_name", "<img src=x onerror=alert(1)>"),
        ("phone", "<b>98000</b>"),
        ("email", "a@b.c<script>"),
        ("region", "<i>south</i>"),
    ] {
        let mut body = base.clone();
        body[field] = json!(value);
        let (s, v, _) = h
            .call(
                "POST",
                "/api/customers/",
                Some(&h.originator),
                Some(&body.to_string()),
            )
            .await;
        assert_eq!(
            (s, v["details"]["field"].as_str()),
            (422, Some(field)),
            "{v}"
        );
    }
    let stored: i64 = sqlx::query_scalar("SELECT count(*) FROM customers")
        .fetch_one(&h.owner)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // Names in any script stay welcome.
    for name in ["Zoë D'Souza-Nair", "सुरेश कुमार", "Ó Súilleabháin"] {
        assert!(edge::api::person_name("full_name", name).is_ok(), "{name}");
    }
}

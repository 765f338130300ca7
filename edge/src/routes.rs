//! The warp filters: each endpoint of the [route table](crate::route_table::ROUTES) served,
//! with its caller checked against the roles the table gives it, errors as JSON, security
//! headers, and requests counted by the table's templates.

use std::sync::Arc;

use warp::{Filter, Rejection, Reply};

use crate::auth::{key_from_headers, Principal};
use crate::error::{recover, reject, ApiError};
use crate::handlers::{customers, loans, models, portfolio, risk, system, Answer};
use crate::route_table::{roles_of, template};
use crate::{dashboard, openapi, state::Edge};

fn with_edge(
    edge: Arc<Edge>,
) -> impl Filter<Extract = (Arc<Edge>,), Error = std::convert::Infallible> + Clone {
    warp::any().map(move || edge.clone())
}

/// The caller, verified, allowed for this route, and within its rate limit.
fn caller(
    edge: Arc<Edge>,
    method: &'static str,
    path: &'static str,
) -> impl Filter<Extract = (Principal,), Error = Rejection> + Clone {
    let roles = roles_of(method, path);
    warp::header::optional::<String>("authorization")
        .and(warp::header::optional::<String>("x-api-key"))
        .and(client_addr())
        .and(with_edge(edge))
        .and_then(
            move |a: Option<String>,
                  x: Option<String>,
                  client: Option<String>,
                  edge: Arc<Edge>| async move {
                let key = key_from_headers(a, x).ok_or_else(|| reject(ApiError::unauthorized()))?;
                let who = edge
                    .keys
                    .verify(&key, client.as_deref())
                    .await
                    .map_err(reject)?;
                if !roles.contains(&who.role) {
                    return Err(reject(ApiError::forbidden(who.role.as_str())));
                }
                edge.limiter
                    .check(&who.key_id)
                    .map_err(|after| reject(ApiError::rate_limited(after)))?;
                Ok::<_, Rejection>(who)
            },
        )
}

/// The client's address (its IP): from the connection, as the server records it.
fn client_addr(
) -> impl Filter<Extract = (Option<String>,), Error = std::convert::Infallible> + Clone {
    warp::ext::optional::<crate::server::ClientAddr>()
        .and(warp::addr::remote())
        .map(
            |ext: Option<crate::server::ClientAddr>, remote: Option<std::net::SocketAddr>| {
                ext.map(|c| c.0).or(remote).map(|a| a.ip().to_string())
            },
        )
}

/// A method as a metric label: the standard ones by name, anything else as `other`.
fn method_label(m: &warp::http::Method) -> &'static str {
    match m.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

fn answer(a: Answer) -> Result<warp::reply::Response, Rejection> {
    a.map_err(reject)
}

fn body<T: serde::de::DeserializeOwned + Send>(
    edge: &Edge,
) -> impl Filter<Extract = (T,), Error = Rejection> + Clone {
    warp::body::content_length_limit(edge.settings.body_limit_bytes).and(warp::body::json())
}

/// Every route, with errors as JSON and requests counted.
pub fn routes(
    edge: Arc<Edge>,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let e = || with_edge(edge.clone());
    let c = |m: &'static str, p: &'static str| caller(edge.clone(), m, p);

    let health = warp::path!("health")
        .and(warp::get())
        .and_then(|| async { answer(system::health().await) });
    let ready = warp::path!("ready")
        .and(warp::get())
        .and(e())
        .and_then(|edge| async { answer(system::ready(edge).await) });
    let registry = edge.registry.clone();
    let metrics = warp::path!("metrics")
        .and(warp::get())
        .and(c("GET", "/metrics"))
        .map(move |_who: Principal| {
            warp::reply::with_header(
                runtime::metrics::render(&registry),
                "content-type",
                "text/plain; version=0.0.4",
            )
        });
    let openapi = warp::path!("openapi.json")
        .and(warp::get())
        .map(|| warp::reply::json(&openapi::document()));
    let page = warp::path::end().and(warp::get()).map(dashboard::index);
    let assets = warp::path!("assets" / String)
        .and(warp::get())
        .and_then(
            |f: String| async move { dashboard::asset(&f).ok_or_else(warp::reject::not_found) },
        );

    let customers_list = warp::path!("api" / "customers")
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/customers/"))
        .and(warp::query())
        .and_then(|edge, who, q| async move { answer(customers::list(edge, who, q).await) });
    let customers_post = warp::path!("api" / "customers")
        .and(warp::post())
        .and(e())
        .and(c("POST", "/api/customers/"))
        .and(body(&edge))
        .and_then(|edge, who, b| async move { answer(customers::register(edge, who, b).await) });
    let customer = warp::path!("api" / "customers" / String)
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/customers/{id}"))
        .and_then(|id, edge, who| async move { answer(customers::get(edge, id, who).await) });
    let customer_patch = warp::path!("api" / "customers" / String)
        .and(warp::patch())
        .and(e())
        .and(c("PATCH", "/api/customers/{id}"))
        .and(body(&edge))
        .and_then(
            |id, edge, who, b| async move { answer(customers::change(edge, id, who, b).await) },
        );
    let customer_history = warp::path!("api" / "customers" / String / "history")
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/customers/{id}/history"))
        .and_then(|id, edge, who| async move { answer(customers::history(edge, id, who).await) });

    let apply = warp::path!("api" / "loans" / "apply")
        .and(warp::post())
        .and(e())
        .and(c("POST", "/api/loans/apply"))
        .and(body(&edge))
        .and_then(|edge, who, b| async move { answer(loans::apply(edge, who, b).await) });
    let applications = warp::path!("api" / "loans" / "applications")
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/loans/applications"))
        .and(warp::query())
        .and_then(|edge, who, q| async move { answer(loans::applications(edge, who, q).await) });
    let application = warp::path!("api" / "loans" / "applications" / String)
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/loans/applications/{id}"))
        .and_then(
            |id, edge, who| async move { answer(loans::application_detail(edge, id, who).await) },
        );
    let loan_list = warp::path!("api" / "loans" / "loans")
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/loans/loans"))
        .and(warp::query())
        .and_then(|edge, who, q| async move { answer(loans::loans(edge, who, q).await) });
    let loan = warp::path!("api" / "loans" / "loans" / String)
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/loans/loans/{id}"))
        .and_then(|id, edge, who| async move { answer(loans::loan_detail(edge, id, who).await) });
    let whatif = warp::path!("api" / "whatif")
        .and(warp::post())
        .and(e())
        .and(c("POST", "/api/whatif"))
        .and(body(&edge))
        .and_then(|edge, who, b| async move { answer(loans::whatif(edge, who, b).await) });

    macro_rules! portfolio {
        ($seg:literal, $handler:path) => {
            warp::path!("api" / "portfolio" / $seg)
                .and(warp::get())
                .and(e())
                .and(c("GET", concat!("/api/portfolio/", $seg)))
                .and(warp::query())
                .and_then(|edge, _who: Principal, q| async move { answer($handler(edge, q).await) })
        };
    }
    let portfolio = portfolio!("summary", portfolio::summary)
        .or(portfolio!("npa-analysis", portfolio::npa_analysis))
        .or(portfolio!("repayment-stats", portfolio::repayment_stats))
        .or(portfolio!(
            "loan-distribution",
            portfolio::loan_distribution
        ))
        .or(portfolio!(
            "risk-concentration",
            portfolio::risk_concentration
        ))
        .or(portfolio!("vintage", portfolio::vintage))
        .or(portfolio!("roll-rates", portfolio::roll_rates))
        .or(portfolio!("trend", portfolio::trend));

    let stress = warp::path!("api" / "portfolio" / "stress-test")
        .and(warp::post())
        .and(e())
        .and(c("POST", "/api/portfolio/stress-test"))
        .and(body(&edge))
        .and_then(|edge, who, b| async move { answer(risk::stress_test(edge, who, b).await) });
    let drift = warp::path!("api" / "models" / "drift")
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/models/drift"))
        .and(warp::query())
        .and_then(|edge, who, q| async move { answer(risk::drift(edge, who, q).await) });
    let model_list = warp::path!("api" / "models")
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/models"))
        .and_then(|edge, who| async move { answer(models::list(edge, who).await) });
    let model = warp::path!("api" / "models" / String)
        .and(warp::get())
        .and(e())
        .and(c("GET", "/api/models/{version}"))
        .and_then(|v, edge, who| async move { answer(models::detail(edge, v, who).await) });
    let promote = warp::path!("api" / "models" / String / "promote")
        .and(warp::post())
        .and(e())
        .and(c("POST", "/api/models/{version}/promote"))
        .and(body(&edge))
        .and_then(|v, edge, who, b| async move { answer(models::promote(edge, v, who, b).await) });

    let m = edge.metrics.clone();
    let log = warp::log::custom(move |info| {
        let route = template(info.path());
        let status = format!("{}xx", info.status().as_u16() / 100);
        m.requests
            .with_label_values(&[route, method_label(info.method()), &status])
            .inc();
        m.latency
            .with_label_values(&[route])
            .observe(info.elapsed().as_secs_f64());
    });

    health
        .or(ready)
        .or(metrics)
        .or(openapi)
        .or(page)
        .or(assets)
        .or(customers_list)
        .or(customers_post)
        .or(customer)
        .or(customer_patch)
        .or(customer_history)
        .or(apply)
        .or(applications)
        .or(application)
        .or(loan_list)
        .or(loan)
        .or(whatif)
        .or(portfolio)
        .or(stress)
        .or(model_list)
        .or(drift)
        .or(model)
        .or(promote)
        .recover(recover)
        .with(warp::reply::with::headers(security_headers()))
        .with(log)
}

/// Headers on every response: no content sniffing, no referrer, HTTPS only where it is served
/// over TLS, no framing, and nothing stored by caches (answers carry personal data and
/// figures that change every day-end).
fn security_headers() -> warp::http::HeaderMap {
    let mut h = warp::http::HeaderMap::new();
    for (k, v) in [
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("strict-transport-security", "max-age=31536000"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        h.insert(k, warp::http::HeaderValue::from_static(v));
    }
    h
}

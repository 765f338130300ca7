//! The dashboard page at `/`: static assets compiled into the binary (the page, its script and
//! style, and Chart.js from npm, vendored under `assets/vendor/` with its licence). The page
//! reads the API with a key the user pastes (kept in the browser's local storage) or passes in
//! the URL fragment (`/#key=…`), which never reaches the server's logs.

use warp::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use warp::Reply;

const INDEX: &str = include_str!("../assets/index.html");
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
    (
        "chart.umd.min.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/vendor/chart.umd.min.js"),
    ),
];

/// `GET /`.
pub fn index() -> warp::reply::Response {
    let mut res = warp::reply::html(INDEX).into_response();
    res.headers_mut().insert(
        "content-security-policy",
        warp::http::HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'",
        ),
    );
    res
}

/// `GET /assets/{file}`.
pub fn asset(name: &str) -> Option<warp::reply::Response> {
    let (_, mime, body) = ASSETS.iter().find(|(n, _, _)| *n == name)?;
    let mut res = warp::reply::Response::new((*body).into());
    res.headers_mut()
        .insert(CONTENT_TYPE, warp::http::HeaderValue::from_static(mime));
    res.headers_mut().insert(
        CACHE_CONTROL,
        warp::http::HeaderValue::from_static("public, max-age=300"),
    );
    Some(res)
}

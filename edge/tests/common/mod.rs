//! The edge on a scratch book and an embedded Kafka cluster, shared by the edge's tests: the
//! edge runs with its stage's database role only, with a key of each role.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use edge::auth::{create_key, Role};
use edge::{Edge, EdgeSettings};
use runtime::kafka::EmbeddedKafka;
use runtime::postgres::connect;
use runtime::settings::Topics;
use tests::scratch::ScratchDatabase;
use tokio_util::sync::CancellationToken;

pub struct Harness {
    pub _kafka: EmbeddedKafka,
    pub _db: ScratchDatabase,
    pub edge: Arc<Edge>,
    /// The migrating role's pool, for seeding what other stages write.
    pub owner: sqlx::PgPool,
    pub admin: String,
    pub analyst: String,
    pub originator: String,
    pub shutdown: CancellationToken,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// An edge with `settings` on a fresh book.
pub async fn spawn_edge(settings: EdgeSettings) -> Harness {
    let topics = Topics::default();
    let kafka = EmbeddedKafka::start(1, &topics.all()).unwrap();
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 4).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    // The edge runs with its stage's role only, as a deployment grants it.
    let edge_pool = connect(&db.login_as("credit_risk_edge").await.unwrap(), 4)
        .await
        .unwrap();
    let shutdown = CancellationToken::new();
    let edge = edge::build(
        edge_pool.clone(),
        kafka.bootstrap_servers(),
        topics,
        settings,
        risk_core::settings::DomainSettings::default(),
        prometheus::Registry::new(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let key = |role| {
        let pool = edge_pool.clone();
        async move { create_key(&pool, role, "test", "test").await.unwrap().key }
    };
    Harness {
        admin: key(Role::Admin).await,
        analyst: key(Role::Analyst).await,
        originator: key(Role::Originator).await,
        _kafka: kafka,
        _db: db,
        edge,
        owner: pool,
        shutdown,
    }
}

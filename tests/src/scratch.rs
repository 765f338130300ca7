//! A database of its own for each test: a fresh database on the server named by
//! `TEST_DATABASE_URL` when set (CI starts one), else a throw-away private cluster; and logins
//! that hold only one stage's role, to run a stage under the privileges it has in production.

use runtime::postgres::{connect, uuid_like, with_database, with_user, EmbeddedPostgres, PgError};
use runtime::settings::Secret;

/// A fresh database; its private cluster (when one was started) stops when this is dropped.
#[derive(Debug)]
pub struct ScratchDatabase {
    /// URL of the fresh database.
    pub url: Secret,
    _cluster: Option<EmbeddedPostgres>,
}

impl ScratchDatabase {
    /// Create the database (and the cluster, when no server is given).
    pub async fn create() -> Result<Self, PgError> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(server) if !server.trim().is_empty() => {
                let server = Secret::new(server);
                let name = format!("t_{}", uuid_like());
                let pool = connect(&server, 1).await?;
                sqlx::query(&format!("CREATE DATABASE {name}"))
                    .execute(&pool)
                    .await
                    .map_err(|source| PgError::Admin {
                        what: format!("creating database {name}"),
                        source,
                    })?;
                pool.close().await;
                let url = Secret::new(with_database(server.expose(), &name));
                Ok(Self {
                    url,
                    _cluster: None,
                })
            }
            _ => {
                let cluster = EmbeddedPostgres::start_ephemeral().await?;
                Ok(Self {
                    url: cluster.url().clone(),
                    _cluster: Some(cluster),
                })
            }
        }
    }

    /// A login for this database that holds only `stage_role`'s privileges (one of the roles
    /// the migrations create, e.g. `credit_risk_edge`): its URL. Run the migrations first.
    pub async fn login_as(&self, stage_role: &str) -> Result<Secret, PgError> {
        let pool = connect(&self.url, 1).await?;
        let admin = |what: String| move |source| PgError::Admin { what, source };
        let database: String = sqlx::query_scalar("SELECT current_database()")
            .fetch_one(&pool)
            .await
            .map_err(admin("reading the database's name".into()))?;
        let user = format!("{database}_{stage_role}");
        sqlx::query(&format!(
            "CREATE ROLE \"{user}\" LOGIN IN ROLE \"{stage_role}\""
        ))
        .execute(&pool)
        .await
        .map_err(admin(format!("creating a login in role {stage_role}")))?;
        pool.close().await;
        Ok(Secret::new(with_user(self.url.expose(), &user)))
    }
}

//! `credit-risk serve` and `credit-risk keys`: the HTTP edge and its API keys.

use anyhow::Context;
use clap::{Args, Subcommand};
use edge::auth::Role;

use crate::settings::Settings;

/// Flags of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Listen address (default `[infra.http] bind`).
    #[arg(long)]
    bind: Option<String>,
    /// Serve /metrics without a key on this address too, for Prometheus (default
    /// `[edge] metrics_bind`; on the API's port /metrics needs an analyst or admin key).
    #[arg(long)]
    metrics_bind: Option<String>,
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        /// originator (LOS: customers, applications), analyst (portfolio, models; no personal
        /// data) or admin (everything, promotions).
        #[arg(long)]
        role: String,
        /// What the key is for.
        #[arg(long, default_value = "")]
        label: String,
        /// Days until the key stops working (never when not given).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=3650))]
        expires_in_days: Option<u32>,
    },
    /// List keys (ids, roles, labels; never secrets).
    List,
    /// Revoke a key by its id.
    Revoke {
        /// The key's id (the part after `cr_`).
        key_id: String,
    },
}

async fn database(settings: &Settings) -> anyhow::Result<(runtime::infra::Infra, sqlx::PgPool)> {
    let infra = runtime::infra::Infra::start(&settings.infra, true).await?;
    let url = infra
        .database_url
        .clone()
        .context("needs PostgreSQL (DATABASE_URL)")?;
    let pool = runtime::postgres::connect(&url, settings.infra.database.max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    portfolio_aggregator::db::migrate(&pool)
        .await
        .context("migrating the book's schema")?;
    Ok((infra, pool))
}

/// Run the edge until Ctrl-C.
pub async fn serve(args: ServeArgs, mut settings: Settings) -> anyhow::Result<()> {
    if let Some(m) = &args.metrics_bind {
        settings.edge.metrics_bind.clone_from(m);
    }
    let shutdown = runtime::shutdown::on_signals();
    let (infra, pool) = database(&settings).await?;
    if infra.embedded_kafka().is_some() {
        println!("Embedded Kafka bootstrap servers: {}", infra.brokers);
    }
    let edge = edge::build(
        pool.clone(),
        &infra.brokers,
        settings.infra.kafka.topics.clone(),
        settings.edge.clone(),
        settings.domain.clone(),
        prometheus::Registry::new(),
        shutdown.clone(),
    )
    .await?;
    let bind = args
        .bind
        .unwrap_or_else(|| settings.infra.http.bind.clone());
    let (addr, task) = edge::serve(edge, &bind, shutdown.clone())?;
    println!("Serving http://{addr}/ (API under /api, OpenAPI at /openapi.json)");
    let _ = task.await;
    pool.close().await;
    infra.stop();
    Ok(())
}

/// Manage API keys.
pub async fn keys(cmd: KeysCommand, settings: Settings) -> anyhow::Result<()> {
    let (infra, pool) = database(&settings).await?;
    let actor = "credit-risk keys";
    let result = match cmd {
        KeysCommand::Create {
            role,
            label,
            expires_in_days,
        } => {
            let role = Role::parse(&role).with_context(|| {
                format!("unknown role {role:?}: use originator, analyst or admin")
            })?;
            let expires_at =
                expires_in_days.map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d)));
            let k = edge::auth::create_key_until(&pool, role, &label, actor, expires_at).await?;
            println!("{}", k.key);
            eprintln!(
                "Key {} ({}) created; it is shown only now.",
                k.key_id,
                role.as_str()
            );
            Ok(())
        }
        KeysCommand::List => {
            for k in edge::auth::list_keys(&pool).await? {
                let state = match (k.revoked_at, k.expires_at) {
                    (Some(r), _) => format!("revoked {}", r.format("%Y-%m-%d %H:%M")),
                    (None, Some(e)) if e <= chrono::Utc::now() => {
                        format!("expired {}", e.format("%Y-%m-%d %H:%M"))
                    }
                    (None, Some(e)) => format!("active until {}", e.format("%Y-%m-%d %H:%M")),
                    (None, None) => "active".into(),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    k.key_id,
                    k.role,
                    k.created_at.format("%Y-%m-%d %H:%M"),
                    state,
                    k.label
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { key_id } => {
            if edge::auth::revoke_key(&pool, &key_id, actor).await? {
                println!("Revoked {key_id}");
                Ok(())
            } else {
                Err(anyhow::anyhow!("no active key {key_id}"))
            }
        }
    };
    pool.close().await;
    infra.stop();
    result
}

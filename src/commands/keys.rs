//! `credit-risk keys`: API keys created (shown once, stored hashed), listed and revoked.

use anyhow::Context;
use clap::Subcommand;
use edge::auth::Role;
use platform::Settings;
use runtime::infra::Need;

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

/// Manage API keys.
pub async fn run(cmd: KeysCommand, settings: Settings) -> anyhow::Result<()> {
    let (infra, pool) = super::open_book(
        &settings,
        Need::Unused,
        settings.infra.database.max_connections,
    )
    .await?;
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
                let state = k.state(chrono::Utc::now());
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

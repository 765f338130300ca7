//! PostgreSQL: connection pools and the embedded private cluster.
//!
//! When no `DATABASE_URL` is set, [`EmbeddedPostgres`] runs Debian's (or any PATH) `initdb` and
//! `pg_ctl` on a private data directory and a free loopback port. PostgreSQL refuses to run as
//! root; as root the server runs as the `postgres` system user (created by Debian's package),
//! and when that user cannot reach the requested directory a private one under the system temp
//! directory is used instead, and the log says so.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, PgPool};
use thiserror::Error;

use crate::settings::Secret;

/// Name of the database the product uses inside the private cluster.
pub const DATABASE: &str = "credit_risk";

/// Why PostgreSQL could not be started or reached.
#[derive(Debug, Error)]
pub enum PgError {
    /// `initdb`/`pg_ctl` are not installed.
    #[error(
        "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in \
         /usr/lib/postgresql/*/bin; install them with `apt-get install postgresql` \
         or set DATABASE_URL to an existing server"
    )]
    NotInstalled,
    /// Running as root without a `postgres` user to run the server as.
    #[error(
        "running as root, and PostgreSQL refuses to run as root: no `postgres` system user \
         exists to run it as; install Debian's postgresql package (it creates the user) or run \
         as a normal user"
    )]
    NoPostgresUser,
    /// A server command failed.
    #[error("{command} failed: {detail}")]
    Command {
        /// What was run.
        command: String,
        /// Its output (no secrets: the private cluster trusts loopback, no passwords exist).
        detail: String,
    },
    /// File-system trouble with the data directory.
    #[error("data directory {path}: {source}")]
    Io {
        /// Directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// The database URL does not parse (the URL itself is a secret and is not shown).
    #[error("the database URL does not parse")]
    BadUrl,
    /// Connecting failed.
    #[error("cannot connect to PostgreSQL")]
    Connect(#[source] sqlx::Error),
    /// A statement of the server's administration (creating a database or a login) failed.
    #[error("PostgreSQL refused {what}")]
    Admin {
        /// What was asked.
        what: String,
        /// The server's answer.
        #[source]
        source: sqlx::Error,
    },
}

/// Open a pool on `url`. The URL is a secret and never appears in the error.
pub async fn connect(url: &Secret, max_connections: u32) -> Result<PgPool, PgError> {
    let options: PgConnectOptions = url.expose().parse().map_err(|_| PgError::BadUrl)?;
    let options = options.log_statements(tracing::log::LevelFilter::Debug);
    PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
        .map_err(PgError::Connect)
}

/// `url` with its user replaced by `user` and no password.
pub fn with_user(url: &str, user: &str) -> String {
    let Some(i) = url.find("://") else {
        return url.to_string();
    };
    let (scheme, rest) = url.split_at(i + 3);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    format!("{scheme}{user}@{host}{tail}")
}

/// `url` with its database name replaced by `name` (query parameters kept).
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let prefix = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{prefix}/{name}?{q}"),
        None => format!("{prefix}/{name}"),
    }
}

/// A private PostgreSQL cluster, stopped when dropped.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    data_dir: PathBuf,
    bin_dir: PathBuf,
    run_as: Option<String>,
    port: u16,
    url: Secret,
    remove_on_stop: bool,
    stopped: bool,
}

/// Whether this process runs as root (uid 0).
pub fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// Directory holding `initdb` and `pg_ctl`: PATH first, then the newest Debian installation.
pub fn find_bin_dir() -> Result<PathBuf, PgError> {
    let on_path = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for dir in on_path {
        if dir.join("initdb").is_file() && dir.join("pg_ctl").is_file() {
            // The server's own directory (where `createdb` is too), also when PATH holds links.
            let own = std::fs::canonicalize(dir.join("pg_ctl"))
                .ok()
                .and_then(|p| p.parent().map(Path::to_path_buf))
                .filter(|d| d.join("createdb").is_file());
            return Ok(own.unwrap_or(dir));
        }
    }
    let mut debian: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            (bin.join("initdb").is_file() && bin.join("pg_ctl").is_file()).then_some((version, bin))
        })
        .collect();
    debian.sort();
    debian
        .pop()
        .map(|(_, bin)| bin)
        .ok_or(PgError::NotInstalled)
}

fn free_port() -> Result<u16, PgError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|source| PgError::Io {
        path: PathBuf::from("127.0.0.1:0"),
        source,
    })?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|source| PgError::Io {
            path: PathBuf::from("127.0.0.1:0"),
            source,
        })
}

fn run(command: &mut Command) -> Result<Output, PgError> {
    let shown = format!("{:?}", command.get_program());
    let output = command.output().map_err(|e| PgError::Command {
        command: shown.clone(),
        detail: e.to_string(),
    })?;
    if output.status.success() {
        Ok(output)
    } else {
        Err(PgError::Command {
            command: shown,
            detail: format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
            .trim()
            .to_string(),
        })
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PgError + '_ {
    move |source| PgError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl EmbeddedPostgres {
    /// Start (creating if needed) a cluster in `dir`, kept across runs.
    pub async fn start(dir: &Path) -> Result<Self, PgError> {
        Self::start_with(dir, false).await
    }

    /// Start a throw-away cluster in a fresh temporary directory, removed on stop; fsync off.
    pub async fn start_ephemeral() -> Result<Self, PgError> {
        let dir = std::env::temp_dir().join(format!(
            "credit-risk-pg-{}-{}",
            std::process::id(),
            uuid_like()
        ));
        Self::start_with(&dir, true).await
    }

    async fn start_with(dir: &Path, ephemeral: bool) -> Result<Self, PgError> {
        let path = dir.to_path_buf();
        let dir = path.clone();
        let pg = tokio::task::spawn_blocking(move || Self::start_blocking(&dir, ephemeral))
            .await
            .map_err(|e| PgError::Io {
                path,
                source: std::io::Error::other(e),
            })??;
        pg.create_database().await?;
        Ok(pg)
    }

    fn start_blocking(dir: &Path, ephemeral: bool) -> Result<Self, PgError> {
        let bin_dir = find_bin_dir()?;
        let run_as = if is_root() {
            run(Command::new("id").args(["-u", "postgres"]))
                .map_err(|_| PgError::NoPostgresUser)?;
            Some("postgres".to_string())
        } else {
            None
        };
        let mut data_dir = std::path::absolute(dir).map_err(io(dir))?;
        std::fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
        if let Some(user) = &run_as {
            if !reachable_by(user, &data_dir) {
                let fallback = std::env::temp_dir().join(format!(
                    "credit-risk-pg{}",
                    data_dir.to_string_lossy().replace(['/', ' '], "_")
                ));
                tracing::warn!(
                    requested = %data_dir.display(),
                    using = %fallback.display(),
                    "The postgres user cannot reach the data directory; using a private one"
                );
                data_dir = fallback;
                std::fs::create_dir_all(&data_dir).map_err(io(&data_dir))?;
            }
            run(Command::new("chown")
                .args(["-R", &format!("{user}:{user}")])
                .arg(&data_dir))?;
        }
        let mut pg = Self {
            data_dir,
            bin_dir,
            run_as,
            port: free_port()?,
            url: Secret::default(),
            remove_on_stop: ephemeral,
            stopped: true,
        };
        pg.init_and_start(ephemeral)?;
        Ok(pg)
    }

    /// Create the product database unless it exists, with the server's own `createdb`.
    async fn create_database(&self) -> Result<(), PgError> {
        let mut createdb = self.command("createdb");
        createdb.args([
            "-h",
            "127.0.0.1",
            "-p",
            &self.port.to_string(),
            "-U",
            "postgres",
            DATABASE,
        ]);
        let io = |source| PgError::Io {
            path: self.bin_dir.join("createdb"),
            source,
        };
        let output = tokio::task::spawn_blocking(move || createdb.output())
            .await
            .map_err(|e| io(std::io::Error::other(e)))?
            .map_err(io)?;
        if output.status.success()
            || String::from_utf8_lossy(&output.stderr).contains("already exists")
        {
            return Ok(());
        }
        Err(PgError::Command {
            command: "createdb".into(),
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        })
    }

    /// Connection URL of the product database (no password: the cluster trusts loopback).
    pub fn url(&self) -> &Secret {
        &self.url
    }

    /// Port the server listens on (127.0.0.1).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where the data lives.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Stop the server (fast shutdown), and remove an ephemeral cluster's files.
    pub fn stop(&mut self) {
        if self.stopped {
            return;
        }
        self.stopped = true;
        let result = run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", "fast", "-w", "stop"]));
        if let Err(error) = result {
            tracing::warn!(%error, "Stopping the private PostgreSQL failed");
        }
        if self.remove_on_stop {
            let _ = std::fs::remove_dir_all(&self.data_dir);
        }
    }

    /// Crash and restart the server in place (same data, same port): an immediate shutdown,
    /// `down` of outage, then a start with crash recovery. For failure tests.
    pub fn crash_and_restart(&mut self, down: std::time::Duration) -> Result<(), PgError> {
        run(self.command("pg_ctl").arg("-D").arg(&self.data_dir).args([
            "-m",
            "immediate",
            "-w",
            "stop",
        ]))?;
        std::thread::sleep(down);
        self.init_and_start(self.remove_on_stop)
    }

    fn command(&self, program: &str) -> Command {
        let bin = self.bin_dir.join(program);
        match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(bin);
                c
            }
            None => Command::new(bin),
        }
    }

    fn init_and_start(&mut self, ephemeral: bool) -> Result<(), PgError> {
        if !self.data_dir.join("PG_VERSION").exists() {
            let mut initdb = self.command("initdb");
            initdb.arg("-D").arg(&self.data_dir).args([
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
            ]);
            if ephemeral {
                initdb.arg("--no-sync");
            }
            run(&mut initdb)?;
        }
        let mut options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories=''",
            self.port
        );
        if ephemeral {
            options.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
        }
        let log = self.data_dir.join("server.log");
        run(self
            .command("pg_ctl")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "-o", &options, "start"]))?;
        self.stopped = false;
        self.url = Secret::new(format!(
            "postgres://postgres@127.0.0.1:{}/{DATABASE}",
            self.port
        ));
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `user` can reach `dir`: its parent and every ancestor must be searchable (the
/// directory itself is handed to the user with chown).
fn reachable_by(user: &str, dir: &Path) -> bool {
    let parent = dir.parent().unwrap_or(dir);
    Command::new("runuser")
        .args(["-u", user, "--", "test", "-x"])
        .arg(parent)
        .status()
        .is_ok_and(|s| s.success())
}

/// A short unique suffix for throw-away directories and databases.
pub fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{nanos:x}{}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_name_is_replaced_and_the_query_kept() {
        assert_eq!(
            with_database("postgres://u:p@h:5/db?sslmode=disable", "t1"),
            "postgres://u:p@h:5/t1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h:5", "t1"), "postgres://h:5/t1");
        assert_eq!(
            with_user("postgres://u:p@h:5/db?x=1", "edge"),
            "postgres://edge@h:5/db?x=1"
        );
        assert_eq!(
            with_user("postgres://h:5/db", "edge"),
            "postgres://edge@h:5/db"
        );
    }
}

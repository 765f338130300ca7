//! Only `demo` and `infra` start embedded servers: every other command started without the
//! Kafka or PostgreSQL it needs refuses at once, naming the setting, and starts nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_credit-risk");

/// A command line, the environment it adds, and the setting its refusal must name.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

/// Run `args` with no servers configured but `env`; its exit status and stderr.
fn run(args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .current_dir(dir.path())
        .env_remove("KAFKA_BROKERS")
        .env_remove("DATABASE_URL")
        .env_remove("CREDIT_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, _) in std::env::vars().filter(|(k, _)| k.starts_with("CREDIT__")) {
        cmd.env_remove(k);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(60) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`credit-risk {}` did not refuse within 60 s",
                args.join(" ")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.success(), err)
}

#[test]
fn every_stage_without_its_servers_refuses_naming_the_setting() {
    // A broker address that is never contacted: the database check comes first.
    let kafka = [("KAFKA_BROKERS", "127.0.0.1:9")];
    let cases: [Case; 9] = [
        (&["score"], &[], "KAFKA_BROKERS"),
        (&["ingest"], &[], "KAFKA_BROKERS"),
        (&["aggregate"], &[], "KAFKA_BROKERS"),
        (&["aggregate"], &kafka, "DATABASE_URL"),
        (&["serve"], &[], "KAFKA_BROKERS"),
        (&["serve"], &kafka, "DATABASE_URL"),
        (&["keys", "list"], &[], "DATABASE_URL"),
        (&["train", "--from-db"], &[], "DATABASE_URL"),
        (&["train", "--from-db"], &kafka, "DATABASE_URL"),
    ];
    for (args, env, setting) in cases {
        let (ok, err) = run(args, env);
        let what = format!("`credit-risk {}`", args.join(" "));
        assert!(!ok, "{what} started without its servers:\n{err}");
        assert!(
            err.contains(&format!("Error: {setting} (or [infra.")) && err.contains("is not set"),
            "{what} did not name {setting}:\n{err}"
        );
        assert!(
            !err.contains("Embedded") && !err.contains("Private PostgreSQL started"),
            "{what} started an embedded server:\n{err}"
        );
    }
}

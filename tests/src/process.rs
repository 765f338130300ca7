//! Child processes of the binary under test: killed (SIGKILL) when dropped, and a Kafka broker
//! in a process of its own.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A child process, SIGKILLed and reaped when dropped.
pub struct Killed(pub Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `credit-risk infra --kafka-only` (the binary at `bin`) with `partitions` per topic; returns
/// it and its bootstrap address.
#[allow(clippy::expect_used)]
pub fn start_broker(bin: &str, partitions: i32) -> (Killed, String) {
    let mut child = Command::new(bin)
        .args(["infra", "--kafka-only"])
        .env_remove("KAFKA_BROKERS")
        .env(
            "CREDIT__INFRA__KAFKA__TOPICS__PARTITIONS",
            partitions.to_string(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the broker");
    let stdout = child.stdout.take().expect("broker stdout");
    let mut lines = BufReader::new(stdout).lines();
    let bootstrap = loop {
        let line = lines
            .next()
            .expect("broker exited")
            .expect("read the broker's output");
        if let Some(b) = line.strip_prefix("Kafka bootstrap servers: ") {
            break b.trim().to_string();
        }
    };
    // Keep draining the pipe so the broker never blocks on a full stdout.
    std::thread::spawn(move || for _ in lines {});
    (Killed(child), bootstrap)
}

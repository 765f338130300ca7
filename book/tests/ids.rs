//! The book's id rule (the `entity_id` domain) accepts exactly what the codec's
//! `schemas::validate::valid_id` accepts: 1-64 characters of `[A-Za-z0-9_-]`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use runtime::postgres::connect;
use schemas::validate::valid_id;
use tests::scratch::ScratchDatabase;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_database_and_the_codec_accept_the_same_ids() {
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 1).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let mut ids: Vec<String> = [
        "",
        "A",
        "LN-000001",
        "a_b-c",
        " x",
        "x ",
        "x\n",
        "\nx",
        "é",
        "PAY.1",
        "x$",
        "^x",
        "a/b",
        "ab\u{0}",
        "Ⅻ",
        "٣",
    ]
    .iter()
    .map(|s| (*s).to_string())
    .chain(["a".repeat(64), "a".repeat(65), "é".repeat(32)])
    .collect();
    let alphabet: Vec<char> = "AZaz09_-.$^ \n\té/\\[]{}()*+?|Ⅻ".chars().collect();
    let mut rng = ChaCha8Rng::seed_from_u64(17);
    for _ in 0..5_000 {
        let len = rng.gen_range(0..70);
        ids.push(
            (0..len)
                .map(|_| {
                    if rng.gen_bool(0.8) {
                        char::from(b"abcXYZ019_-"[rng.gen_range(0..11)])
                    } else {
                        alphabet[rng.gen_range(0..alphabet.len())]
                    }
                })
                .collect(),
        );
    }
    // NUL cannot be stored in text at all: those are refused by both, by construction.
    ids.retain(|s| !s.contains('\u{0}'));
    for id in &ids {
        let ok = sqlx::query("SELECT $1::entity_id")
            .bind(id)
            .execute(&pool)
            .await
            .is_ok();
        assert_eq!(ok, valid_id(id), "{id:?}");
    }
}

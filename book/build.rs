//! The migrations are embedded in the crate (`sqlx::migrate!`): a changed migration rebuilds it.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}

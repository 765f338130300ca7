//! `credit-risk demo`: the whole product in one process on the embedded defaults.

use clap::Args;
use platform::demo::DemoRequest;
use platform::Settings;

/// Flags of `demo`; each overrides `[demo]`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Months of history before the live stream.
    #[arg(long)]
    history_months: Option<u32>,
    /// Applications a month.
    #[arg(long)]
    applications_per_month: Option<u64>,
    /// Months of live stream.
    #[arg(long)]
    live_months: Option<u32>,
    /// Simulated business days per minute of the live stream.
    #[arg(long)]
    days_per_minute: Option<f64>,
    /// Retrain every this many simulated days (0: never).
    #[arg(long)]
    retrain_every_days: Option<u32>,
    /// Listen address of the dashboard and API (default `[infra.http] bind`).
    #[arg(long)]
    bind: Option<String>,
    /// Stop once the history is loaded, the first model promoted and the live stream has run
    /// this many simulated days (for scripted checks); default: run until Ctrl-C.
    #[arg(long)]
    exit_after_days: Option<u32>,
}

/// Run the demo with the flags over `[demo]`.
pub async fn run(args: DemoArgs, mut settings: Settings) -> anyhow::Result<()> {
    let demo = &mut settings.demo;
    demo.history_months = args.history_months.unwrap_or(demo.history_months);
    demo.applications_per_month = args
        .applications_per_month
        .unwrap_or(demo.applications_per_month);
    demo.live_months = args.live_months.unwrap_or(demo.live_months);
    demo.days_per_minute = args.days_per_minute.unwrap_or(demo.days_per_minute);
    demo.retrain_every_days = args.retrain_every_days.unwrap_or(demo.retrain_every_days);
    platform::demo::run(DemoRequest {
        settings,
        bind: args.bind,
        exit_after_days: args.exit_after_days,
    })
    .await
}

//! Every figure of every portfolio endpoint reconciles with the raw book as of its business
//! date. A generated book is applied through the aggregator, day-end by day-end; an oracle
//! built only from the raw records the book was made of (customers, applications, decisions,
//! disbursals with their schedules, payments, write-offs and losses, replayed through
//! `risk_core::book::Book`, the reference semantics) recomputes the summary, NPA analysis,
//! repayment statistics, distribution, concentration with its Herfindahl indices, vintage
//! curves, roll rates, trend and ECL, never reading the product's status, snapshot or
//! aggregate tables. Each is compared with the API's answer for that date (`?as_of=`): counts
//! and paise exactly, ratios to 1e-9.
//!
//! The dates: the last day of a month, the first day of the next (its first day-end rolls the
//! month, on a day with disbursals, payoffs and a write-off), a date in the middle of a later
//! month, and the last closed date (no `as_of`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet, HashMap};

use book::message::{Incoming, Payload, Source};
use book::queries::{
    Group, LoanDistribution, NpaAnalysis, PortfolioSummary, RepaymentStats, RiskConcentration,
    RollRates, Trend, Vintages,
};
use book::write::{apply_batch, outcome_symbol, ApplyContext};
use chrono::{DateTime, Datelike, Months, NaiveDate, TimeZone, Utc};
use edge::auth::{create_key, Role};
use edge::EdgeSettings;
use ingest::generator::sink::MemorySink;
use ingest::generator::GeneratorSettings;
use risk_core::book::{Book, Disbursal, Loan, LoanState};
use risk_core::settings::DomainSettings;
use runtime::kafka::EmbeddedKafka;
use runtime::postgres::connect;
use runtime::settings::Topics;
use schemas::{LoanEvent, LoanEventBody};
use serde::de::DeserializeOwned;
use sqlx::PgPool;
use tests::scratch::ScratchDatabase;
use tokio_util::sync::CancellationToken;

/// One loan as the oracle sees it after a day-end.
#[derive(Debug, Clone)]
struct Row {
    state: &'static str,
    class: String,
    stage: i16,
    dpd: i32,
    outstanding: i64,
    provision: i64,
    ecl: i64,
    written_off: i64,
    principal: i64,
    ever_90: bool,
    purpose: String,
    region: String,
    grade: String,
    vintage: NaiveDate,
}

impl Row {
    fn npa(&self) -> bool {
        self.state == "ACTIVE"
            && matches!(
                self.class.as_str(),
                "SUBSTANDARD" | "D1" | "D2" | "D3" | "LOSS"
            )
    }

    fn bucket(&self) -> String {
        match self.state {
            "CLOSED" => "CLOSED".into(),
            "WRITTEN_OFF" => "WRITTEN_OFF".into(),
            _ => match self.dpd {
                0 => "CURRENT".into(),
                1..=30 => "1-30".into(),
                31..=60 => "31-60".into(),
                61..=90 => "61-90".into(),
                _ => "90+".into(),
            },
        }
    }
}

fn state_name(s: LoanState) -> &'static str {
    match s {
        LoanState::Active => "ACTIVE",
        LoanState::Closed => "CLOSED",
        LoanState::WrittenOff => "WRITTEN_OFF",
    }
}

fn ratio(n: i64, d: i64) -> f64 {
    if d > 0 {
        n as f64 / d as f64
    } else {
        0.0
    }
}

fn close(a: f64, b: f64, what: &str) {
    assert!((a - b).abs() <= 1e-9, "{what}: api {a}, oracle {b}");
}

fn month_index(d: NaiveDate) -> i32 {
    d.year() * 12 + d.month0() as i32
}

/// Groups of `rows` by `key`, as the breakdown endpoints define them.
fn groups(rows: &[Row], key: impl Fn(&Row) -> String) -> Vec<Group> {
    let mut cells: BTreeMap<String, Group> = BTreeMap::new();
    for r in rows {
        let g = cells.entry(key(r)).or_insert_with_key(|k| Group {
            key: k.clone(),
            loans: 0,
            active: 0,
            outstanding: 0,
            share: 0.0,
            npa_amount: 0,
            provisions: 0,
            ecl: 0,
            disbursed: 0,
            defaulted: 0,
        });
        g.loans += 1;
        g.active += i64::from(r.state == "ACTIVE");
        g.outstanding += r.outstanding;
        g.npa_amount += if r.npa() { r.outstanding } else { 0 };
        g.provisions += r.provision;
        g.ecl += r.ecl;
        g.disbursed += r.principal;
        g.defaulted += i64::from(r.ever_90);
    }
    let total: i64 = cells.values().map(|g| g.outstanding).sum();
    cells
        .into_values()
        .map(|mut g| {
            g.share = ratio(g.outstanding, total);
            g
        })
        .collect()
}

fn same_groups(api: &[Group], oracle: &[Group], what: &str) {
    assert_eq!(api.len(), oracle.len(), "{what}: groups");
    for (a, o) in api.iter().zip(oracle) {
        close(a.share, o.share, &format!("{what} {} share", a.key));
        let strip = |g: &Group| Group {
            share: 0.0,
            ..g.clone()
        };
        assert_eq!(strip(a), strip(o), "{what}");
    }
}

/// Applications' counts to a date: (scored, approved, referred, declined).
type Decided = (i64, i64, i64, i64);

/// The summary's figures from the rows, the repayments and the decisions.
fn summary(rows: &[Row], collected: i64, decided: Decided) -> PortfolioSummary {
    let sum = |f: &dyn Fn(&Row) -> i64| rows.iter().map(f).sum::<i64>();
    let count = |f: &dyn Fn(&Row) -> bool| rows.iter().filter(|r| f(r)).count() as i64;
    let outstanding = sum(&|r| r.outstanding);
    let npa = sum(&|r| if r.npa() { r.outstanding } else { 0 });
    let npa_prov = sum(&|r| if r.npa() { r.provision } else { 0 });
    let (scored, approved, referred, declined) = decided;
    PortfolioSummary {
        business_date: NaiveDate::MIN,
        total_loans: rows.len() as i64,
        active_loans: count(&|r| r.state == "ACTIVE"),
        defaulted_loans: count(&|r| r.ever_90),
        closed_loans: count(&|r| r.state == "CLOSED"),
        written_off_loans: count(&|r| r.state == "WRITTEN_OFF"),
        total_disbursed: sum(&|r| r.principal),
        outstanding,
        npa_amount: npa,
        npa_loans: count(&|r| r.npa()),
        npa_ratio: ratio(npa, outstanding),
        net_npa_ratio: ratio(npa - npa_prov, outstanding - npa_prov),
        net_npa_amount: npa - npa_prov,
        npa_provisions: npa_prov,
        provisions: sum(&|r| r.provision),
        provision_coverage: ratio(npa_prov, npa),
        par30: ratio(
            sum(&|r| if r.dpd > 30 { r.outstanding } else { 0 }),
            outstanding,
        ),
        par90: ratio(
            sum(&|r| if r.dpd > 90 { r.outstanding } else { 0 }),
            outstanding,
        ),
        ecl: sum(&|r| r.ecl),
        default_rate: ratio(count(&|r| r.ever_90), rows.len() as i64),
        approval_rate: ratio(approved, approved + declined),
        referral_rate: ratio(referred, scored),
        decided: scored,
        approved,
        referred,
        declined,
        written_off_amount: sum(&|r| r.written_off),
        collected,
    }
}

fn same_summary(a: &PortfolioSummary, o: &PortfolioSummary, day: NaiveDate) {
    let w = |f: &str| format!("summary {f} on {day}");
    for (name, x, y) in [
        ("npa_ratio", a.npa_ratio, o.npa_ratio),
        ("net_npa_ratio", a.net_npa_ratio, o.net_npa_ratio),
        (
            "provision_coverage",
            a.provision_coverage,
            o.provision_coverage,
        ),
        ("par30", a.par30, o.par30),
        ("par90", a.par90, o.par90),
        ("default_rate", a.default_rate, o.default_rate),
        ("approval_rate", a.approval_rate, o.approval_rate),
        ("referral_rate", a.referral_rate, o.referral_rate),
    ] {
        close(x, y, &w(name));
    }
    let strip = |s: &PortfolioSummary| PortfolioSummary {
        business_date: day,
        npa_ratio: 0.0,
        net_npa_ratio: 0.0,
        provision_coverage: 0.0,
        par30: 0.0,
        par90: 0.0,
        default_rate: 0.0,
        approval_rate: 0.0,
        referral_rate: 0.0,
        ..s.clone()
    };
    assert_eq!(strip(a), strip(o), "{}", w("amounts and counts"));
}

fn generated() -> MemorySink {
    let settings = GeneratorSettings {
        seed: 29,
        applications: 2_000,
        months: 6,
        performance_months: 8,
        target_default_rate: 0.15,
        ..GeneratorSettings::default()
    };
    MemorySink::generated(&settings, &DomainSettings::default()).unwrap()
}

/// A first of the month with disbursals, in the middle of the book's disbursal months; a
/// foreclosure (the payoff quote) of one open loan and the write-off of the most delinquent
/// other one are added to its events, so the day has disbursals, a payoff and a write-off.
fn first_of_month_with_everything(sink: &mut MemorySink) -> NaiveDate {
    let firsts: BTreeSet<NaiveDate> = sink
        .events
        .iter()
        .filter_map(|e| match &e.body {
            LoanEventBody::LoanDisbursed(d) if d.disbursed_on.day() == 1 => Some(d.disbursed_on),
            _ => None,
        })
        .collect();
    let day = *firsts
        .iter()
        .nth(firsts.len() / 2)
        .expect("disbursals on a first");
    let tick = sink
        .events
        .iter()
        .position(
            |x| matches!(&x.body, LoanEventBody::BusinessDayClosed(b) if b.business_date == day),
        )
        .unwrap();
    // The book just before that day's close, from the raw events alone.
    let mut book = Book::new(DomainSettings::default());
    for e in &sink.events[..tick] {
        match &e.body {
            LoanEventBody::LoanDisbursed(d) => {
                book.disburse(Disbursal::from_event(d, schemas::Purpose::Personal, None));
            }
            LoanEventBody::PaymentReceived(p) => {
                let _ = book.pay(&p.loan_id, p.amount, p.paid_on);
            }
            LoanEventBody::LoanWrittenOff(a) => {
                let _ = book.write_off(&a.loan_id, a.on);
            }
            LoanEventBody::LoanMarkedLoss(a) => {
                let _ = book.mark_loss(&a.loan_id, a.on);
            }
            LoanEventBody::BusinessDayClosed(b) => book.close_day(b.business_date, &|_, _| None),
        }
    }
    // Loans with no event of their own that day.
    let busy: BTreeSet<&str> = sink
        .events
        .iter()
        .filter(|e| e.body.date() == day)
        .filter_map(|e| e.body.loan_id())
        .collect();
    let mut open: Vec<(u32, &str)> = book
        .loans
        .iter()
        .filter(|(id, l)| {
            l.state == LoanState::Active
                && l.terms.disbursed_on < day
                && !busy.contains(id.as_str())
        })
        .map(|(id, l)| (l.ledger.delinquency(day).dpd, id.as_str()))
        .collect();
    open.sort();
    let (_, paid_off) = *open.first().expect("an open loan");
    let (_, written_off) = *open.last().expect("another open loan");
    assert_ne!(paid_off, written_off);
    let amount = book.loans[paid_off].ledger.payoff(day);
    let at = |body: LoanEventBody| LoanEvent {
        event_id: format!("EV-RECON-{}", body.date()),
        occurred_at: Utc.from_utc_datetime(&day.and_hms_opt(12, 0, 0).unwrap()),
        body,
    };
    let added = [
        LoanEventBody::PaymentReceived(schemas::PaymentReceived {
            payment_id: "PAY-RECON-PAYOFF".into(),
            loan_id: paid_off.into(),
            amount,
            paid_on: day,
        }),
        LoanEventBody::LoanWrittenOff(schemas::LoanAction {
            loan_id: written_off.into(),
            on: day,
        }),
    ];
    for (k, body) in added.into_iter().enumerate() {
        let mut e = at(body);
        e.event_id = format!("{}-{k}", e.event_id);
        sink.events.insert(tick + k, e);
    }
    day
}

/// Every loan's bucket and balance after one day-end.
type Buckets = BTreeMap<String, (String, i64)>;

/// What the oracle computed for one business date.
struct Expected {
    summary: PortfolioSummary,
    rows: Vec<Row>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_portfolio_figure_reconciles_with_the_raw_book_on_its_business_date() {
    let domain = DomainSettings::default();
    let mut sink = generated();
    let first = first_of_month_with_everything(&mut sink);
    let month_end = first.pred_opt().unwrap();
    let mid = first
        .checked_add_months(Months::new(2))
        .unwrap()
        .with_day(15)
        .unwrap();
    let checked = [month_end, first, mid];

    // The product: the aggregator's tables behind the edge's API.
    let topics = Topics::default();
    let kafka = EmbeddedKafka::start(1, &topics.all()).unwrap();
    let db = ScratchDatabase::create().await.unwrap();
    let pool = connect(&db.url, 4).await.unwrap();
    book::db::migrate(&pool).await.unwrap();
    let ctx = ApplyContext {
        group: "reconciliation".into(),
        event_partitions: 1,
        domain: domain.clone(),
    };
    let mut offset = 0i64;
    let mut records = Vec::new();
    for c in &sink.customers {
        records.push(Payload::Customer(Box::new(c.clone())));
    }
    for a in &sink.applications {
        records.push(Payload::Application(Box::new(a.clone())));
    }
    for d in &sink.decisions {
        records.push(Payload::Decision(Box::new(d.clone())));
    }
    let records: Vec<Incoming> = records
        .into_iter()
        .map(|p| {
            offset += 1;
            Incoming::decoded(p.source(), offset, p)
        })
        .collect();
    for chunk in records.chunks(2_000) {
        apply(&pool, &ctx, chunk, &BTreeSet::new()).await;
    }

    // The oracle's raw inputs.
    let purpose: HashMap<&str, schemas::Purpose> = sink
        .applications
        .iter()
        .map(|a| (a.application_id.as_str(), a.loan.purpose))
        .collect();
    let region: HashMap<&str, &str> = sink
        .customers
        .iter()
        .map(|c| (c.customer_id.as_str(), c.region.as_str()))
        .collect();
    let decision_of: HashMap<&str, &schemas::Decision> = sink
        .decisions
        .iter()
        .map(|d| (d.application_id.as_str(), d))
        .collect();
    let mut decisions_of: HashMap<String, Vec<(DateTime<Utc>, f64)>> = HashMap::new();
    for d in &sink.decisions {
        decisions_of
            .entry(d.customer_id.clone())
            .or_default()
            .push((d.decided_at, d.pd));
    }
    for v in decisions_of.values_mut() {
        v.sort_by_key(|a| a.0);
    }
    let current_pd = |l: &Loan, on: NaiveDate| {
        risk_core::book::current_pd(l, on, decisions_of.get(l.terms.customer_id.as_str())?)
    };
    let decided_by = |day: NaiveDate| -> Decided {
        let end = Utc.from_utc_datetime(&day.succ_opt().unwrap().and_hms_opt(0, 0, 0).unwrap());
        let mut n = (0, 0, 0, 0);
        for a in sink.applications.iter().filter(|a| a.submitted_at < end) {
            if let Some(d) = decision_of.get(a.application_id.as_str()) {
                n.0 += 1;
                match outcome_symbol(d.decision) {
                    "APPROVE" => n.1 += 1,
                    "REFER" => n.2 += 1,
                    _ => n.3 += 1,
                }
            }
        }
        n
    };

    // Both, day-end by day-end.
    let mut reference = Book::new(domain.clone());
    let mut application_of: HashMap<String, String> = HashMap::new();
    let mut first_over: [HashMap<String, NaiveDate>; 3] = Default::default();
    let mut summaries: BTreeMap<NaiveDate, PortfolioSummary> = BTreeMap::new();
    let mut expected: BTreeMap<NaiveDate, Expected> = BTreeMap::new();
    // Each month's last day-end: its date and every loan's bucket and balance then.
    let mut month_ends: BTreeMap<NaiveDate, (NaiveDate, Buckets)> = BTreeMap::new();
    let (mut payoffs_on_first, mut write_offs_on_first, mut disbursals_on_first) = (0, 0, 0);
    let mut batch: Vec<Incoming> = Vec::new();
    // Positions in the batch of the events the reference refused.
    let mut marked: BTreeSet<usize> = BTreeSet::new();
    for e in &sink.events {
        offset += 1;
        batch.push(Incoming::decoded(
            Source::Events,
            offset,
            Payload::Event(Box::new(e.clone())),
        ));
        let refused = match &e.body {
            LoanEventBody::LoanDisbursed(d) => {
                application_of.insert(d.loan_id.clone(), d.application_id.clone());
                disbursals_on_first += i32::from(d.disbursed_on == first);
                let p = purpose[d.application_id.as_str()];
                let pd = decision_of.get(d.application_id.as_str()).map(|x| x.pd);
                reference.disburse(Disbursal::from_event(d, p, pd));
                None
            }
            LoanEventBody::PaymentReceived(p) => {
                let open = reference.loans[&p.loan_id].state == LoanState::Active;
                let r = reference.pay(&p.loan_id, p.amount, p.paid_on).err();
                if p.paid_on == first
                    && open
                    && reference.loans[&p.loan_id].state == LoanState::Closed
                {
                    payoffs_on_first += 1;
                }
                r
            }
            LoanEventBody::LoanWrittenOff(a) => {
                write_offs_on_first += i32::from(a.on == first);
                reference.write_off(&a.loan_id, a.on).err()
            }
            LoanEventBody::LoanMarkedLoss(a) => reference.mark_loss(&a.loan_id, a.on).err(),
            LoanEventBody::BusinessDayClosed(_) => None,
        };
        let LoanEventBody::BusinessDayClosed(b) = &e.body else {
            if refused.is_some() {
                marked.insert(batch.len() - 1);
            }
            continue;
        };
        let day = b.business_date;
        apply(&pool, &ctx, &batch, &marked).await;
        batch.clear();
        marked.clear();
        reference.close_day(day, &current_pd);

        let mut rows = Vec::with_capacity(reference.loans.len());
        for (id, l) in &reference.loans {
            let f = reference.figures(id, day, &current_pd).unwrap();
            let state = state_name(l.state);
            for (k, t) in [30, 60, 90].into_iter().enumerate() {
                if l.state == LoanState::Active && f.dpd > t {
                    first_over[k].entry(id.clone()).or_insert(day);
                }
            }
            let app = application_of[id].as_str();
            rows.push(Row {
                state,
                class: f.class.clone(),
                stage: f.stage,
                dpd: f.dpd,
                outstanding: f.outstanding,
                provision: f.provision,
                ecl: f.ecl,
                written_off: l.written_off_amount,
                principal: l.terms.principal,
                ever_90: first_over[2].contains_key(id),
                purpose: purpose[app].as_str().to_string(),
                region: region[l.terms.customer_id.as_str()].to_string(),
                grade: decision_of[app].grade.clone(),
                vintage: l.terms.disbursed_on.with_day(1).unwrap(),
            });
        }
        let collected: i64 = reference
            .repayments
            .range(..=day)
            .map(|(_, r)| r.amount)
            .sum();
        let s = summary(&rows, collected, decided_by(day));
        let ends = month_ends
            .entry(day.with_day(1).unwrap())
            .or_insert((day, BTreeMap::new()));
        ends.0 = day;
        ends.1 = reference
            .loans
            .keys()
            .zip(&rows)
            .map(|(id, r)| (id.clone(), (r.bucket(), r.outstanding)))
            .collect();
        summaries.insert(day, s.clone());
        expected.insert(day, Expected { summary: s, rows });
        // Only the checked dates and the last are kept whole.
        let keep: BTreeSet<NaiveDate> = checked.into_iter().chain([day]).collect();
        expected.retain(|d, _| keep.contains(d));
    }
    assert!(
        disbursals_on_first > 0 && payoffs_on_first > 0 && write_offs_on_first > 0,
        "{first}: {disbursals_on_first} disbursals, {payoffs_on_first} payoffs, \
         {write_offs_on_first} write-offs"
    );
    let last = *summaries.keys().last().unwrap();
    assert!(mid < last, "{mid} is after the last closed date {last}");

    // The raw tables hold the oracle's inputs: every payment by the date it counts from, and
    // every loan's terms.
    let payments: Vec<(NaiveDate, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT counted_on, count(*), sum(amount)::int8, sum(to_interest)::int8, \
           sum(to_principal)::int8, sum(surplus)::int8, sum(recovery)::int8 \
         FROM payments GROUP BY counted_on ORDER BY counted_on",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let want: Vec<(NaiveDate, i64, i64, i64, i64, i64, i64)> = reference
        .repayments
        .iter()
        .map(|(d, r)| {
            (
                *d,
                r.payments,
                r.amount,
                r.to_interest,
                r.to_principal,
                r.surplus,
                r.recovered,
            )
        })
        .collect();
    assert_eq!(payments, want, "payments by the date they count from");
    let loans: Vec<(String, i64, NaiveDate, i32)> = sqlx::query_as(
        "SELECT loan_id, principal, disbursed_on, tenure_months FROM loans ORDER BY loan_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let want: Vec<(String, i64, NaiveDate, i32)> = reference
        .loans
        .iter()
        .map(|(id, l)| {
            (
                id.clone(),
                l.terms.principal,
                l.terms.disbursed_on,
                i32::try_from(l.terms.months).unwrap(),
            )
        })
        .collect();
    assert_eq!(loans, want, "loans");

    // The API, as of each date.
    let shutdown = CancellationToken::new();
    let edge = edge::build(
        pool.clone(),
        kafka.bootstrap_servers(),
        topics,
        EdgeSettings::default(),
        domain.clone(),
        prometheus::Registry::new(),
        shutdown.clone(),
    )
    .await
    .unwrap();
    let key = create_key(&pool, Role::Analyst, "reconciliation", "test")
        .await
        .unwrap()
        .key;
    let routes = edge::routes::routes(edge);
    let call = |path: String| {
        let routes = routes.clone();
        let key = key.clone();
        async move {
            let res = warp::test::request()
                .method("GET")
                .path(&path)
                .header("x-api-key", key)
                .reply(&routes)
                .await;
            let body = serde_json::from_slice::<serde_json::Value>(res.body()).unwrap();
            (res.status().as_u16(), body)
        }
    };
    let get = |path: String| {
        let call = &call;
        async move {
            let (status, body) = call(path.clone()).await;
            assert_eq!(status, 200, "{path}: {body}");
            body
        }
    };
    fn parse<T: DeserializeOwned>(v: serde_json::Value) -> T {
        serde_json::from_value(v).unwrap()
    }

    let mut rolls_compared = 0;
    for day in checked.into_iter().chain([last]) {
        let q = if day == last {
            String::new()
        } else {
            format!("?as_of={day}")
        };
        let o = &expected[&day];
        let rows = &o.rows;

        let v = get(format!("/api/portfolio/summary{q}")).await;
        let s: PortfolioSummary = parse(v["summary"].clone());
        assert_eq!(s.business_date, day);
        same_summary(&s, &o.summary, day);

        let n: NpaAnalysis = parse(get(format!("/api/portfolio/npa-analysis{q}")).await);
        assert_eq!(n.business_date, day);
        assert_eq!(n.gross_npa, o.summary.npa_amount);
        assert_eq!(n.net_npa, o.summary.net_npa_amount);
        close(n.gross_npa_ratio, o.summary.npa_ratio, "gross NPA ratio");
        close(n.net_npa_ratio, o.summary.net_npa_ratio, "net NPA ratio");
        close(n.provision_coverage, o.summary.provision_coverage, "PCR");
        same_groups(&n.by_class, &groups(rows, |r| r.class.clone()), "by class");
        same_groups(
            &n.by_stage,
            &groups(rows, |r| r.stage.to_string()),
            "by stage",
        );
        let by_bucket = groups(rows, Row::bucket);
        same_groups(&n.by_dpd_bucket, &by_bucket, "by DPD bucket");
        // ECL by stage adds up to the summary's.
        assert_eq!(n.by_stage.iter().map(|g| g.ecl).sum::<i64>(), o.summary.ecl);

        let r: RepaymentStats = parse(get(format!("/api/portfolio/repayment-stats{q}")).await);
        let paid = reference.repayments.range(..=day).fold(
            risk_core::book::Repayments::default(),
            |mut a, (_, x)| {
                a.payments += x.payments;
                a.amount += x.amount;
                a.to_interest += x.to_interest;
                a.to_principal += x.to_principal;
                a.surplus += x.surplus;
                a.recovered += x.recovered;
                a.settled += x.settled;
                a.on_time += x.on_time;
                a
            },
        );
        assert_eq!(r.business_date, day);
        assert_eq!(
            (
                r.payments,
                r.collected,
                r.interest_collected,
                r.principal_collected,
                r.surplus,
                r.recovered,
                r.instalments_settled
            ),
            (
                paid.payments,
                paid.amount,
                paid.to_interest,
                paid.to_principal,
                paid.surplus,
                paid.recovered,
                paid.settled
            ),
            "repayments to {day}"
        );
        close(
            r.on_time_rate,
            ratio(paid.on_time, paid.settled),
            "on-time rate",
        );
        same_groups(&r.by_dpd_bucket, &by_bucket, "repayments by DPD bucket");

        let dist: LoanDistribution =
            parse(get(format!("/api/portfolio/loan-distribution{q}")).await);
        assert_eq!(dist.business_date, day);
        same_groups(
            &dist.by_purpose,
            &groups(rows, |r| r.purpose.clone()),
            "by purpose",
        );
        same_groups(
            &dist.by_status,
            &groups(rows, |r| r.state.into()),
            "by status",
        );
        same_groups(
            &dist.by_grade,
            &groups(rows, |r| r.grade.clone()),
            "by grade",
        );

        let c: RiskConcentration =
            parse(get(format!("/api/portfolio/risk-concentration{q}")).await);
        assert_eq!(c.business_date, day);
        let by_purpose = groups(rows, |r| r.purpose.clone());
        let by_region = groups(rows, |r| r.region.clone());
        let by_grade = groups(rows, |r| r.grade.clone());
        for (api, g) in [
            (&c.by_purpose, by_purpose),
            (&c.by_region, by_region),
            (&c.by_grade, by_grade),
        ] {
            same_groups(&api.groups, &g, "concentration");
            let shares: Vec<f64> = g.iter().map(|g| g.share).collect();
            close(
                api.herfindahl,
                shares.iter().map(|s| s * s).sum(),
                "Herfindahl",
            );
            close(
                api.top_share,
                shares.iter().copied().fold(0.0, f64::max),
                "top share",
            );
        }

        let v: Vintages = parse(get(format!("/api/portfolio/vintage{q}")).await);
        assert_eq!(v.business_date, day);
        let mut cohorts: BTreeMap<NaiveDate, i64> = BTreeMap::new();
        for r in rows {
            *cohorts.entry(r.vintage).or_default() += 1;
        }
        assert_eq!(v.vintages.len(), cohorts.len());
        for (curve, (vintage, loans)) in v.vintages.iter().zip(&cohorts) {
            assert_eq!((curve.vintage, curve.loans), (*vintage, *loans));
            let len = (month_index(day) - month_index(*vintage) + 1) as usize;
            for (k, api) in [&curve.ever_30, &curve.ever_60, &curve.ever_90]
                .into_iter()
                .enumerate()
            {
                assert_eq!(api.len(), len, "vintage {vintage} on {day}");
                for (mob, share) in api.iter().enumerate() {
                    let hits = reference
                        .loans
                        .iter()
                        .filter(|(_, l)| l.terms.disbursed_on.with_day(1).unwrap() == *vintage)
                        .filter_map(|(id, _)| first_over[k].get(id))
                        .filter(|on| {
                            **on <= day
                                && (month_index(**on) - month_index(*vintage)) as usize <= mob
                        })
                        .count() as i64;
                    close(*share, ratio(hits, *loans), "vintage share");
                }
            }
        }

        // Roll rates: the last month rolled by this date's day-end.
        let rolled = month_ends
            .keys()
            .rev()
            .filter(|m| m.checked_add_months(Months::new(1)).unwrap() <= day)
            .find_map(|m| {
                let before = m.checked_sub_months(Months::new(1)).unwrap();
                let (_, opening) = month_ends.get(&before)?;
                let (_, closing) = &month_ends[m];
                let mut cells: BTreeMap<(String, String), (i64, i64)> = BTreeMap::new();
                for (id, (from, balance)) in opening {
                    if from == "CLOSED" || from == "WRITTEN_OFF" {
                        continue;
                    }
                    let to = closing[id].0.clone();
                    let c = cells.entry((from.clone(), to)).or_default();
                    c.0 += 1;
                    c.1 += balance;
                }
                (!cells.is_empty()).then_some((*m, cells))
            });
        let (status, api) = call(format!("/api/portfolio/roll-rates{q}")).await;
        match rolled {
            None => assert_eq!(status, 404, "no month rolled by {day}: {api}"),
            Some((month, cells)) => {
                rolls_compared += 1;
                assert_eq!(status, 200, "{api}");
                let rr: RollRates = parse(api);
                assert_eq!((rr.business_date, rr.month), (day, month));
                let got: Vec<((String, String), (i64, i64))> = rr
                    .cells
                    .iter()
                    .map(|c| {
                        (
                            (c.from_bucket.clone(), c.to_bucket.clone()),
                            (c.loans, c.balance),
                        )
                    })
                    .collect();
                let want: Vec<_> = cells.clone().into_iter().collect();
                assert_eq!(got, want, "roll rates of {month} on {day}");
                for c in &rr.cells {
                    let (n, b) = cells
                        .iter()
                        .filter(|((f, _), _)| *f == c.from_bucket)
                        .fold((0, 0), |a, (_, v)| (a.0 + v.0, a.1 + v.1));
                    close(c.rate_by_count, ratio(c.loans, n), "roll rate by count");
                    close(
                        c.rate_by_balance,
                        ratio(c.balance, b),
                        "roll rate by balance",
                    );
                }
            }
        }

        let t: Trend = parse(
            get(format!(
                "/api/portfolio/trend{q}{}days=3660",
                if q.is_empty() { "?" } else { "&" }
            ))
            .await,
        );
        assert_eq!(t.business_date, day);
        let want: Vec<(&NaiveDate, &PortfolioSummary)> = summaries.range(..=day).collect();
        assert_eq!(t.points.len(), want.len());
        for (p, (d, s)) in t.points.iter().zip(want) {
            assert_eq!(
                (p.business_date, p.outstanding, p.ecl),
                (*d, s.outstanding, s.ecl)
            );
            close(p.npa_ratio, s.npa_ratio, "trend NPA ratio");
            close(p.par30, s.par30, "trend PAR30");
            close(p.par90, s.par90, "trend PAR90");
            close(p.approval_rate, s.approval_rate, "trend approval rate");
            close(p.referral_rate, s.referral_rate, "trend referral rate");
        }
    }
    // The first of the month and every later date answer with a month rolled.
    assert!(
        rolls_compared >= 3,
        "{rolls_compared} roll-rate matrices compared"
    );
    shutdown.cancel();
    drop(kafka);
}

/// Apply one batch in one transaction; the aggregator must dead-letter exactly the messages
/// the oracle refused (`refused`, positions in the batch).
async fn apply(pool: &PgPool, ctx: &ApplyContext, batch: &[Incoming], refused: &BTreeSet<usize>) {
    let mut tx = pool.begin().await.unwrap();
    let out = apply_batch(&mut tx, ctx, batch).await.unwrap();
    tx.commit().await.unwrap();
    let got: BTreeSet<usize> = out.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(&got, refused, "{:?}", out.rejected);
}

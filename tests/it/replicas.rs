//! Three real `ops-worker run` processes on one database, 30 jobs every
//! second for about a minute: one is SIGKILLed partway, another is
//! SIGSTOPped for several seconds. Every slot in the window runs exactly
//! once, abandoned runs are found within `--dead-after` and their slots run
//! again, and each replica ran a fair share while all three were up. On
//! PostgreSQL, and on one SQLite file shared by the three processes (WAL).

use std::collections::{BTreeMap, HashMap};
use std::process::{Child, Stdio};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use ops_worker::db::{Backend, RunRecord, RunStatus};

use crate::helpers::TestDb;

const JOBS: usize = 30;
const DEAD_AFTER_SECS: i64 = 10;

fn config() -> String {
    let mut out = String::new();
    for i in 0..JOBS {
        // `allow`: a killed replica's unfinished run must not make the others
        // skip the job's next slots while they wait to call it dead.
        out.push_str(&format!(
            "[jobs.j{i:02}]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"true\"]\noverlap = \"allow\"\nretry_abandoned = true\n\n"
        ));
    }
    // Runs that last: the kill below catches one of them mid-run.
    for i in 0..2 {
        out.push_str(&format!(
            "[jobs.slow{i}]\nkind = \"command\"\nevery = \"1s\"\ncommand = [\"sleep\", \"4\"]\ntimeout = \"10s\"\noverlap = \"allow\"\nretry_abandoned = true\n\n"
        ));
    }
    out
}

fn replica(dir: &std::path::Path, db: &TestDb, id: &str) -> Child {
    crate::cli::with_db(dir, db)
        .args([
            "run",
            "--grace",
            "5s",
            "--dead-after",
            &format!("{DEAD_AFTER_SECS}s"),
        ])
        .env("OPS_WORKER_ID", id)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("{id}.log"))).unwrap())
        .spawn()
        .unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on a pid this test spawned and has not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, sig) }, 0);
}

async fn sleep_secs(s: u64) {
    tokio::time::sleep(Duration::from_secs(s)).await;
}

/// One at a time: two sets of three workers starting 32 processes a second
/// each would starve each other on a 2-core machine.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread")]
async fn postgres() {
    let _one = ONE_AT_A_TIME.lock().await;
    three_replicas_run_every_slot_once_through_a_kill_and_a_pause(Backend::Postgres).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sqlite() {
    let _one = ONE_AT_A_TIME.lock().await;
    three_replicas_run_every_slot_once_through_a_kill_and_a_pause(Backend::Sqlite).await;
}

async fn three_replicas_run_every_slot_once_through_a_kill_and_a_pause(backend: Backend) {
    let db = TestDb::new(backend).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("schedules.toml"), config()).unwrap();
    let start = Utc::now();
    let r1 = replica(dir.path(), &db, "r1");
    let r2 = replica(dir.path(), &db, "r2");
    let mut r3 = replica(dir.path(), &db, "r3");
    sleep_secs(20).await;
    // Killed while it runs a slow job, so that a run is left to abandon.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !db.db().history(None, 2000).await.unwrap().iter().any(|r| {
        r.worker_id == "r3" && r.status == RunStatus::Running && r.job_name.starts_with("slow")
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "r3 never ran a slow job"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let killed_at = Utc::now();
    signal(&r3, libc::SIGKILL);
    let _ = r3.wait();
    sleep_secs(15).await;
    let paused_at = Utc::now();
    signal(&r2, libc::SIGSTOP);
    sleep_secs(6).await;
    signal(&r2, libc::SIGCONT);
    sleep_secs(20).await;
    let end = Utc::now();
    for mut r in [r1, r2] {
        crate::cli::sigterm(&r);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let status = loop {
            if let Some(status) = r.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "a replica did not stop"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert_eq!(status.code(), Some(0), "log: {}", dir.path().display());
    }

    let runs: Vec<RunRecord> = db.db().history(None, 100_000).await.unwrap();
    // The window: all three up and armed, until shortly before the stop.
    let (from, to) = (start + TimeDelta::seconds(5), end - TimeDelta::seconds(3));
    let mut by_slot: BTreeMap<(String, DateTime<Utc>), Vec<&RunRecord>> = BTreeMap::new();
    for r in &runs {
        by_slot
            .entry((r.job_name.clone(), r.scheduled_for))
            .or_default()
            .push(r);
    }
    let mut problems = Vec::new();
    let jobs = (0..JOBS)
        .map(|i| format!("j{i:02}"))
        .chain(["slow0".into(), "slow1".into()]);
    for job in jobs {
        let mut slot = from.trunc_subsecs_to_whole();
        while slot < to {
            let rows = by_slot
                .get(&(job.clone(), slot))
                .cloned()
                .unwrap_or_default();
            let first: Vec<_> = rows.iter().filter(|r| r.attempt == 1).collect();
            let succeeded = rows
                .iter()
                .filter(|r| r.status == RunStatus::Success)
                .count();
            let ok = first.len() == 1
                && rows.iter().all(|r| r.status != RunStatus::Running)
                && succeeded == 1;
            if !ok {
                problems.push(format!("{job} {slot}: {rows:?}"));
            }
            slot += TimeDelta::seconds(1);
        }
    }
    assert!(
        problems.is_empty(),
        "{} slots wrong:\n{}",
        problems.len(),
        problems.join("\n")
    );

    // r3's runs in flight were found within dead_after plus a heartbeat or
    // two, and (checked above) their slots succeeded on another replica.
    let abandoned: Vec<_> = runs
        .iter()
        .filter(|r| r.status == RunStatus::Abandoned)
        .collect();
    assert!(
        abandoned
            .iter()
            .any(|r| r.worker_id == "r3" && r.job_name.starts_with("slow")),
        "{abandoned:#?}"
    );
    for r in abandoned {
        let found = r.finished_at.unwrap() - r.started_at;
        assert!(
            found <= TimeDelta::seconds(DEAD_AFTER_SECS + 12),
            "found after {found}: {r:?}"
        );
    }

    // A fair share while all three were up: a third each, give or take.
    let mut share: HashMap<&str, usize> = HashMap::new();
    let all_up = runs
        .iter()
        .filter(|r| r.scheduled_for >= from && r.scheduled_for < killed_at - TimeDelta::seconds(1));
    let mut total = 0;
    for r in all_up {
        *share.entry(r.worker_id.as_str()).or_default() += 1;
        total += 1;
    }
    for id in ["r1", "r2", "r3"] {
        let n = share.get(id).copied().unwrap_or(0);
        assert!(
            n * 100 >= total * 20,
            "{id} ran {n} of {total} slots while all were up: {share:?}"
        );
    }
    // While r2 was paused the others covered its slots (checked above), and
    // r2 ran again after it resumed.
    assert!(
        runs.iter()
            .any(|r| r.worker_id == "r2" && r.started_at > paused_at + TimeDelta::seconds(7)),
        "r2 ran nothing after it resumed"
    );
}

trait WholeSecond {
    fn trunc_subsecs_to_whole(self) -> Self;
}

impl WholeSecond for DateTime<Utc> {
    fn trunc_subsecs_to_whole(self) -> Self {
        use chrono::SubsecRound;
        self.trunc_subsecs(0) + TimeDelta::seconds(1)
    }
}

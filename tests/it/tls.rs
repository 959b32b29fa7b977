//! TLS to PostgreSQL (`sslmode`, `sslrootcert`, `PGSSLMODE`,
//! `PGSSLROOTCERT`) against real servers: the shared test server, and
//! throwaway ones started here ([`PgServer`]), with TLS off or with a
//! certificate for the host name `pg.test` signed by a CA made for the test.
//!
//! Whether a connection is encrypted is asked of the server
//! (`pg_stat_ssl`), through the pool of an ops-worker `Db` (the `metrics`
//! kind's read-only query path).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use ops_worker::db::{Backend, DatabaseUrl, Db};
use ops_worker_jobs::store::MetricStore;

use crate::helpers::TestDb;

const PASSWORD: &str = "hunter2";

/// 1 when the connection that runs it is encrypted, else 0.
const SSL_OF_THIS_CONNECTION: &str = "SELECT CASE WHEN ssl THEN 1 ELSE 0 END AS ssl \
                                      FROM pg_stat_ssl WHERE pid = pg_backend_pid()";

/// Whether a pooled connection of `db` is encrypted, as the server sees it.
async fn encrypted(db: &Db) -> bool {
    let rows = db
        .query_read_only(SSL_OF_THIS_CONNECTION, Duration::from_secs(5))
        .await
        .expect("querying pg_stat_ssl");
    assert_eq!(rows.len(), 1, "{rows:?}");
    rows[0].value == 1.0
}

/// `Db::connect` on a URL alone (no environment), errors as `main` prints them.
async fn connect(url: &str) -> Result<Db, String> {
    let url = DatabaseUrl::parse(Some(url)).map_err(|e| ops_worker::error_chain(&e))?;
    Db::connect(&url, 2)
        .await
        .map_err(|e| ops_worker::error_chain(&e))
}

/// Asserts that connecting to `url` fails with one line that shows the URL
/// redacted and contains each of `wanted`.
async fn assert_refused(url: &str, wanted: &[&str]) {
    let err = match connect(url).await {
        Ok(_) => panic!("{url}: connected"),
        Err(e) => e,
    };
    assert!(!err.contains('\n') && !err.contains(PASSWORD), "{err}");
    assert!(err.contains("postgres://postgres:***@"), "{err}");
    for want in wanted {
        assert!(err.contains(want), "{err}\nshould contain: {want}");
    }
}

fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

#[tokio::test(flavor = "multi_thread")]
async fn require_encrypts_and_disable_does_not_on_the_test_server() {
    let t = TestDb::new(Backend::Postgres).await;
    let require = connect(&with_param(&t.url_string(), "sslmode=require"))
        .await
        .unwrap();
    assert!(encrypted(&require).await);
    require.history(None, 1).await.expect("a query over TLS");

    let disable = connect(&with_param(&t.url_string(), "sslmode=disable"))
        .await
        .unwrap();
    assert!(!encrypted(&disable).await);
    disable.history(None, 1).await.expect("a plaintext query");
}

/// A server with a certificate for `pg.test` signed by a CA made for the
/// test, and the PEM files of that CA (`good`) and of another (`other`).
struct SignedServer {
    server: PgServer,
    good: String,
    other: String,
    files: tempfile::TempDir,
}

impl SignedServer {
    fn start() -> SignedServer {
        let ca = TestCa::new("ops-worker test CA");
        let server = PgServer::start(Some(&ca.server_cert("pg.test")));
        let files = tempfile::tempdir().unwrap();
        let write = |ca: &TestCa, name| ca.write(files.path(), name).display().to_string();
        SignedServer {
            good: write(&ca, "ca.pem"),
            other: write(&TestCa::new("another CA"), "other.pem"),
            server,
            files,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn verify_full_checks_the_chain_and_the_host_name() {
    let SignedServer {
        server,
        good,
        other,
        files: _files,
    } = SignedServer::start();
    // TCP to 127.0.0.1 whatever the name checked (hostaddr).
    let by_name = |params: &str| server.url("pg.test", &format!("hostaddr=127.0.0.1&{params}"));
    let by_ip = |params: &str| server.url("127.0.0.1", params);

    let db = connect(&by_name(&format!("sslmode=verify-full&sslrootcert={good}")))
        .await
        .unwrap();
    assert!(encrypted(&db).await);

    assert_refused(
        &by_ip(&format!("sslmode=verify-full&sslrootcert={good}")),
        &[
            "sslmode=verify-full",
            "invalid peer certificate: certificate not valid for name \"127.0.0.1\"",
        ],
    )
    .await;
    // verify-ca does not look at the name.
    let db = connect(&by_ip(&format!("sslmode=verify-ca&sslrootcert={good}")))
        .await
        .unwrap();
    assert!(encrypted(&db).await);

    // A CA that did not sign it, whatever the mode that checks the chain
    // (require checks it once given a root certificate, as libpq does).
    for mode in ["verify-full", "verify-ca", "require"] {
        assert_refused(
            &by_name(&format!("sslmode={mode}&sslrootcert={other}")),
            &[
                &format!("sslmode={mode}, sslrootcert={other}: "),
                "invalid peer certificate: UnknownIssuer",
            ],
        )
        .await;
    }

    for (params, tls) in [
        ("sslmode=require", true),
        ("sslmode=prefer", true),
        ("", true),
        ("sslmode=disable", false),
    ] {
        let db = connect(&by_ip(params)).await.unwrap();
        assert_eq!(encrypted(&db).await, tls, "{params}");
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_tls_serves_disable_and_prefer_and_refuses_require() {
    let server = PgServer::start(None);
    for params in ["sslmode=disable", "sslmode=prefer", ""] {
        let db = connect(&server.url("127.0.0.1", params)).await.unwrap();
        assert!(!encrypted(&db).await, "{params}");
    }
    for mode in ["require", "verify-full"] {
        assert_refused(
            &server.url("127.0.0.1", &format!("sslmode={mode}")),
            &[&format!(
                "sslmode={mode}: error performing TLS handshake: server does not support TLS"
            )],
        )
        .await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pgsslmode_and_pgsslrootcert_apply_to_the_cli_after_the_url() {
    let SignedServer {
        server,
        good,
        other,
        files: dir,
    } = SignedServer::start();
    let (good, other) = (good.as_str(), other.as_str());
    let missing = dir.path().join("missing.pem").display().to_string();
    let missing = missing.as_str();
    let url = server.url("pg.test", "hostaddr=127.0.0.1");
    let migrate = |url: &str, env: &[(&str, &str)]| -> Output {
        let mut cmd = crate::cli::bin(dir.path());
        cmd.arg("migrate").env("DATABASE_URL", url);
        for (var, value) in env {
            cmd.env(var, value);
        }
        cmd.output().unwrap()
    };
    let verify_full = "verify-full";

    // The variables apply to a URL without sslmode and sslrootcert...
    let out = migrate(
        &url,
        &[("PGSSLMODE", verify_full), ("PGSSLROOTCERT", other)],
    );
    let err = one_error_line(&out, 3);
    for want in [
        "error: database postgres://postgres:***@pg.test:",
        &format!(
            "is unavailable: sslmode=verify-full (from PGSSLMODE), sslrootcert={other} (from \
             PGSSLROOTCERT): error performing TLS handshake: invalid peer certificate: \
             UnknownIssuer"
        ),
    ] {
        assert!(err.contains(want), "{err}\nshould contain: {want}");
    }
    let out = migrate(&url, &[("PGSSLMODE", verify_full), ("PGSSLROOTCERT", good)]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // ... and the URL's own settings win over them.
    let out = migrate(
        &with_param(&url, "sslmode=disable"),
        &[("PGSSLMODE", verify_full), ("PGSSLROOTCERT", other)],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let out = migrate(
        &with_param(&url, &format!("sslrootcert={good}")),
        &[("PGSSLMODE", verify_full), ("PGSSLROOTCERT", other)],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");

    // Unusable settings are usage errors naming the variable or parameter.
    let err = one_error_line(&migrate(&url, &[("PGSSLMODE", "bogus")]), 2);
    assert!(
        err.starts_with("error: PGSSLMODE: invalid value \"bogus\""),
        "{err}"
    );
    let err = one_error_line(
        &migrate(
            &url,
            &[("PGSSLMODE", verify_full), ("PGSSLROOTCERT", missing)],
        ),
        2,
    );
    assert!(
        err.starts_with(&format!("error: PGSSLROOTCERT: cannot read {missing}")),
        "{err}"
    );
    let err = one_error_line(
        &migrate(
            &with_param(&url, &format!("sslrootcert={missing}")),
            &[("PGSSLMODE", verify_full)],
        ),
        2,
    );
    assert!(
        err.starts_with(&format!(
            "error: DATABASE_URL: sslrootcert: cannot read {missing}"
        )),
        "{err}"
    );
    drop(server);
}

/// The one `error:` line of a failed command with this exit code; the
/// password shows nowhere in its output.
#[track_caller]
fn one_error_line(out: &Output, code: i32) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    assert!(
        !stderr.contains(PASSWORD) && !stdout.contains(PASSWORD),
        "{stderr}"
    );
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    errors[0].to_string()
}

/// A certificate authority made for one test.
struct TestCa {
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let key = rcgen::KeyPair::generate().unwrap();
        let pem = params.self_signed(&key).unwrap().pem();
        TestCa {
            issuer: rcgen::Issuer::new(params, key),
            pem,
        }
    }

    /// Writes the CA certificate (PEM) to `dir/file`.
    fn write(&self, dir: &Path, file: &str) -> PathBuf {
        let path = dir.join(file);
        std::fs::write(&path, &self.pem).unwrap();
        path
    }

    /// A server certificate for `host` signed by this CA, and its key (PEM).
    fn server_cert(&self, host: &str) -> ServerCert {
        let mut params = rcgen::CertificateParams::new(vec![host.to_string()]).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

struct ServerCert {
    cert_pem: String,
    key_pem: String,
}

/// A PostgreSQL server of its own for one test, on 127.0.0.1 and a free
/// port, trust authentication, stopped (fast shutdown) and deleted when
/// dropped. Run as the `postgres` user when the test runs as root, which
/// PostgreSQL refuses to run as.
struct PgServer {
    port: u16,
    child: Child,
    /// Its log, for a failure's message.
    log: Arc<Mutex<String>>,
    // Last: removed once the server has stopped.
    _dir: tempfile::TempDir,
}

impl PgServer {
    fn start(tls: Option<&ServerCert>) -> PgServer {
        let bin = pg_bin_dir();
        let owner = server_user();
        let dir = tempfile::Builder::new()
            .prefix("ops-worker-pg-")
            .tempdir()
            .unwrap();
        let give = |path: &Path| {
            if let Some((uid, gid)) = owner {
                std::os::unix::fs::chown(path, Some(uid), Some(gid)).unwrap();
            }
        };
        give(dir.path());
        let data = dir.path().join("data");
        let initdb = as_owner(Command::new(bin.join("initdb")), owner, dir.path())
            .arg("-D")
            .arg(&data)
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C"])
            .args(["--no-sync", "--no-instructions"])
            .output()
            .unwrap_or_else(|e| panic!("running {}: {e}", bin.join("initdb").display()));
        assert!(initdb.status.success(), "initdb: {initdb:?}");

        let mut settings = vec![
            "listen_addresses=127.0.0.1".to_string(),
            format!("unix_socket_directories={}", dir.path().display()),
            "fsync=off".to_string(),
            "max_connections=30".to_string(),
        ];
        match tls {
            None => settings.push("ssl=off".to_string()),
            Some(cert) => {
                use std::os::unix::fs::PermissionsExt;
                let (crt, key) = (dir.path().join("server.crt"), dir.path().join("server.key"));
                std::fs::write(&crt, &cert.cert_pem).unwrap();
                std::fs::write(&key, &cert.key_pem).unwrap();
                // PostgreSQL refuses a key others can read.
                std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
                give(&crt);
                give(&key);
                settings.extend([
                    "ssl=on".to_string(),
                    format!("ssl_cert_file={}", crt.display()),
                    format!("ssl_key_file={}", key.display()),
                ]);
            }
        }

        // The port is free when picked; another process may take it before
        // the server binds it, hence a few tries.
        let mut failures = Vec::new();
        for _ in 0..3 {
            let port = free_port();
            let mut cmd = as_owner(Command::new(bin.join("postgres")), owner, dir.path());
            cmd.arg("-D").arg(&data).args(["-p", &port.to_string()]);
            for setting in &settings {
                cmd.args(["-c", setting]);
            }
            let mut child = cmd
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let log = Arc::new(Mutex::new(String::new()));
            let ready = follow_log(&mut child, log.clone());
            match ready.recv_timeout(Duration::from_secs(60)) {
                Ok(()) => {
                    return PgServer {
                        port,
                        child,
                        log,
                        _dir: dir,
                    }
                }
                Err(_) => {
                    stop(&mut child);
                    failures.push(log.lock().unwrap().clone());
                }
            }
        }
        panic!("PostgreSQL did not start:\n{}", failures.join("\n---\n"));
    }

    /// A URL to the `postgres` database with a password (which trust
    /// authentication ignores), so tests can look for it in errors.
    fn url(&self, host: &str, params: &str) -> String {
        let url = format!(
            "postgres://postgres:{PASSWORD}@{host}:{}/postgres",
            self.port
        );
        if params.is_empty() {
            url
        } else {
            format!("{url}?{params}")
        }
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        stop(&mut self.child);
        if std::thread::panicking() {
            eprintln!("PostgreSQL's log:\n{}", self.log.lock().unwrap());
        }
    }
}

/// Fast shutdown (SIGINT: clients are disconnected), SIGKILL if it is not
/// over in 10 s.
fn stop(child: &mut Child) {
    let pid = child.id() as libc::pid_t;
    // SAFETY: signals our own child, which has not been waited for.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(child.kill());
    drop(child.wait());
}

/// Reads the server's log (stderr) on a thread of its own until the server
/// exits; the receiver gets a message once it accepts connections, and is
/// disconnected if it exits before that.
fn follow_log(child: &mut Child, log: Arc<Mutex<String>>) -> mpsc::Receiver<()> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            let ready = line.contains("database system is ready to accept connections");
            let mut log = log.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
            if ready {
                if let Some(tx) = tx.take() {
                    let _ = tx.send(());
                }
            }
        }
    });
    rx
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `cmd` run in `dir`, as `owner` when given.
fn as_owner(mut cmd: Command, owner: Option<(u32, u32)>, dir: &Path) -> Command {
    use std::os::unix::process::CommandExt;
    if let Some((uid, gid)) = owner {
        cmd.uid(uid).gid(gid);
    }
    cmd.current_dir(dir);
    cmd
}

/// The `postgres` user's uid and gid when this runs as root, else `None`.
fn server_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let name = std::ffi::CString::new("postgres").unwrap();
    // SAFETY: a NUL-terminated name; the record is read at once, before any
    // other call could reuse it (the tests call this from one place only).
    let user = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(
        !user.is_null(),
        "running as root, and PostgreSQL refuses root: a `postgres` user is needed"
    );
    // SAFETY: checked non-null just above.
    unsafe { Some(((*user).pw_uid, (*user).pw_gid)) }
}

/// Where `initdb` and `postgres` are: `OPS_WORKER_TEST_PG_BIN`, else
/// `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
fn pg_bin_dir() -> PathBuf {
    let has_server = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Some(dir) = std::env::var_os("OPS_WORKER_TEST_PG_BIN") {
        return PathBuf::from(dir);
    }
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    if let Some(dir) = from_pg_config.filter(|d| has_server(d)) {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, dir)| has_server(dir))
        .collect();
    versions.sort();
    versions.pop().map(|(_, dir)| dir).expect(
        "these tests start PostgreSQL servers of their own: install PostgreSQL's server \
         binaries or name their directory in OPS_WORKER_TEST_PG_BIN",
    )
}

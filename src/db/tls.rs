//! PostgreSQL URLs and TLS: libpq's `sslmode` and `sslrootcert`, taken from
//! `DATABASE_URL` or else from `PGSSLMODE` / `PGSSLROOTCERT` (the URL wins,
//! as in libpq), and the rustls configuration each combination gives.
//!
//! This is the one place that reads those settings. tokio-postgres gets the
//! URL without them: its parser knows no `sslrootcert` and rejects
//! `verify-ca` and `verify-full`. Every PostgreSQL connection ops-worker
//! opens (the pool, the `metrics` kind's read-only queries, migrations, the
//! CLI, the tests' admin connections) goes through [`PgConnector`].
//!
//! | sslmode | TLS | the server's certificate |
//! |---|---|---|
//! | `disable` | never | - |
//! | `prefer` (default) | if the server offers it, else plaintext | not checked |
//! | `require` | always | not checked; with `sslrootcert`, the chain is (libpq's rule) |
//! | `verify-ca` | always | chain against `sslrootcert`, which it needs |
//! | `verify-full` | always | chain and host name, against `sslrootcert` or else the system's CA store |
//!
//! Connections over a Unix socket never use TLS (libpq ignores `sslmode`
//! there, and the server refuses TLS on one). The handshake is rustls with
//! the crypto provider and system CA store the HTTP clients use
//! (`ops_worker_jobs::tls`), through tokio-postgres-rustls.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use diesel_async::AsyncPgConnection;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio_postgres::config::Host;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{redact, DbError};

/// The environment variables libpq reads for the two settings.
const MODE_VAR: &str = "PGSSLMODE";
const ROOT_CERT_VAR: &str = "PGSSLROOTCERT";

/// libpq's `sslmode`, but `allow` (plaintext first, TLS only when the
/// server insists), which tokio-postgres cannot do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

impl SslMode {
    fn parse(value: &str) -> Result<SslMode, String> {
        Ok(match value {
            "disable" => SslMode::Disable,
            "prefer" => SslMode::Prefer,
            "require" => SslMode::Require,
            "verify-ca" => SslMode::VerifyCa,
            "verify-full" => SslMode::VerifyFull,
            "allow" => {
                return Err(
                    "\"allow\" is not supported (plaintext first, TLS only when the server \
                     insists): use prefer or disable"
                        .to_string(),
                )
            }
            other => {
                return Err(format!(
                    "invalid value {other:?} (expected disable, prefer, require, verify-ca or \
                     verify-full)"
                ))
            }
        })
    }

    fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

impl fmt::Display for SslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `sslrootcert`: where the CA certificates come from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RootCert {
    /// A PEM file of one or more CA certificates.
    File(PathBuf),
    /// `sslrootcert=system` (libpq 16's spelling): the system's CA store.
    System,
}

impl fmt::Display for RootCert {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootCert::File(path) => write!(f, "{}", path.display()),
            RootCert::System => f.write_str("system"),
        }
    }
}

/// Where a setting came from, to name it in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Origin {
    Url,
    Env,
    Default,
}

/// What is checked of the server's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Check {
    /// Nothing (`prefer`, `require`): encryption against a passive
    /// listener only. The handshake's signatures are still verified.
    Nothing,
    /// The chain up to a CA of this file, whatever host name it is for
    /// (`verify-ca`, or `require` with `sslrootcert`).
    Chain(PathBuf),
    /// Chain and host name (`verify-full`); `None`: the system's CA store.
    ChainAndName(Option<PathBuf>),
}

/// The TLS settings of a PostgreSQL URL, resolved and checked for sense.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    mode: SslMode,
    mode_from: Origin,
    root_cert: Option<(RootCert, Origin)>,
    check: Check,
}

impl TlsSettings {
    pub fn mode(&self) -> SslMode {
        self.mode
    }

    /// libpq's defaults and rules: `prefer` unless told otherwise
    /// (`verify-full` with `sslrootcert=system`); `require` with a root file
    /// checks the chain; `verify-ca` needs a root file, since any public CA
    /// would vouch for any host; `sslrootcert=system` only with `verify-full`.
    fn resolve(
        mode: Option<(SslMode, Origin)>,
        root_cert: Option<(RootCert, Origin)>,
    ) -> Result<TlsSettings, (Origin, String)> {
        let system = matches!(root_cert, Some((RootCert::System, _)));
        let (mode, mode_from) = match mode {
            Some(given) => given,
            None if system => (SslMode::VerifyFull, Origin::Default),
            None => (SslMode::Prefer, Origin::Default),
        };
        let file = match &root_cert {
            Some((RootCert::File(path), _)) => Some(path.clone()),
            _ => None,
        };
        let check = match mode {
            SslMode::Disable | SslMode::Prefer => Check::Nothing,
            SslMode::VerifyFull => Check::ChainAndName(file),
            SslMode::Require | SslMode::VerifyCa if system => {
                return Err((
                    mode_from,
                    format!(
                        "sslmode={mode} cannot be used with sslrootcert=system, which trusts \
                         every public CA: use verify-full"
                    ),
                ))
            }
            SslMode::Require | SslMode::VerifyCa => match file {
                Some(path) => Check::Chain(path),
                None if mode == SslMode::Require => Check::Nothing,
                None => {
                    return Err((
                        mode_from,
                        "sslmode=verify-ca needs sslrootcert, the CA that signed the server's \
                         certificate (or use verify-full, which also checks the host name \
                         and can use the system's CA store)"
                            .to_string(),
                    ))
                }
            },
        };
        Ok(TlsSettings {
            mode,
            mode_from,
            root_cert,
            check,
        })
    }
}

/// For error messages: `sslmode=verify-full (from PGSSLMODE), sslrootcert=/etc/ca.pem`.
impl fmt::Display for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let from = |origin, var| match origin {
            Origin::Env => format!(" (from {var})"),
            Origin::Url | Origin::Default => String::new(),
        };
        write!(f, "sslmode={}{}", self.mode, from(self.mode_from, MODE_VAR))?;
        if let (Some((root, origin)), false) = (&self.root_cert, self.check == Check::Nothing) {
            write!(f, ", sslrootcert={root}{}", from(*origin, ROOT_CERT_VAR))?;
        }
        Ok(())
    }
}

/// A `postgres://` or `postgresql://` `DATABASE_URL`, parsed: the URL as
/// given, tokio-postgres's settings from it and its TLS settings.
///
/// `Debug` is written by hand so a stray `{:?}` cannot print a password.
#[derive(Clone, PartialEq, Eq)]
pub struct PgUrl {
    /// As given; shown only redacted.
    url: String,
    /// The URL without `sslmode` and `sslrootcert`, as tokio-postgres parsed
    /// it (boxed: it is most of the size).
    config: Box<tokio_postgres::Config>,
    tls: TlsSettings,
}

impl fmt::Debug for PgUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PgUrl")
            .field("url", &self.redacted())
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

impl PgUrl {
    /// Parses `url` (which starts with `postgres://` or `postgresql://`);
    /// `env` looks up `PGSSLMODE` and `PGSSLROOTCERT`, which apply where the
    /// URL has no `sslmode` or `sslrootcert` (an empty variable counts as
    /// unset, as an empty `DATABASE_URL` does). A problem is a
    /// [`DbError::BadUrl`] or, for a variable, a [`DbError::BadEnv`].
    pub(super) fn parse(url: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<PgUrl, DbError> {
        let bad_url = |message: String| DbError::BadUrl {
            message: format!("{message}: \"{}\"", redact(url)),
        };
        let (rest, from_url) = split_tls_params(url).map_err(bad_url)?;
        let config: Box<tokio_postgres::Config> = rest
            .parse()
            .map(Box::new)
            .map_err(|e: tokio_postgres::Error| bad_url(crate::error_chain(&e)))?;
        let env = |var: &str| env(var).filter(|v| !v.trim().is_empty());

        let mode = match (from_url.mode, env(MODE_VAR)) {
            (Some(value), _) => Some((
                SslMode::parse(&value).map_err(|e| bad_url(format!("sslmode: {e}")))?,
                Origin::Url,
            )),
            (None, Some(value)) => Some((
                SslMode::parse(value.trim()).map_err(|message| DbError::BadEnv {
                    var: MODE_VAR,
                    message,
                })?,
                Origin::Env,
            )),
            (None, None) => None,
        };
        let root_cert = match (from_url.root_cert, env(ROOT_CERT_VAR)) {
            (Some(value), _) => Some((root_cert(&value), Origin::Url)),
            (None, Some(value)) => Some((root_cert(&value), Origin::Env)),
            (None, None) => None,
        };
        let tls =
            TlsSettings::resolve(mode, root_cert).map_err(|(origin, message)| match origin {
                Origin::Env => DbError::BadEnv {
                    var: MODE_VAR,
                    message,
                },
                Origin::Url | Origin::Default => bad_url(message),
            })?;
        Ok(PgUrl {
            url: url.to_owned(),
            config,
            tls,
        })
    }

    /// The URL as given, password included: for a child process's
    /// `DATABASE_URL`, never for display (see [`PgUrl::redacted`]).
    pub fn as_str(&self) -> &str {
        &self.url
    }

    /// The URL with its password replaced by `***`.
    pub fn redacted(&self) -> String {
        redact(&self.url)
    }

    pub fn tls(&self) -> &TlsSettings {
        &self.tls
    }

    /// One connection outside any pool, with this URL's TLS settings: for
    /// tools and tests that need raw SQL (creating a database).
    pub async fn establish(&self) -> Result<AsyncPgConnection, DbError> {
        let connector = self.connector()?;
        connector
            .establish()
            .await
            .map_err(|e| DbError::Unavailable {
                url: self.redacted(),
                source: Box::new(e),
            })
    }

    /// What the pool connects with: the rustls configuration is built (and
    /// a root certificate file read) once, here. An unreadable or unusable
    /// file is a [`DbError::BadUrl`] or [`DbError::BadEnv`], as at parsing.
    pub(super) fn connector(&self) -> Result<PgConnector, DbError> {
        let tls = client_config(&self.tls.check).map_err(|message| {
            // The file, or the system store that verify-full without one uses.
            let (param, var, origin) = match &self.tls.root_cert {
                Some((_, origin)) => ("sslrootcert", ROOT_CERT_VAR, *origin),
                None => ("sslmode", MODE_VAR, self.tls.mode_from),
            };
            match origin {
                Origin::Env => DbError::BadEnv { var, message },
                Origin::Url | Origin::Default => DbError::BadUrl {
                    message: format!("{param}: {message}: \"{}\"", self.redacted()),
                },
            }
        })?;
        let mut config = (*self.config).clone();
        let hosts = config.get_hosts();
        let unix_only = config.get_hostaddrs().is_empty()
            && !hosts.is_empty()
            && hosts.iter().all(|h| !matches!(h, Host::Tcp(_)));
        config.ssl_mode(match self.tls.mode {
            _ if unix_only => tokio_postgres::config::SslMode::Disable,
            SslMode::Disable => tokio_postgres::config::SslMode::Disable,
            SslMode::Prefer => tokio_postgres::config::SslMode::Prefer,
            SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull => {
                tokio_postgres::config::SslMode::Require
            }
        });
        Ok(PgConnector {
            config,
            tls: MakeRustlsConnect::new(tls),
            settings: self.tls.to_string(),
        })
    }
}

/// Opens PostgreSQL connections with one URL's settings. Cheap to clone.
#[derive(Clone)]
pub(super) struct PgConnector {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// The TLS settings, for errors.
    settings: String,
}

impl PgConnector {
    /// Connects like `AsyncPgConnection::establish`, but with TLS and
    /// keeping the cause of a failure ("Connection refused", "password
    /// authentication failed", "invalid peer certificate: UnknownIssuer"):
    /// diesel-async's own establish keeps only tokio-postgres's top-level
    /// "error connecting to server". A TLS failure names the settings that
    /// led to it.
    pub(super) async fn establish(&self) -> diesel::ConnectionResult<AsyncPgConnection> {
        match self.config.connect(self.tls.clone()).await {
            Ok((client, connection)) => {
                AsyncPgConnection::try_from_client_and_connection(client, connection).await
            }
            Err(e) => {
                let chain = crate::error_chain(&e);
                // tokio-postgres's words for any failure of TLS negotiation.
                let message = if chain.starts_with("error performing TLS handshake") {
                    format!("{}: {chain}", self.settings)
                } else {
                    chain
                };
                Err(diesel::ConnectionError::BadConnection(message))
            }
        }
    }
}

impl PgConnector {
    /// A connection of its own, outside the pool, `LISTEN`ing on `channel`.
    pub(super) async fn listen(
        &self,
        channel: &str,
    ) -> Result<super::listen::Listener, Box<dyn std::error::Error + Send + Sync>> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        Ok(super::listen::start(client, connection, channel).await?)
    }
}

/// `sslmode` and `sslrootcert` as written in a URL, percent-decoded.
#[derive(Default)]
struct FromUrl {
    mode: Option<String>,
    root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of the URL's query (the last one
/// wins if repeated, as in tokio-postgres) and returns the URL without them.
/// The query starts at the first `?` after the credentials, as
/// tokio-postgres reads it; other parameters are left for it, as written.
fn split_tls_params(url: &str) -> Result<(String, FromUrl), String> {
    let after_credentials = url.find('@').map_or(0, |at| at + 1);
    let Some(q) = url[after_credentials..].find('?') else {
        return Ok((url.to_owned(), FromUrl::default()));
    };
    let (base, query) = url.split_at(after_credentials + q);
    let mut found = FromUrl::default();
    let mut kept = Vec::new();
    for pair in query[1..].split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match decode(key).as_deref() {
            Ok("sslmode") => {
                found.mode = Some(decode(value).map_err(|e| format!("sslmode: {e}"))?);
            }
            Ok("sslrootcert") => {
                found.root_cert = Some(decode(value).map_err(|e| format!("sslrootcert: {e}"))?);
            }
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok((rest, found))
}

fn decode(s: &str) -> Result<String, String> {
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| "not valid UTF-8 once percent-decoded".to_string())
}

fn root_cert(value: &str) -> RootCert {
    match value {
        "system" => RootCert::System,
        path => RootCert::File(PathBuf::from(path)),
    }
}

/// The rustls configuration for a check: TLS 1.2 and 1.3 with the shared
/// provider, ALPN `postgresql` (what PostgreSQL 17 asks for with direct TLS
/// negotiation; older servers ignore it), no client certificate. Err: why a
/// root certificate file cannot be used, or the system has no CA store.
fn client_config(check: &Check) -> Result<rustls::ClientConfig, String> {
    let provider = ops_worker_jobs::tls::provider();
    let verifier: Arc<dyn ServerCertVerifier> = match check {
        Check::Nothing => Arc::new(LenientCheck {
            chain: None,
            provider: provider.clone(),
        }),
        Check::Chain(path) => Arc::new(LenientCheck {
            chain: Some(file_verifier(path, &provider)?),
            provider: provider.clone(),
        }),
        Check::ChainAndName(Some(path)) => file_verifier(path, &provider)?,
        Check::ChainAndName(None) => ops_worker_jobs::tls::system_verifier().map_err(|e| {
            format!(
                "the system has no CA certificates to check the server against ({e}): \
                 install ca-certificates, or give sslrootcert"
            )
        })?,
    };
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("ring supports TLS 1.2 and 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"postgresql".to_vec()];
    Ok(config)
}

/// Chain and name checks against the CA certificates of a PEM file.
fn file_verifier(
    path: &Path,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<WebPkiServerVerifier>, String> {
    let shown = path.display();
    let unreadable = |e: pem::Error| match e {
        pem::Error::Io(e) => format!("cannot read {shown}: {e}"),
        e => format!("{shown} is not a PEM file of certificates: {e}"),
    };
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(path).map_err(unreadable)? {
        roots
            .add(cert.map_err(unreadable)?)
            .map_err(|e| format!("{shown}: unusable certificate: {e}"))?;
    }
    if roots.is_empty() {
        return Err(format!(
            "{shown} holds no certificate (expected PEM, \"-----BEGIN CERTIFICATE-----\")"
        ));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("{shown}: {e}"))
}

/// `prefer` and `require`: any certificate is accepted (libpq checks
/// nothing either); `verify-ca`: the full check less the host name. The
/// handshake signatures are verified with the provider either way, so the
/// session is bound to the key the server presented.
#[derive(Debug)]
struct LenientCheck {
    /// `verify-ca`: rustls's verifier over the root file. It checks the
    /// name last, once the chain is known good, so a name error is the one
    /// to forgive.
    chain: Option<Arc<WebPkiServerVerifier>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for LenientCheck {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let Some(chain) = &self.chain else {
            return Ok(ServerCertVerified::assertion());
        };
        match chain.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            checked => checked,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |key| vars.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone())
    }

    fn parse_env(url: &str, vars: &[(&str, &str)]) -> Result<PgUrl, DbError> {
        PgUrl::parse(url, &env_of(vars))
    }

    fn parse(url: &str) -> Result<PgUrl, DbError> {
        parse_env(url, &[])
    }

    #[test]
    fn tls_params_are_taken_out_and_the_rest_kept_as_written() {
        let cases = [
            ("postgres://h/db", "postgres://h/db", None, None),
            (
                "postgres://u:p@h/db?sslmode=require",
                "postgres://u:p@h/db",
                Some("require"),
                None,
            ),
            (
                "postgres://h/db?application_name=a%20b&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&connect_timeout=3",
                "postgres://h/db?application_name=a%20b&connect_timeout=3",
                Some("verify-full"),
                Some("/etc/ca.pem"),
            ),
            // The last one wins, as in tokio-postgres.
            (
                "postgres://h/db?sslmode=disable&sslmode=prefer",
                "postgres://h/db",
                Some("prefer"),
                None,
            ),
            // A `?` in the credentials is not the query's.
            (
                "postgres://u:p?x@h/db?sslmode=require",
                "postgres://u:p?x@h/db",
                Some("require"),
                None,
            ),
        ];
        for (url, rest, mode, root) in cases {
            let (got_rest, found) = split_tls_params(url).unwrap();
            assert_eq!(got_rest, rest, "{url}");
            assert_eq!(found.mode.as_deref(), mode, "{url}");
            assert_eq!(found.root_cert.as_deref(), root, "{url}");
        }
    }

    #[test]
    fn the_url_wins_over_the_environment_which_wins_over_the_default() {
        let env = [
            ("PGSSLMODE", "verify-full"),
            ("PGSSLROOTCERT", "/env/ca.pem"),
        ];
        let url = parse_env("postgres://h/db?sslmode=disable", &env).unwrap();
        assert_eq!(url.tls().mode(), SslMode::Disable);

        let url = parse_env("postgres://h/db", &env).unwrap();
        assert_eq!(url.tls().mode(), SslMode::VerifyFull);
        assert_eq!(
            url.tls().check,
            Check::ChainAndName(Some(PathBuf::from("/env/ca.pem")))
        );
        assert_eq!(
            url.tls().to_string(),
            "sslmode=verify-full (from PGSSLMODE), sslrootcert=/env/ca.pem (from PGSSLROOTCERT)"
        );

        let url = parse_env("postgres://h/db?sslrootcert=/url/ca.pem", &env).unwrap();
        assert_eq!(
            url.tls().check,
            Check::ChainAndName(Some(PathBuf::from("/url/ca.pem")))
        );
        assert_eq!(
            url.tls().to_string(),
            "sslmode=verify-full (from PGSSLMODE), sslrootcert=/url/ca.pem"
        );

        // Unset or empty: libpq's default.
        for env in [&[][..], &[("PGSSLMODE", ""), ("PGSSLROOTCERT", " ")]] {
            let url = parse_env("postgres://h/db", env).unwrap();
            assert_eq!(url.tls().mode(), SslMode::Prefer);
            assert_eq!(url.tls().check, Check::Nothing);
            assert_eq!(url.tls().to_string(), "sslmode=prefer");
        }
    }

    #[test]
    fn each_mode_checks_what_libpq_checks() {
        let cases = [
            ("sslmode=disable", Check::Nothing),
            ("sslmode=prefer", Check::Nothing),
            ("sslmode=prefer&sslrootcert=/ca.pem", Check::Nothing),
            ("sslmode=require", Check::Nothing),
            // libpq: require with a root certificate behaves like verify-ca.
            (
                "sslmode=require&sslrootcert=/ca.pem",
                Check::Chain("/ca.pem".into()),
            ),
            (
                "sslmode=verify-ca&sslrootcert=/ca.pem",
                Check::Chain("/ca.pem".into()),
            ),
            ("sslmode=verify-full", Check::ChainAndName(None)),
            (
                "sslmode=verify-full&sslrootcert=/ca.pem",
                Check::ChainAndName(Some("/ca.pem".into())),
            ),
            ("sslrootcert=system", Check::ChainAndName(None)),
            (
                "sslmode=verify-full&sslrootcert=system",
                Check::ChainAndName(None),
            ),
        ];
        for (query, check) in cases {
            let url = parse(&format!("postgres://h/db?{query}")).unwrap();
            assert_eq!(url.tls().check, check, "{query}");
        }
        let system = parse("postgres://h/db?sslrootcert=system").unwrap();
        assert_eq!(system.tls().mode(), SslMode::VerifyFull);
    }

    #[test]
    fn bad_settings_name_the_parameter_or_variable_and_hide_the_password() {
        let url_cases = [
            ("sslmode=bogus", "sslmode: invalid value \"bogus\""),
            ("sslmode=", "sslmode: invalid value \"\""),
            ("sslmode=allow", "\"allow\" is not supported"),
            ("sslmode=verify-ca", "sslmode=verify-ca needs sslrootcert"),
            (
                "sslmode=require&sslrootcert=system",
                "sslmode=require cannot be used with sslrootcert=system",
            ),
            ("sslmode=%ff", "sslmode: not valid UTF-8"),
            // tokio-postgres's own checks, now at parsing.
            ("port=abc", "invalid value for option `port`"),
            ("sslcert=/x.pem", "unknown option `sslcert`"),
        ];
        for (query, want) in url_cases {
            let err = parse(&format!("postgres://ops:hunter2@h/db?{query}")).unwrap_err();
            assert!(matches!(err, DbError::BadUrl { .. }), "{query}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with("DATABASE_URL: "), "{msg}");
            assert!(msg.contains(want), "{msg} should contain {want}");
            assert!(msg.contains("postgres://ops:***@h/db"), "{msg}");
            assert!(!msg.contains("hunter2") && !msg.contains('\n'), "{msg}");
        }

        let env_cases = [
            (
                &[("PGSSLMODE", "bogus")][..],
                "PGSSLMODE: invalid value \"bogus\"",
            ),
            (
                &[("PGSSLMODE", "verify-ca")],
                "PGSSLMODE: sslmode=verify-ca needs sslrootcert",
            ),
            (
                &[("PGSSLMODE", "require"), ("PGSSLROOTCERT", "system")],
                "PGSSLMODE: sslmode=require cannot be used with sslrootcert=system",
            ),
        ];
        for (env, want) in env_cases {
            let err = parse_env("postgres://ops:hunter2@h/db", env).unwrap_err();
            assert!(matches!(err, DbError::BadEnv { .. }), "{env:?}: {err:?}");
            let msg = err.to_string();
            assert!(msg.starts_with(want), "{msg} should start with {want}");
            assert!(!msg.contains("hunter2"), "{msg}");
        }
        // The URL's own sslmode is not looked at through a bad variable.
        parse_env("postgres://h/db?sslmode=require", &[("PGSSLMODE", "bogus")]).unwrap();
    }

    #[test]
    fn an_unusable_root_certificate_file_names_where_it_came_from() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(
            &garbage,
            "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let cases = [
            (&missing, "cannot read"),
            (&empty, "holds no certificate"),
            (&garbage, "unusable certificate"),
        ];
        for (path, want) in cases {
            let path = path.display().to_string();
            let url = parse(&format!(
                "postgres://ops:hunter2@h/db?sslmode=verify-full&sslrootcert={path}"
            ))
            .unwrap();
            let Err(err) = url.connector() else {
                panic!("{path} was accepted")
            };
            let msg = err.to_string();
            assert!(matches!(err, DbError::BadUrl { .. }), "{err:?}");
            assert!(msg.starts_with("DATABASE_URL: sslrootcert: "), "{msg}");
            assert!(msg.contains(&path) && msg.contains(want), "{msg}");
            assert!(!msg.contains("hunter2"), "{msg}");

            let url = parse_env(
                "postgres://h/db",
                &[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", &path)],
            )
            .unwrap();
            let Err(err) = url.connector() else {
                panic!("{path} was accepted")
            };
            let msg = err.to_string();
            assert!(msg.starts_with("PGSSLROOTCERT: "), "{msg}");
            assert!(msg.contains(&path) && msg.contains(want), "{msg}");
        }
    }

    #[test]
    fn tokio_postgres_gets_the_strongest_mode_it_knows_and_none_over_a_unix_socket() {
        use tokio_postgres::config::SslMode as Tp;
        let cases = [
            ("postgres://h/db?sslmode=disable", Tp::Disable),
            ("postgres://h/db", Tp::Prefer),
            ("postgres://h/db?sslmode=require", Tp::Require),
            ("postgres://h/db?sslmode=verify-full", Tp::Require),
            (
                "postgres://%2Fvar%2Frun%2Fpostgresql/db?sslmode=require",
                Tp::Disable,
            ),
            ("postgres:///db?host=/tmp&sslmode=require", Tp::Disable),
        ];
        for (url, want) in cases {
            let connector = parse(url).unwrap().connector().unwrap();
            assert_eq!(connector.config.get_ssl_mode(), want, "{url}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let url = parse("postgres://ops:hunter2@h/db?password=hunter2").unwrap();
        let shown = format!("{url:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("ops:***@h"), "{shown}");
    }
}

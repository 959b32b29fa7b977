//! A small SMTP server for tests, on 127.0.0.1: EHLO, STARTTLS (rustls,
//! a self-signed certificate from rcgen), AUTH PLAIN and LOGIN against one
//! user, MAIL, RCPT (some recipients rejected), DATA, RSET, NOOP, QUIT.
//! It records every message it accepted and every login it refused.

use std::sync::{Arc, Mutex};

use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_rustls::rustls;

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// Headers and body as sent (dot-stuffing undone).
    pub data: String,
    /// Whether the session was encrypted and authenticated when it was sent.
    pub tls: bool,
    pub user: Option<String>,
}

impl Mail {
    /// The value of header `name` (first occurrence, unfolded: the line
    /// breaks of a folded header removed, its whitespace kept).
    pub fn header(&self, name: &str) -> Option<String> {
        let head = self.data.split("\r\n\r\n").next()?;
        let mut out: Option<String> = None;
        for line in head.split("\r\n") {
            if let Some(v) = &mut out {
                if line.starts_with([' ', '\t']) {
                    v.push_str(line);
                    continue;
                }
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case(name) {
                    out = Some(v.trim().to_string());
                }
            }
        }
        out
    }
}

#[derive(Default)]
pub struct State {
    pub mails: Vec<Mail>,
    /// Logins refused, as `user`.
    pub refused_logins: Vec<String>,
    /// Recipients answered 550.
    pub reject: Vec<String>,
    pub password: String,
}

pub struct SmtpServer {
    pub port: u16,
    /// The server certificate (PEM), for the client's `ca_file`.
    pub cert_pem: String,
    pub state: Arc<Mutex<State>>,
}

impl SmtpServer {
    /// Serves until the test ends; `user`/`password` is the one login.
    pub async fn start(user: &str, password: &str) -> SmtpServer {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
        let cert_pem = certified.cert.pem();
        let key =
            rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            password: password.to_string(),
            ..State::default()
        }));
        let shared = state.clone();
        let user = user.to_string();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (state, acceptor, user) = (shared.clone(), acceptor.clone(), user.clone());
                tokio::spawn(async move {
                    let mut session = Session {
                        state,
                        user,
                        tls: false,
                        authed: None,
                    };
                    let mut plain = BufReader::new(socket);
                    if plain
                        .get_mut()
                        .write_all(b"220 127.0.0.1 ESMTP test\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    if let Some(()) = session.serve(&mut plain).await {
                        let Ok(tls) = acceptor.accept(plain.into_inner()).await else {
                            return;
                        };
                        session.tls = true;
                        session.serve(&mut BufReader::new(tls)).await;
                    }
                });
            }
        });
        SmtpServer {
            port,
            cert_pem,
            state,
        }
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }
}

struct Session {
    state: Arc<Mutex<State>>,
    user: String,
    tls: bool,
    authed: Option<String>,
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

impl Session {
    /// Serves commands until QUIT or EOF (`None`) or STARTTLS (`Some`: the
    /// caller upgrades the connection and serves again).
    async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut BufReader<S>,
    ) -> Option<()> {
        let mut from = String::new();
        let mut to = Vec::new();
        loop {
            let line = read_line(io).await?;
            let upper = line.to_ascii_uppercase();
            let reply: String = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                if self.tls {
                    "250-127.0.0.1\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME".into()
                } else {
                    "250-127.0.0.1\r\n250 STARTTLS".into()
                }
            } else if upper == "STARTTLS" && !self.tls {
                write(io, "220 go ahead").await?;
                return Some(());
            } else if upper.starts_with("AUTH PLAIN") {
                let arg = line[10..].trim().to_string();
                let arg = if arg.is_empty() {
                    write(io, "334 ").await?;
                    read_line(io).await?
                } else {
                    arg
                };
                let decoded = b64(&arg);
                let mut parts = decoded.split('\0').skip(1);
                let (u, p) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                self.login(u, p)
            } else if upper.starts_with("AUTH LOGIN") {
                write(io, "334 VXNlcm5hbWU6").await?;
                let u = b64(&read_line(io).await?);
                write(io, "334 UGFzc3dvcmQ6").await?;
                let p = b64(&read_line(io).await?);
                self.login(&u, &p)
            } else if upper.starts_with("MAIL FROM:") {
                if self.authed.is_none() {
                    "530 5.7.0 authentication required".into()
                } else {
                    from = line[10..].trim().to_string();
                    to.clear();
                    "250 ok".into()
                }
            } else if upper.starts_with("RCPT TO:") {
                let rcpt = line[8..].trim().trim_matches(['<', '>']).to_string();
                if self.state.lock().unwrap().reject.contains(&rcpt) {
                    format!("550 5.1.1 <{rcpt}>: no such user")
                } else {
                    to.push(rcpt);
                    "250 ok".into()
                }
            } else if upper == "DATA" {
                write(io, "354 end with <CRLF>.<CRLF>").await?;
                let mut data = String::new();
                loop {
                    let l = read_line(io).await?;
                    if l == "." {
                        break;
                    }
                    data.push_str(l.strip_prefix('.').unwrap_or(&l));
                    data.push_str("\r\n");
                }
                self.state.lock().unwrap().mails.push(Mail {
                    from: std::mem::take(&mut from),
                    to: std::mem::take(&mut to),
                    data,
                    tls: self.tls,
                    user: self.authed.clone(),
                });
                "250 queued".into()
            } else if upper == "QUIT" {
                write(io, "221 bye").await?;
                return None;
            } else if upper == "RSET" || upper == "NOOP" {
                "250 ok".into()
            } else {
                "502 command not implemented".into()
            };
            write(io, &reply).await?;
        }
    }

    fn login(&mut self, user: &str, password: &str) -> String {
        let mut s = self.state.lock().unwrap();
        if user == self.user && password == s.password {
            self.authed = Some(user.to_string());
            "235 2.7.0 authenticated".into()
        } else {
            s.refused_logins.push(user.to_string());
            "535 5.7.8 authentication credentials invalid".into()
        }
    }
}

async fn read_line<S: AsyncRead + AsyncWrite + Unpin>(io: &mut BufReader<S>) -> Option<String> {
    let mut line = String::new();
    match io.read_line(&mut line).await {
        Ok(0) | Err(_) => None,
        Ok(_) => Some(line.trim_end_matches(['\r', '\n']).to_string()),
    }
}

async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    io: &mut BufReader<S>,
    reply: &str,
) -> Option<()> {
    let w = io.get_mut();
    w.write_all(format!("{reply}\r\n").as_bytes()).await.ok()?;
    w.flush().await.ok()
}

//! A local SMTP sink speaking enough of RFC 5321 for a client to submit mail: the
//! greeting, `EHLO`/`HELO`, `MAIL FROM`, `RCPT TO`, `DATA` (dot-unstuffed), `RSET`,
//! `NOOP` and `QUIT`; no TLS, no authentication. It keeps every message it accepted, and
//! can be told to answer the next transactions' `MAIL FROM` with a given reply
//! (`451 …` transient, `550 …` permanent).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    /// The `EHLO`/`HELO` argument.
    pub hello: String,
    /// The `MAIL FROM` address, without brackets.
    pub from: String,
    /// The `RCPT TO` addresses, without brackets.
    pub recipients: Vec<String>,
    /// The message as sent after `DATA`, dot-unstuffed, without the final dot.
    pub data: Vec<u8>,
}

#[derive(Default)]
struct Shared {
    received: Mutex<Vec<Received>>,
    refusals: Mutex<VecDeque<String>>,
}

pub struct SmtpSink {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Starts a sink on a free loopback port.
pub async fn start() -> SmtpSink {
    start_on("127.0.0.1:0".parse().expect("addr")).await
}

/// Starts a sink on `addr` (a port that was refusing connections until now).
pub async fn start_on(addr: SocketAddr) -> SmtpSink {
    let listener = TcpListener::bind(addr).await.expect("bind smtp sink");
    let addr = listener.local_addr().expect("addr");
    let shared = Arc::new(Shared::default());
    let server = tokio::spawn({
        let shared = shared.clone();
        async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(session(stream, shared.clone()));
            }
        }
    });
    SmtpSink {
        addr,
        shared,
        server,
    }
}

/// A loopback port nothing listens on (for a relay that is down).
pub async fn closed_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    listener.local_addr().expect("addr")
}

impl SmtpSink {
    /// Every message accepted so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("sink").clone()
    }

    /// Answers the next `MAIL FROM` with `reply` (e.g. `550 5.7.1 relaying denied`).
    pub fn refuse_next(&self, reply: &str) {
        self.shared
            .refusals
            .lock()
            .expect("sink")
            .push_back(reply.to_owned());
    }
}

/// `FROM:<a@b>` → `<a@b>`.
fn after_colon(arg: &str) -> &str {
    arg.split_once(':').map_or(arg, |(_, rest)| rest)
}

/// `<a@b> SIZE=10` → `a@b`.
fn address(arg: &str) -> String {
    let arg = arg.trim();
    let inner = arg
        .split_once('<')
        .and_then(|(_, rest)| rest.split_once('>'))
        .map_or(arg, |(inner, _)| inner);
    inner.to_owned()
}

async fn reply(write: &mut OwnedWriteHalf, text: &str) -> bool {
    write.write_all(text.as_bytes()).await.is_ok()
}

async fn session(stream: TcpStream, shared: Arc<Shared>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if !reply(&mut write, "220 sink.test ESMTP test sink\r\n").await {
        return;
    }
    let mut hello = String::new();
    let mut from: Option<String> = None;
    let mut recipients = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        match lines.read_line(&mut line).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let command = line.trim_end_matches(['\r', '\n']);
        let (verb, arg) = command.split_once(' ').unwrap_or((command, ""));
        let answer = match verb.to_ascii_uppercase().as_str() {
            "EHLO" => {
                hello = arg.to_owned();
                "250-sink.test greets you\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n".to_owned()
            }
            "HELO" => {
                hello = arg.to_owned();
                "250 sink.test\r\n".to_owned()
            }
            "MAIL" => {
                let refusal = shared.refusals.lock().expect("sink").pop_front();
                match refusal {
                    Some(refusal) => format!("{refusal}\r\n"),
                    None => {
                        from = Some(address(after_colon(arg)));
                        recipients.clear();
                        "250 2.1.0 Ok\r\n".to_owned()
                    }
                }
            }
            "RCPT" if from.is_some() => {
                recipients.push(address(after_colon(arg)));
                "250 2.1.5 Ok\r\n".to_owned()
            }
            "DATA" if from.is_some() && !recipients.is_empty() => {
                if !reply(&mut write, "354 End data with <CR><LF>.<CR><LF>\r\n").await {
                    return;
                }
                let mut data = Vec::new();
                loop {
                    line.clear();
                    match lines.read_line(&mut line).await {
                        Ok(0) | Err(_) => return,
                        Ok(_) => {}
                    }
                    if line == ".\r\n" || line == ".\n" {
                        break;
                    }
                    let unstuffed = line.strip_prefix('.').unwrap_or(&line);
                    data.extend_from_slice(unstuffed.as_bytes());
                }
                let mut received = shared.received.lock().expect("sink");
                received.push(Received {
                    hello: hello.clone(),
                    from: from.take().unwrap_or_default(),
                    recipients: std::mem::take(&mut recipients),
                    data,
                });
                format!("250 2.0.0 Ok: queued as SINK{}\r\n", received.len())
            }
            "RCPT" | "DATA" => "503 5.5.1 Bad sequence of commands\r\n".to_owned(),
            "RSET" => {
                from = None;
                recipients.clear();
                "250 2.0.0 Ok\r\n".to_owned()
            }
            "NOOP" => "250 2.0.0 Ok\r\n".to_owned(),
            "QUIT" => {
                let _ = reply(&mut write, "221 2.0.0 Bye\r\n").await;
                return;
            }
            _ => "502 5.5.2 Command not recognized\r\n".to_owned(),
        };
        if !reply(&mut write, &answer).await {
            return;
        }
    }
}

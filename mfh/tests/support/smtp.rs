//! A minimal SMTP server on 127.0.0.1 for the notifier's tests: it speaks the RFC 5321
//! exchange a client needs (greeting, EHLO/HELO, MAIL, RCPT, DATA with dot-unstuffing,
//! RSET, NOOP, QUIT) over a real socket and keeps every message it accepts.

use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// One accepted message.
#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub type Inbox = Arc<Mutex<Vec<Received>>>;

/// Starts the server; returns its `smtp://127.0.0.1:PORT` URL and the inbox.
pub async fn start(cancel: &mfh_pipeline::CancellationToken) -> (String, Inbox) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("smtp://{}", listener.local_addr().unwrap());
    let inbox: Inbox = Arc::default();
    let keep = inbox.clone();
    let stop = cancel.clone();
    tokio::spawn(async move {
        loop {
            let (sock, _) = tokio::select! {
                () = stop.cancelled() => return,
                r = listener.accept() => match r { Ok(s) => s, Err(_) => return },
            };
            tokio::spawn(session(sock, keep.clone()));
        }
    });
    (url, inbox)
}

async fn say(w: &mut tokio::net::tcp::OwnedWriteHalf, s: &str) -> bool {
    w.write_all(format!("{s}\r\n").as_bytes()).await.is_ok()
}

async fn session(sock: tokio::net::TcpStream, inbox: Inbox) {
    let (r, mut w) = sock.into_split();
    let mut lines = BufReader::new(r);
    if !say(&mut w, "220 mfh-test ESMTP").await {
        return;
    }
    let (mut from, mut to) = (String::new(), Vec::new());
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let cmd = line.trim_end().to_owned();
        let upper = cmd.to_ascii_uppercase();
        let ok = if upper.starts_with("EHLO") {
            say(&mut w, "250-mfh-test").await && say(&mut w, "250 8BITMIME").await
        } else if upper.starts_with("HELO") || upper.starts_with("NOOP") {
            say(&mut w, "250 OK").await
        } else if upper.starts_with("MAIL FROM:") {
            from = cmd[10..].trim().to_owned();
            to.clear();
            say(&mut w, "250 OK").await
        } else if upper.starts_with("RCPT TO:") {
            to.push(cmd[8..].trim().to_owned());
            say(&mut w, "250 OK").await
        } else if upper == "DATA" {
            if !say(&mut w, "354 End data with <CR><LF>.<CR><LF>").await {
                return;
            }
            let mut data = String::new();
            loop {
                line.clear();
                if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                if line == ".\r\n" || line == ".\n" {
                    break;
                }
                data.push_str(line.strip_prefix('.').unwrap_or(&line));
            }
            inbox.lock().unwrap().push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            say(&mut w, "250 OK: queued").await
        } else if upper == "RSET" {
            from.clear();
            to.clear();
            say(&mut w, "250 OK").await
        } else if upper == "QUIT" {
            let _ = say(&mut w, "221 Bye").await;
            return;
        } else {
            say(&mut w, "502 Command not implemented").await
        };
        if !ok {
            return;
        }
    }
}

//! A small SOCKS5 proxy on 127.0.0.1:0 for tests (RFC 1928 `CONNECT`, RFC 1929 user and
//! password), counting the tunnels it opened and recording their targets as the client sent
//! them (a name for `socks5h://`, an address for `socks5://`).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;

use super::proxy::{listen, Counters};

/// The proxy; stops (and drops every connection) when dropped.
pub struct SocksProxy {
    pub addr: SocketAddr,
    pub counters: Arc<Counters>,
    _tasks: JoinSet<()>,
}

impl SocksProxy {
    /// A proxy that asks for `auth` (user, password) when given, else for nothing.
    pub async fn start(auth: Option<(String, String)>) -> SocksProxy {
        let counters = Arc::new(Counters::default());
        let c = counters.clone();
        let (addr, tasks) = listen(move |stream| {
            let (auth, c) = (auth.clone(), c.clone());
            async move {
                let _ = serve(stream, auth, &c).await;
            }
        })
        .await;
        SocksProxy {
            addr,
            counters,
            _tasks: tasks,
        }
    }

    /// `scheme://[user:password@]127.0.0.1:port`.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((u, p)) => format!("{scheme}://{u}:{p}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    pub fn tunnels(&self) -> usize {
        self.counters.tunnels.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> usize {
        self.counters.refused.load(Ordering::SeqCst)
    }

    pub fn targets(&self) -> Vec<String> {
        self.counters.targets.lock().unwrap().clone()
    }
}

async fn serve(
    mut client: TcpStream,
    auth: Option<(String, String)>,
    c: &Counters,
) -> std::io::Result<()> {
    // Greeting: VER 5, NMETHODS, METHODS.
    let mut head = [0u8; 2];
    client.read_exact(&mut head).await?;
    let mut methods = vec![0u8; usize::from(head[1])];
    client.read_exact(&mut methods).await?;
    let wanted = if auth.is_some() { 2 } else { 0 };
    if head[0] != 5 || !methods.contains(&wanted) {
        client.write_all(&[5, 0xff]).await?;
        return Ok(());
    }
    client.write_all(&[5, wanted]).await?;
    if let Some((user, password)) = auth {
        // RFC 1929: VER 1, ULEN, UNAME, PLEN, PASSWD.
        let mut ver_len = [0u8; 2];
        client.read_exact(&mut ver_len).await?;
        let mut u = vec![0u8; usize::from(ver_len[1])];
        client.read_exact(&mut u).await?;
        let mut plen = [0u8; 1];
        client.read_exact(&mut plen).await?;
        let mut p = vec![0u8; usize::from(plen[0])];
        client.read_exact(&mut p).await?;
        if u != user.as_bytes() || p != password.as_bytes() {
            c.refused.fetch_add(1, Ordering::SeqCst);
            client.write_all(&[1, 1]).await?;
            return Ok(());
        }
        client.write_all(&[1, 0]).await?;
    }
    // Request: VER 5, CMD 1 (CONNECT), RSV, ATYP, address, port.
    let mut req = [0u8; 4];
    client.read_exact(&mut req).await?;
    let host = match req[3] {
        1 => {
            let mut ip = [0u8; 4];
            client.read_exact(&mut ip).await?;
            Ipv4Addr::from(ip).to_string()
        }
        3 => {
            let mut len = [0u8; 1];
            client.read_exact(&mut len).await?;
            let mut name = vec![0u8; usize::from(len[0])];
            client.read_exact(&mut name).await?;
            String::from_utf8_lossy(&name).into_owned()
        }
        4 => {
            let mut ip = [0u8; 16];
            client.read_exact(&mut ip).await?;
            format!("[{}]", Ipv6Addr::from(ip))
        }
        _ => return Ok(()),
    };
    let mut port = [0u8; 2];
    client.read_exact(&mut port).await?;
    let target = format!("{host}:{}", u16::from_be_bytes(port));
    c.targets.lock().unwrap().push(target.clone());
    let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
        // REP 5: connection refused.
        client.write_all(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
        return Ok(());
    };
    client.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).await?;
    c.tunnels.fetch_add(1, Ordering::SeqCst);
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    Ok(())
}

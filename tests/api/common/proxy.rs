//! A TCP proxy a test puts between the service and a server, to make the
//! network misbehave: swallow everything (as a partition would) and cut
//! every connection.

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
    sync::watch,
};

pub struct Proxy {
    pub addr: SocketAddr,
    swallow: Arc<AtomicBool>,
    cut: watch::Sender<u64>,
}

impl Proxy {
    /// Forwards connections on a fresh loopback port to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let swallow = Arc::new(AtomicBool::new(false));
        let (cut, cut_rx) = watch::channel(0u64);
        let flag = Arc::clone(&swallow);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let flag = Arc::clone(&flag);
                let mut cut = cut_rx.clone();
                // Only cuts from now on close this connection.
                cut.borrow_and_update();
                tokio::spawn(async move {
                    let (mut cr, mut cw) = client.into_split();
                    let (mut sr, mut sw) = server.into_split();
                    let up = Arc::clone(&flag);
                    let to_server = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match cr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if !up.load(Ordering::SeqCst) && sw.write_all(&buf[..n]).await.is_err()
                            {
                                return;
                            }
                        }
                    };
                    let to_client = async move {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match sr.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if !flag.load(Ordering::SeqCst)
                                && cw.write_all(&buf[..n]).await.is_err()
                            {
                                return;
                            }
                        }
                    };
                    tokio::select! {
                        () = to_server => {},
                        () = to_client => {},
                        _ = cut.changed() => {},
                    }
                });
            }
        });
        Self { addr, swallow, cut }
    }

    /// Swallows every byte in both directions (nothing arrives, no error).
    pub fn swallow(&self, on: bool) {
        self.swallow.store(on, Ordering::SeqCst);
    }

    /// Closes every connection open now.
    pub fn cut(&self) {
        self.cut.send_modify(|n| *n += 1);
    }
}

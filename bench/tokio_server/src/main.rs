//! Baseline for the zig_tcp benchmark: a tokio echo (or sink) server on a
//! current-thread runtime (one I/O thread, like the other baselines).
//!
//!   tokio_server PORT [echo|sink] [READ_BYTES]
use std::io::Write;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let port: u16 = args.get(1).and_then(|s| s.parse().ok()).expect("usage: tokio_server PORT [echo|sink] [READ_BYTES]");
    let sink = args.get(2).map(|s| s == "sink").unwrap_or(false);
    let buf_len: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(65536);
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().expect("runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(("127.0.0.1", port)).await.expect("bind");
        println!("ready {}", port);
        std::io::stdout().flush().ok();
        loop {
            let (mut sock, _) = match listener.accept().await {
                Ok(x) => x,
                Err(_) => continue,
            };
            let _ = sock.set_nodelay(true);
            tokio::task::spawn(async move {
                let mut buf = vec![0u8; buf_len];
                loop {
                    let n = match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    if !sink && sock.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
}

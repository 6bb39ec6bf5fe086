//! A minimal HTTP/1.1 keep-alive client for the benchmarks' load generators: one request at a time,
//! `Content-Length` bodies only, no allocation per request once warm.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A minimal HTTP/1.1 keep-alive client: one request at a time, `Content-Length` bodies only.
pub struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Where the last response's body starts and the response ends, in `buf`.
    body: (usize, usize),
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> std::io::Result<Self> {
        let stream = TcpStream::connect(addr).await?;
        stream.set_nodelay(true)?;
        Ok(Self { stream, buf: Vec::with_capacity(8192), body: (0, 0) })
    }

    /// Sends one request and reads its response; returns the status.
    pub async fn send(&mut self, request: &[u8]) -> std::io::Result<u16> {
        self.buf.drain(..self.body.1);
        self.body = (0, 0);
        self.stream.write_all(request).await?;
        loop {
            if let Some((status, head_end, length)) = parse_head(&self.buf)? {
                while self.buf.len() < head_end + length {
                    self.fill().await?;
                }
                self.body = (head_end, head_end + length);
                return Ok(status);
            }
            self.fill().await?;
        }
    }

    pub fn body(&self) -> &[u8] {
        &self.buf[self.body.0..self.body.1]
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        self.buf.reserve(4096);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

/// (status, end of the head, body length) once the whole head is in `buf`.
fn parse_head(buf: &[u8]) -> std::io::Result<Option<(u16, usize, usize)>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else { return Ok(None) };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut length = 0;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else { continue };
        if name.eq_ignore_ascii_case("content-length") {
            length = value.trim().parse().map_err(|_| bad("bad content-length"))?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported by this client"));
        }
    }
    Ok(Some((status, end + 4, length)))
}

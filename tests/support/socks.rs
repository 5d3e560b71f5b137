//! A real, minimal SOCKS5 server (RFC 1928): no authentication, `CONNECT` only, destinations given
//! as IPv4, IPv6 or a domain name. Tests put it between snapferry and a VPC-style domain whose name
//! only this server can resolve, and read [`SocksServer::connections`] to prove the traffic went
//! through it, as it would through a bastion's `ssh -D` proxy.
//!
//! Hand-written rather than a crate: the protocol subset is a hundred lines, and it must expose the
//! name-resolution hook and the connection and reply logs that the tests assert on.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const VERSION: u8 = 5;
const NO_AUTH: u8 = 0x00;
const NO_ACCEPTABLE_METHOD: u8 = 0xFF;
const CMD_CONNECT: u8 = 0x01;
const ATYP_IPV4: u8 = 0x01;
const ATYP_DOMAIN: u8 = 0x03;
const ATYP_IPV6: u8 = 0x04;

/// RFC 1928 reply codes this server sends.
pub mod reply {
    pub const SUCCEEDED: u8 = 0x00;
    pub const GENERAL_FAILURE: u8 = 0x01;
    pub const NETWORK_UNREACHABLE: u8 = 0x03;
    pub const HOST_UNREACHABLE: u8 = 0x04;
    pub const CONNECTION_REFUSED: u8 = 0x05;
    pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
    pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;
}

type Resolver = dyn Fn(&str) -> Option<IpAddr> + Send + Sync;

/// A SOCKS5 server on 127.0.0.1, stopped when dropped.
///
/// It runs on its own thread and runtime, so it keeps answering while a test blocks on the
/// `snapferry` binary, whatever runtime (if any) the test itself uses.
pub struct SocksServer {
    addr: SocketAddr,
    connections: Arc<Mutex<Vec<String>>>,
    replies: Arc<Mutex<Vec<(String, u8)>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SocksServer {
    /// Starts a server on a free port of 127.0.0.1. `resolve` maps a requested domain name to an
    /// address (the proxy side's DNS); a name it returns `None` for is answered "host unreachable".
    /// IP-address destinations are connected to as given.
    pub fn start(resolve: impl Fn(&str) -> Option<IpAddr> + Send + Sync + 'static) -> SocksServer {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .expect("the SOCKS server can listen on 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("the SOCKS listener can be non-blocking");
        let addr = listener
            .local_addr()
            .expect("the SOCKS listener has an address");
        let connections = Arc::new(Mutex::new(Vec::new()));
        let replies = Arc::new(Mutex::new(Vec::new()));
        let log = Log {
            connections: connections.clone(),
            replies: replies.clone(),
        };
        let resolve: Arc<Resolver> = Arc::new(resolve);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("socks5-server".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("the SOCKS server's runtime starts");
                runtime.block_on(async move {
                    let listener =
                        TcpListener::from_std(listener).expect("the SOCKS listener joins tokio");
                    tokio::select! {
                        () = accept_loop(listener, resolve, log) => {}
                        _ = stopped => {}
                    }
                });
            })
            .expect("the SOCKS server's thread starts");
        SocksServer {
            addr,
            connections,
            replies,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    /// Where the server listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `socks5h://127.0.0.1:<port>`: the `h` makes the client send names unresolved, so the proxy
    /// (and only the proxy) resolves them.
    pub fn url(&self) -> String {
        format!("socks5h://{}", self.addr)
    }

    /// Every destination requested so far, in order, as `host:port` (`[v6]:port` for IPv6),
    /// including those refused.
    pub fn connections(&self) -> Vec<String> {
        self.connections.lock().expect("SOCKS log lock").clone()
    }

    /// Every `CONNECT` answered so far, in the order answered, as `host:port` with the reply
    /// code sent ([`reply`]): whether the proxy refused a name (host unreachable) or relayed.
    pub fn replies(&self) -> Vec<(String, u8)> {
        self.replies.lock().expect("SOCKS log lock").clone()
    }
}

/// What the server records: destinations as requested, and each `CONNECT`'s answer.
#[derive(Clone)]
struct Log {
    connections: Arc<Mutex<Vec<String>>>,
    replies: Arc<Mutex<Vec<(String, u8)>>>,
}

impl Drop for SocksServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

async fn accept_loop(listener: TcpListener, resolve: Arc<Resolver>, log: Log) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            continue;
        };
        let (resolve, log) = (resolve.clone(), log.clone());
        tokio::spawn(async move {
            let _ = serve(client, &*resolve, &log).await;
        });
    }
}

/// Answers one client: method negotiation, one request, then relays bytes both ways.
async fn serve(mut client: TcpStream, resolve: &Resolver, log: &Log) -> std::io::Result<()> {
    let [version, n_methods] = read_array::<2>(&mut client).await?;
    if version != VERSION {
        return Ok(());
    }
    let mut methods = vec![0; usize::from(n_methods)];
    client.read_exact(&mut methods).await?;
    if !methods.contains(&NO_AUTH) {
        return client.write_all(&[VERSION, NO_ACCEPTABLE_METHOD]).await;
    }
    client.write_all(&[VERSION, NO_AUTH]).await?;

    let [version, command, _reserved, address_type] = read_array::<4>(&mut client).await?;
    if version != VERSION {
        return Ok(());
    }
    let destination = match address_type {
        ATYP_IPV4 => Destination::Ip(Ipv4Addr::from(read_array::<4>(&mut client).await?).into()),
        ATYP_IPV6 => Destination::Ip(Ipv6Addr::from(read_array::<16>(&mut client).await?).into()),
        ATYP_DOMAIN => {
            let [len] = read_array::<1>(&mut client).await?;
            let mut name = vec![0; usize::from(len)];
            client.read_exact(&mut name).await?;
            Destination::Name(String::from_utf8_lossy(&name).into_owned())
        }
        _ => return send_reply(&mut client, reply::ADDRESS_TYPE_NOT_SUPPORTED, None).await,
    };
    let port = client.read_u16().await?;
    let target = destination.with_port(port);
    log.connections
        .lock()
        .expect("SOCKS log lock")
        .push(target.clone());
    if command != CMD_CONNECT {
        return send_reply(&mut client, reply::COMMAND_NOT_SUPPORTED, None).await;
    }
    let answered = |code: u8| {
        log.replies
            .lock()
            .expect("SOCKS log lock")
            .push((target.clone(), code));
    };
    let ip = match destination {
        Destination::Ip(ip) => ip,
        Destination::Name(name) => match resolve(&name) {
            Some(ip) => ip,
            None => {
                answered(reply::HOST_UNREACHABLE);
                return send_reply(&mut client, reply::HOST_UNREACHABLE, None).await;
            }
        },
    };
    let mut upstream = match TcpStream::connect((ip, port)).await {
        Ok(upstream) => upstream,
        Err(e) => {
            let code = match e.kind() {
                std::io::ErrorKind::ConnectionRefused => reply::CONNECTION_REFUSED,
                std::io::ErrorKind::NetworkUnreachable => reply::NETWORK_UNREACHABLE,
                std::io::ErrorKind::HostUnreachable => reply::HOST_UNREACHABLE,
                _ => reply::GENERAL_FAILURE,
            };
            answered(code);
            return send_reply(&mut client, code, None).await;
        }
    };
    answered(reply::SUCCEEDED);
    send_reply(&mut client, reply::SUCCEEDED, upstream.local_addr().ok()).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

enum Destination {
    Ip(IpAddr),
    Name(String),
}

impl Destination {
    fn with_port(&self, port: u16) -> String {
        match self {
            Destination::Ip(ip) => SocketAddr::new(*ip, port).to_string(),
            Destination::Name(name) => format!("{name}:{port}"),
        }
    }
}

async fn read_array<const N: usize>(stream: &mut TcpStream) -> std::io::Result<[u8; N]> {
    let mut buf = [0; N];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

/// `VER REP RSV ATYP BND.ADDR BND.PORT`; failures carry `0.0.0.0:0`.
async fn send_reply(
    client: &mut TcpStream,
    code: u8,
    bound: Option<SocketAddr>,
) -> std::io::Result<()> {
    let bound = bound.unwrap_or_else(|| SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0)));
    let mut out = vec![VERSION, code, 0];
    match bound.ip() {
        IpAddr::V4(ip) => {
            out.push(ATYP_IPV4);
            out.extend_from_slice(&ip.octets());
        }
        IpAddr::V6(ip) => {
            out.push(ATYP_IPV6);
            out.extend_from_slice(&ip.octets());
        }
    }
    out.extend_from_slice(&bound.port().to_be_bytes());
    client.write_all(&out).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-rolled client: negotiates no-auth, sends CONNECT, returns the reply code and stream.
    async fn connect(proxy: SocketAddr, address: &[u8], port: u16) -> (u8, TcpStream) {
        let mut s = TcpStream::connect(proxy).await.expect("proxy reachable");
        s.write_all(&[VERSION, 1, NO_AUTH]).await.expect("greeting");
        assert_eq!(read_array::<2>(&mut s).await.expect("method"), [5, 0]);
        let mut request = vec![VERSION, CMD_CONNECT, 0];
        request.extend_from_slice(address);
        request.extend_from_slice(&port.to_be_bytes());
        s.write_all(&request).await.expect("request");
        let [version, code, _, atyp] = read_array::<4>(&mut s).await.expect("reply head");
        assert_eq!(version, VERSION);
        let rest = if atyp == ATYP_IPV6 { 16 + 2 } else { 4 + 2 };
        let mut bound = vec![0; rest];
        s.read_exact(&mut bound).await.expect("reply address");
        (code, s)
    }

    fn domain(name: &str) -> Vec<u8> {
        let mut a = vec![ATYP_DOMAIN, name.len() as u8];
        a.extend_from_slice(name.as_bytes());
        a
    }

    async fn echo_server() -> u16 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("echo listens");
        let port = listener.local_addr().expect("addr").port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        port
    }

    async fn round_trip(s: &mut TcpStream) -> Vec<u8> {
        s.write_all(b"ping").await.expect("write through the proxy");
        read_array::<4>(s).await.expect("echo").to_vec()
    }

    #[tokio::test]
    async fn relays_to_a_name_only_the_resolver_knows_and_to_an_ipv4_address() {
        let port = echo_server().await;
        let socks = SocksServer::start(|name| {
            (name == "echo.internal").then_some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        });

        let (code, mut s) = connect(socks.addr(), &domain("echo.internal"), port).await;
        assert_eq!(code, reply::SUCCEEDED);
        assert_eq!(round_trip(&mut s).await, b"ping");

        let mut v4 = vec![ATYP_IPV4];
        v4.extend_from_slice(&[127, 0, 0, 1]);
        let (code, mut s) = connect(socks.addr(), &v4, port).await;
        assert_eq!(code, reply::SUCCEEDED);
        assert_eq!(round_trip(&mut s).await, b"ping");

        assert_eq!(
            socks.connections(),
            [format!("echo.internal:{port}"), format!("127.0.0.1:{port}")]
        );
        assert_eq!(
            socks.replies(),
            [
                (format!("echo.internal:{port}"), reply::SUCCEEDED),
                (format!("127.0.0.1:{port}"), reply::SUCCEEDED)
            ]
        );
        assert!(socks.url().starts_with("socks5h://127.0.0.1:"));
    }

    #[tokio::test]
    async fn refuses_a_name_it_cannot_resolve_with_host_unreachable() {
        let socks = SocksServer::start(|_| None);
        let (code, mut s) = connect(socks.addr(), &domain("nowhere.sandbox.internal"), 443).await;
        assert_eq!(code, reply::HOST_UNREACHABLE);
        let mut rest = Vec::new();
        s.read_to_end(&mut rest)
            .await
            .expect("closed after refusal");
        assert!(rest.is_empty(), "nothing is relayed after a refusal");
        assert_eq!(socks.connections(), ["nowhere.sandbox.internal:443"]);
        assert_eq!(
            socks.replies(),
            [(
                "nowhere.sandbox.internal:443".to_owned(),
                reply::HOST_UNREACHABLE
            )]
        );
    }

    #[tokio::test]
    async fn takes_ipv6_destinations_and_refuses_other_commands() {
        let socks = SocksServer::start(|_| None);
        // A closed port on ::1: refused (or unreachable where IPv6 is off), never relayed.
        let port = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut v6 = vec![ATYP_IPV6];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        let (code, _) = connect(socks.addr(), &v6, port).await;
        assert_ne!(code, reply::SUCCEEDED);

        let mut s = TcpStream::connect(socks.addr()).await.expect("proxy");
        s.write_all(&[VERSION, 1, NO_AUTH]).await.expect("greeting");
        read_array::<2>(&mut s).await.expect("method");
        // BIND (0x02) to 127.0.0.1:80.
        s.write_all(&[VERSION, 0x02, 0, ATYP_IPV4, 127, 0, 0, 1, 0, 80])
            .await
            .expect("request");
        let [_, code, ..] = read_array::<10>(&mut s).await.expect("reply");
        assert_eq!(code, reply::COMMAND_NOT_SUPPORTED);

        assert_eq!(
            socks.connections(),
            [format!("[::1]:{port}"), "127.0.0.1:80".to_owned()]
        );
    }

    #[tokio::test]
    async fn refuses_clients_that_want_authentication() {
        let socks = SocksServer::start(|_| None);
        let mut s = TcpStream::connect(socks.addr()).await.expect("proxy");
        // Offers only username/password (0x02).
        s.write_all(&[VERSION, 1, 0x02]).await.expect("greeting");
        assert_eq!(
            read_array::<2>(&mut s).await.expect("method"),
            [VERSION, NO_ACCEPTABLE_METHOD]
        );
        assert!(socks.connections().is_empty());
    }
}

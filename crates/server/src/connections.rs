//! Connections: the file-descriptor limit, the caps on connections in all and per client
//! address, the request timeout and the body timeout.
//!
//! - At start the soft limit on open files is raised to the hard one where the system allows,
//!   and the server accepts at most that many connections less [`RESERVED_FDS`]: past the cap
//!   it stops accepting for a while instead of failing `accept` with `EMFILE`.
//! - A client address (an IPv4 address, or an IPv6 /64) may have at most
//!   `max_connections_per_address` connections open. A connection is counted from when it is
//!   accepted (for TLS, once its handshake is done) to its close, whether it sends a request or
//!   not, so that one address cannot hold the server's connections with idle ones. A request of
//!   one more is answered 429 with `Retry-After: 1` before any of its body is read, and its
//!   connection closed; one more that sends none is closed [`OVER_CAP_GRACE`] after it was
//!   accepted. Trusted proxies are exempt: their clients are behind them. Any other connection
//!   that sends nothing is closed after the 5 s head timeout.
//! - A body that does not arrive within `body_timeout` (10 s by default) is answered 408, and
//!   the connection closed.
//! - A request not answered within `request_timeout` (30 s by default) is answered 503.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::Duration;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Extensions, Payload, ServiceRequest, ServiceResponse};
use actix_web::http::ConnectionType;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _};
use ipnet::{IpNet, Ipv6Net};

use crate::error::ApiError;

/// File descriptors kept for everything but client connections: the listener, the database
/// pool, the charge log, Redis, the log files and the weather client's connections.
pub const RESERVED_FDS: u64 = 512;

/// Raises the soft limit on open files to the hard limit, where the system allows it, and
/// returns the soft limit then in force (`None` where it cannot be read).
#[must_use]
pub fn raise_fd_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            let raised = rustix::process::Rlimit {
                current: limit.maximum,
                maximum: limit.maximum,
            };
            match setrlimit(Resource::Nofile, raised) {
                Ok(()) => limit = getrlimit(Resource::Nofile),
                Err(error) => tracing::warn!(%error, "the open-file limit could not be raised"),
            }
        }
        limit.current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// How many connections the server accepts at once: `setting` when given, but never more than
/// the open-file limit less [`RESERVED_FDS`]; without a setting, that much.
#[must_use]
pub fn connection_cap(setting: Option<usize>, fd_limit: Option<u64>) -> usize {
    let room = fd_limit.map(|limit| {
        usize::try_from(limit.saturating_sub(RESERVED_FDS).max(1)).unwrap_or(usize::MAX)
    });
    match (setting, room) {
        (Some(setting), Some(room)) if setting > room => {
            tracing::warn!(
                max_connections = setting,
                allowed = room,
                "max_connections is above the open-file limit less the reserve; lowered"
            );
            room
        }
        (Some(setting), _) => setting,
        (None, Some(room)) => room,
        // actix-web's own default per worker, on a system that does not say.
        (None, None) => 25_000,
    }
}

/// The per-address cap, registered as app data and shared by every worker.
#[derive(Debug, Clone)]
pub struct PerAddress {
    limit: usize,
    trusted: Arc<[IpNet]>,
    open: Arc<Mutex<Open>>,
}

#[derive(Debug, Default)]
struct Open {
    by_address: HashMap<IpAddr, usize>,
    total: usize,
}

impl PerAddress {
    /// At most `limit` connections per address, none for the `trusted` proxies.
    #[must_use]
    pub fn new(limit: usize, trusted: &[IpNet]) -> Self {
        Self {
            limit,
            trusted: trusted.into(),
            open: Arc::default(),
        }
    }

    /// A place on the address of `ip`, until the returned guard is dropped; `None` at the cap.
    fn admit(&self, ip: IpAddr) -> Option<Held> {
        let address = group(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let count = open.by_address.entry(address).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        open.total += 1;
        crate::observe::client_connections(open.total);
        Some(Held {
            address,
            open: Arc::clone(&self.open),
        })
    }

    /// Gives `slot` a place on the address of `ip` (none for a trusted proxy's), or marks it
    /// over the cap and counts the refusal; returns whether it is over the cap.
    fn place(&self, slot: &Slot, ip: IpAddr) -> bool {
        // A dual-stack listener sees IPv4 clients as `::ffff:a.b.c.d`.
        let ip = ip.to_canonical();
        if self.trusted.iter().any(|net| net.contains(&ip)) {
            return false;
        }
        match self.admit(ip) {
            Some(held) => {
                *slot.held.borrow_mut() = Some(held);
                false
            }
            None => {
                crate::observe::connection_refused("per_address");
                slot.over_cap.set(true);
                true
            }
        }
    }

    /// How many connections `ip`'s address has open.
    #[must_use]
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.by_address.get(&group(ip)).copied().unwrap_or(0)
    }
}

/// The address a connection counts under: IPv6 by its /64, which one host or site gets.
fn group(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Net::new(v6, 64).map_or(v6, |net| net.network())),
        },
    }
}

/// A connection's place on its address, given back when the connection closes.
#[derive(Debug)]
struct Held {
    address: IpAddr,
    open: Arc<Mutex<Open>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = open.by_address.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.by_address.remove(&self.address);
            }
        }
        open.total = open.total.saturating_sub(1);
        crate::observe::client_connections(open.total);
    }
}

/// How long a connection over its address's cap may stay open without sending a request (one
/// that sends a request gets its 429 and is closed after it): short enough that a flood of idle
/// connections from one address cannot take the server's connections from the others.
pub const OVER_CAP_GRACE: Duration = Duration::from_secs(1);

/// What the server keeps per connection, as long as the connection lives.
#[derive(Default)]
struct Slot {
    /// The connection's place on its address, taken when it was accepted, or else by its first
    /// request.
    held: RefCell<Option<Held>>,
    /// The connection was over its address's cap when it was accepted: its requests are
    /// refused, and it is closed after [`OVER_CAP_GRACE`] unless one was.
    over_cap: Cell<bool>,
    /// A request of the connection was refused over the cap: actix-web closes the connection
    /// after the answer.
    refused: Cell<bool>,
    /// The unread body of a refused request. Kept until the connection closes, so that
    /// actix-http closes the connection after the answer: for a chunked body that nobody reads
    /// any more it would otherwise keep reading it, for as long as the client sends.
    parked: RefCell<Option<Payload>>,
}

impl Slot {
    /// Keeps `payload` unread until the connection closes.
    fn park(&self, payload: Payload) {
        *self.parked.borrow_mut() = Some(payload);
    }
}

/// For `HttpServer::on_connect`: gives each connection its slot, with its place on its
/// address under `caps`. A connection over the cap is closed after [`OVER_CAP_GRACE`].
pub fn on_connect(caps: &PerAddress) -> impl Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static {
    let caps = caps.clone();
    move |connection, data| {
        let slot = Rc::new(Slot::default());
        if let Some(stream) = tcp_stream(connection)
            && let Ok(peer) = stream.peer_addr()
            && caps.place(&slot, peer.ip())
        {
            close_after_grace(stream, Rc::downgrade(&slot));
        }
        data.insert(slot);
    }
}

/// The TCP stream of an accepted connection, plain or TLS.
fn tcp_stream(connection: &dyn Any) -> Option<&actix_web::rt::net::TcpStream> {
    use actix_web::rt::net::TcpStream;
    connection.downcast_ref::<TcpStream>().or_else(|| {
        connection
            .downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
            .map(|tls| tls.get_ref().0)
    })
}

/// At most this many descriptors are duplicated to close connections over their cap later:
/// half of [`RESERVED_FDS`], so that a flood of them cannot take the descriptors the database,
/// the charge log and the listener need. Past it, such a connection is left to the 5 s head
/// timeout (or closed after the 429 its request gets).
const GRACE_DUPLICATES_MAX: usize = (RESERVED_FDS / 2) as usize;

/// Duplicated descriptors waiting for their connection's grace to end.
static GRACE_DUPLICATES: AtomicUsize = AtomicUsize::new(0);

/// Shuts `stream` down both ways after [`OVER_CAP_GRACE`] unless a request of its connection
/// (whose `slot` this is) was refused meanwhile: actix-web then reads its end and closes the
/// connection. Through a duplicate of its descriptor, held only for that time, and at most
/// [`GRACE_DUPLICATES_MAX`] at once.
fn close_after_grace(stream: &actix_web::rt::net::TcpStream, slot: std::rc::Weak<Slot>) {
    if GRACE_DUPLICATES.fetch_add(1, Ordering::Relaxed) >= GRACE_DUPLICATES_MAX {
        GRACE_DUPLICATES.fetch_sub(1, Ordering::Relaxed);
        return;
    }
    let Ok(duplicate) = rustix::io::fcntl_dupfd_cloexec(stream, 0) else {
        GRACE_DUPLICATES.fetch_sub(1, Ordering::Relaxed);
        return;
    };
    actix_web::rt::spawn(async move {
        actix_web::rt::time::sleep(OVER_CAP_GRACE).await;
        // Gone already (no slot), or answered and closing: nothing to do.
        if slot.upgrade().is_some_and(|slot| !slot.refused.get()) {
            let _ = std::net::TcpStream::from(duplicate).shutdown(std::net::Shutdown::Both);
        }
        GRACE_DUPLICATES.fetch_sub(1, Ordering::Relaxed);
    });
}

fn slot(req: &ServiceRequest) -> Option<Rc<Slot>> {
    req.conn_data::<Rc<Slot>>().cloned()
}

/// Middleware around every request: the connection limits and the deadlines.
///
/// - The first request of a connection takes a place on its address, or is answered 429 and
///   its connection closed at the cap.
/// - A request not answered within the request timeout ([`RequestTimeout`]) is answered 503.
/// - A body that has not arrived whole within the body timeout ([`BodyTimeout`]) is answered
///   408, and the connection closed.
///
/// One middleware rather than three: each layer costs a boxed future and a call per request.
pub async fn guard(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let slot = slot(&req);
    if let Some(refused) = refuse_over_cap(&mut req, slot.as_ref()) {
        return Ok(req.into_response(refused));
    }
    let request_limit = req
        .app_data::<RequestTimeout>()
        .map_or(Duration::from_secs(30), |timeout| timeout.0);
    let body_limit = req
        .app_data::<BodyTimeout>()
        .map(|timeout| timeout.0)
        .filter(|_| has_body(&req));
    let too_long = || -> actix_web::Error {
        ApiError::Unavailable {
            detail: "the request took too long",
            retry_after: None,
        }
        .into()
    };
    let Some(body_limit) = body_limit else {
        return match tokio::time::timeout(request_limit, next.call(req)).await {
            Ok(response) => response.map(ServiceResponse::map_into_boxed_body),
            Err(_) => Err(too_long()),
        };
    };
    // The body counts as arrived once its stream has ended (or failed). The stream stays
    // reachable from here, to be parked unread on a timeout.
    let arrived = Rc::new(Cell::new(false));
    let inner = Rc::new(RefCell::new(Some(req.take_payload())));
    let (flag, stream) = (Rc::clone(&arrived), Rc::clone(&inner));
    let watched = futures_util::stream::poll_fn(move |cx| {
        let mut stream = stream.borrow_mut();
        let Some(payload) = stream.as_mut() else {
            return Poll::Ready(None);
        };
        let item = futures_util::Stream::poll_next(Pin::new(payload), cx);
        if matches!(item, Poll::Ready(None | Some(Err(_)))) {
            flag.set(true);
        }
        item
    });
    req.set_payload(Payload::Stream {
        payload: Box::pin(watched),
    });
    let mut call = std::pin::pin!(next.call(req));
    let mut request_deadline = std::pin::pin!(tokio::time::sleep(request_limit));
    tokio::select! {
        // In this order: an answer, then a missing body (408), then the request deadline.
        biased;
        response = &mut call => return response.map(ServiceResponse::map_into_boxed_body),
        () = tokio::time::sleep(body_limit) => {
            if !arrived.get() {
                crate::observe::connection_refused("body_timeout");
                // A body left unread makes actix-http close the connection after the answer.
                if let (Some(slot), Some(payload)) = (slot, inner.borrow_mut().take()) {
                    slot.park(payload);
                }
                return Err(ApiError::BodyTimeout(body_limit.as_secs()).into());
            }
        }
        () = &mut request_deadline => return Err(too_long()),
    }
    // The body arrived in time: only the request deadline is left.
    tokio::select! {
        response = call => response.map(ServiceResponse::map_into_boxed_body),
        () = request_deadline => Err(too_long()),
    }
}

/// The 429 answer for the first request of a connection over its address's cap; `None` when it
/// takes a place (or needs none: trusted proxies, later requests of a connection).
fn refuse_over_cap(
    req: &mut ServiceRequest,
    slot: Option<&Rc<Slot>>,
) -> Option<actix_web::HttpResponse> {
    let slot = slot?;
    if slot.held.borrow().is_some() {
        return None;
    }
    let caps = req.app_data::<PerAddress>()?;
    // Over the cap when accepted (and counted then), or, for a connection whose address was
    // not read when it was accepted, now.
    if !slot.over_cap.get() && !caps.place(slot, req.peer_addr()?.ip()) {
        return None;
    }
    let limit = caps.limit;
    slot.refused.set(true);
    slot.park(req.take_payload());
    let mut response = ApiError::TooManyConnections { limit }.error_response();
    response
        .head_mut()
        .set_connection_type(ConnectionType::Close);
    Some(response)
}

/// Whether the request has a body to wait for.
fn has_body(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0")
}

/// How long a request may take before it is answered 503 (`request_timeout`), registered as
/// app data.
#[derive(Debug, Clone, Copy)]
pub struct RequestTimeout(pub Duration);

/// How long a request body may take to arrive, registered as app data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout(pub Duration);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_cap_and_a_place_comes_back_on_close() {
        let caps = PerAddress::new(2, &[]);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = caps.admit(ip).unwrap();
        let _second = caps.admit(ip).unwrap();
        assert!(caps.admit(ip).is_none());
        assert!(caps.admit("192.0.2.8".parse().unwrap()).is_some());
        drop(first);
        assert_eq!(caps.open(ip), 1);
        assert!(caps.admit(ip).is_some());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        let caps = PerAddress::new(1, &[]);
        let _a = caps.admit("2001:db8:1:2::1".parse().unwrap()).unwrap();
        assert!(
            caps.admit("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_none()
        );
        assert!(caps.admit("2001:db8:1:3::1".parse().unwrap()).is_some());
        let _v4 = caps.admit("192.0.2.1".parse().unwrap()).unwrap();
        assert!(caps.admit("::ffff:192.0.2.1".parse().unwrap()).is_none());
    }

    #[test]
    fn the_cap_stays_below_the_open_file_limit() {
        assert_eq!(connection_cap(None, Some(20_000)), 19_488);
        assert_eq!(connection_cap(Some(100), Some(20_000)), 100);
        assert_eq!(connection_cap(Some(50_000), Some(20_000)), 19_488);
        assert_eq!(connection_cap(None, Some(100)), 1);
    }
}

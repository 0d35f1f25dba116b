//! A fixed-rate load probe: `POST`s at a set rate, whatever the server's answers take, and
//! reports latency from the moment each request was due, not from when it was sent.
//!
//! `wrk` sends the next request when the last answer arrives, so a server that stalls is sent
//! less, and the stall shows in few samples (coordinated omission). Traffic from many clients
//! does not wait like that. This probe gives each connection a schedule (`CONNECTIONS / RATE`
//! seconds apart) and counts a late request's wait for its turn as part of its latency. The
//! probe's own lateness (its threads wake a little after they are due) is in every sample too:
//! measure a bare server at the same rate to see that floor.
//!
//! `probe ADDR PATH RATE SECONDS CONNECTIONS`, e.g. `probe 127.0.0.1:9000 /get-current-time
//! 5000 10 16`. The environment gives the request: `KEY` as the `Authorization` header, `BODY`
//! as the JSON body. It prints `RESULT rps p50_ms p99_ms requests errors`, the format of the
//! load scripts' `wrk` script: answers a second over the time the schedule took to be served, the
//! latency of every answer, and the errors (a failed connection or an answer other than 200).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::time::{Duration, Instant};

/// How long a connection may take to open, and an answer to come.
const TIMEOUT: Duration = Duration::from_secs(10);

/// What one connection measured: each answer's latency in microseconds, how many answers were
/// not 200, and how many requests got no answer.
#[derive(Default)]
struct Samples {
    micros: Vec<u64>,
    not_ok: u64,
    unanswered: u64,
}

/// An answer read whole: whether its status was 200, and whether the server closes the
/// connection after it.
struct Answer {
    ok: bool,
    close: bool,
}

fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned())
}

/// Reads one answer. Its body must have a `Content-Length` (the servers measured set one on
/// every answer): any other framing is an error, and the connection is not used again.
fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<Answer> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let ok = line.trim_end().split(' ').nth(1) == Some("200");
    let (mut length, mut close) = (None, false);
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(invalid("a header line without a colon"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = Some(value.parse().map_err(|_| invalid("content-length"))?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(invalid("a body without content-length"));
        } else if name.eq_ignore_ascii_case("connection") {
            close = value.eq_ignore_ascii_case("close");
        }
    }
    let length = length.ok_or_else(|| invalid("no content-length"))?;
    if std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink())? < length {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(Answer { ok, close })
}

/// One connection's schedule: a request every `interval` from `start` until `end`, on one
/// keep-alive connection, reopened after a failure or a `Connection: close`.
fn run_connection(
    addr: SocketAddr,
    request: &[u8],
    start: Instant,
    interval: Duration,
    end: Instant,
) -> Samples {
    let mut samples = Samples::default();
    let mut connection: Option<(TcpStream, BufReader<TcpStream>)> = None;
    let mut due = start;
    while due < end {
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        let answered = (|| -> std::io::Result<Answer> {
            if connection.is_none() {
                let stream = TcpStream::connect_timeout(&addr, TIMEOUT)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(TIMEOUT))?;
                let reader = BufReader::new(stream.try_clone()?);
                connection = Some((stream, reader));
            }
            let (stream, reader) = connection.as_mut().expect("connected above");
            stream.write_all(request)?;
            read_answer(reader)
        })();
        match answered {
            Ok(answer) => {
                samples.micros.push(due.elapsed().as_micros() as u64);
                samples.not_ok += u64::from(!answer.ok);
                if answer.close {
                    connection = None;
                }
            }
            Err(_) => {
                samples.unanswered += 1;
                connection = None;
            }
        }
        due += interval;
    }
    samples
}

/// The `p`th percentile of `sorted` microseconds, in milliseconds: the smallest sample with at
/// least `p`% of the samples at or below it (0 without samples).
fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

/// Exits with the usage line when `condition` fails.
fn require(condition: bool, what: &str) {
    if !condition {
        eprintln!("{what}\nusage: probe ADDR PATH RATE SECONDS CONNECTIONS");
        std::process::exit(2);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, rate, seconds, connections] = args.as_slice() else {
        require(false, "five arguments are needed");
        return;
    };
    let number = |s: &str| s.parse::<f64>().ok().filter(|n| n.is_finite() && *n > 0.0);
    let (Some(rate), Some(seconds), Some(connections)) = (
        number(rate),
        number(seconds),
        connections.parse::<usize>().ok(),
    ) else {
        require(
            false,
            "RATE and SECONDS must be positive numbers, CONNECTIONS a count",
        );
        return;
    };
    require(connections > 0, "CONNECTIONS must be at least 1");
    let interval = Duration::try_from_secs_f64(connections as f64 / rate).unwrap_or_default();
    require(interval > Duration::ZERO, "RATE is too high");
    require(seconds < 1e6, "SECONDS is too long");
    let target = addr.to_socket_addrs().ok().and_then(|mut all| all.next());
    let Some(target) = target else {
        require(false, "ADDR is not an address");
        return;
    };
    let body = std::env::var("BODY").unwrap_or_default();
    let key = match std::env::var("KEY") {
        Ok(key) if !key.is_empty() => format!("Authorization: {key}\r\n"),
        _ => String::new(),
    };
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{key}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();

    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let request = request.clone();
            // The connections' schedules interleave evenly.
            let first = start + interval.mul_f64(i as f64 / connections as f64);
            std::thread::spawn(move || run_connection(target, &request, first, interval, end))
        })
        .collect();
    let mut all = Samples::default();
    for thread in threads {
        let samples = thread.join().expect("a probe thread panicked");
        all.micros.extend(samples.micros);
        all.not_ok += samples.not_ok;
        all.unanswered += samples.unanswered;
    }
    // A server that falls behind still gets every request, later: the rate is over the time it
    // took, not the schedule's.
    let took = start.elapsed().as_secs_f64().max(seconds);
    let answered = all.micros.len() as u64;
    all.micros.sort_unstable();
    println!(
        "RESULT {:.1} {:.3} {:.3} {} {}",
        answered as f64 / took,
        percentile(&all.micros, 50.0),
        percentile(&all.micros, 99.0),
        answered + all.unanswered,
        all.not_ok + all.unanswered
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on one connection that answers `200 ok` to each request, the first after `stall`.
    fn stalling_server(stall: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            let mut first = true;
            while stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
                if head.ends_with(b"\r\n\r\n") {
                    head.clear();
                    if std::mem::take(&mut first) {
                        std::thread::sleep(stall);
                    }
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if stream.write_all(answer).is_err() {
                        return;
                    }
                }
            }
        });
        addr
    }

    /// The calls due while the server stalled count their wait: wrk would show one slow call.
    #[test]
    fn calls_due_during_a_stall_count_their_wait() {
        let addr = stalling_server(Duration::from_millis(200));
        let request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n";
        let start = Instant::now();
        let interval = Duration::from_millis(10);
        let samples = run_connection(addr, request, start, interval, start + interval * 30);
        assert_eq!(
            (samples.micros.len(), samples.not_ok, samples.unanswered),
            (30, 0, 0)
        );
        let waited = samples.micros.iter().filter(|&&m| m >= 100_000).count();
        assert!(waited >= 10, "{:?}", samples.micros);
    }

    /// What `read_answer` makes of `raw`, sent by a server that then closes the connection.
    fn answer_of(raw: &'static [u8]) -> std::io::Result<Answer> {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            stream.write_all(raw).unwrap();
        });
        let stream = TcpStream::connect(addr).unwrap();
        let answer = read_answer(&mut BufReader::new(stream));
        server.join().unwrap();
        answer
    }

    #[test]
    fn answers_are_read_by_their_content_length_and_status() {
        let ok = answer_of(b"HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok").unwrap();
        assert!(ok.ok && !ok.close);
        let refused = answer_of(b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 0\r\n\r\n");
        assert!(!refused.unwrap().ok);
        let closing =
            answer_of(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        assert!(closing.unwrap().close);
        // Bodies framed otherwise are errors: what follows could not be told from the next answer.
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert!(answer_of(chunked).is_err());
        assert!(answer_of(b"HTTP/1.1 200 OK\r\n\r\nok").is_err());
        assert!(answer_of(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nok").is_err());
    }

    #[test]
    fn percentiles_are_ranks_of_the_sorted_samples() {
        let sorted: Vec<u64> = (1..=100).map(|i| i * 1000).collect();
        assert_eq!(percentile(&sorted, 50.0), 50.0);
        assert_eq!(percentile(&sorted, 99.0), 99.0);
        assert_eq!(percentile(&sorted[..1], 99.0), 1.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}

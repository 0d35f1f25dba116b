//! A fixed-rate load probe: `POST`s at a set rate, whatever the server's answers take, and
//! reports latency from the moment each request was due, not from when it was sent.
//!
//! `wrk` sends the next request when the last answer arrives, so a server that stalls is sent
//! less, and the stall shows in few samples (coordinated omission). Traffic from many clients
//! does not wait like that. This probe gives each connection a schedule (`CONNECTIONS / RATE`
//! seconds apart) and counts a late request's wait for its turn as part of its latency.
//!
//! `probe ADDR PATH RATE SECONDS CONNECTIONS`, e.g. `probe 127.0.0.1:9000 /get-current-time
//! 5000 10 16`. The environment gives the request: `KEY` as the `Authorization` header, `BODY`
//! as the JSON body. It prints `RESULT rps p50_ms p99_ms requests errors`, the format of the
//! load scripts' `wrk` script, where an error is a failed connection or an answer other than 200.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// What one connection measured: each answered request's latency in microseconds, and how
/// many requests failed.
#[derive(Default)]
struct Samples {
    micros: Vec<u64>,
    errors: u64,
}

/// Reads one answer and whether its status was 200. Needs `Content-Length` (the servers
/// measured set it on every answer).
fn read_answer(reader: &mut BufReader<TcpStream>) -> std::io::Result<bool> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let ok = line.split(' ').nth(1) == Some("200");
    let mut length = 0usize;
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value
                .trim()
                .parse()
                .map_err(|_| std::io::ErrorKind::InvalidData)?;
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(ok)
}

/// One connection's schedule: a request every `interval` from `start` until `end`, on one
/// keep-alive connection, reopened after a failure.
fn run_connection(
    addr: &str,
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
        let answered = (|| -> std::io::Result<bool> {
            if connection.is_none() {
                let stream = TcpStream::connect(addr)?;
                stream.set_nodelay(true)?;
                stream.set_read_timeout(Some(Duration::from_secs(10)))?;
                let reader = BufReader::new(stream.try_clone()?);
                connection = Some((stream, reader));
            }
            let (stream, reader) = connection.as_mut().expect("connected above");
            stream.write_all(request)?;
            read_answer(reader)
        })();
        match answered {
            Ok(true) => samples.micros.push(due.elapsed().as_micros() as u64),
            Ok(false) => samples.errors += 1,
            Err(_) => {
                samples.errors += 1;
                connection = None;
            }
        }
        due += interval;
    }
    samples
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1000.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, path, rate, seconds, connections] = args.as_slice() else {
        eprintln!("usage: probe ADDR PATH RATE SECONDS CONNECTIONS");
        std::process::exit(2);
    };
    let number = |s: &str| -> f64 {
        s.parse()
            .ok()
            .filter(|n: &f64| *n > 0.0)
            .unwrap_or_else(|| {
                eprintln!("not a positive number: {s}");
                std::process::exit(2);
            })
    };
    let (rate, seconds, connections) =
        (number(rate), number(seconds), number(connections) as usize);
    let body = std::env::var("BODY").unwrap_or_default();
    let key = std::env::var("KEY")
        .map(|k| format!("Authorization: {k}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\n{key}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes();

    let interval = Duration::from_secs_f64(connections as f64 / rate);
    let start = Instant::now() + Duration::from_millis(100);
    let end = start + Duration::from_secs_f64(seconds);
    let threads: Vec<_> = (0..connections)
        .map(|i| {
            let (addr, request) = (addr.clone(), request.clone());
            // The connections' schedules interleave evenly.
            let first = start + interval.mul_f64(i as f64 / connections as f64);
            std::thread::spawn(move || run_connection(&addr, &request, first, interval, end))
        })
        .collect();
    let mut all = Samples::default();
    for thread in threads {
        let samples = thread.join().expect("a probe thread panicked");
        all.micros.extend(samples.micros);
        all.errors += samples.errors;
    }
    all.micros.sort_unstable();
    let requests = all.micros.len() as u64 + all.errors;
    println!(
        "RESULT {:.1} {:.3} {:.3} {} {}",
        all.micros.len() as f64 / seconds,
        percentile(&all.micros, 50.0),
        percentile(&all.micros, 99.0),
        requests,
        all.errors
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// A server on one connection that answers `200 ok` to each request, the first after `stall`.
    fn stalling_server(stall: Duration) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
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
        let samples = run_connection(&addr, request, start, interval, start + interval * 30);
        assert_eq!((samples.micros.len(), samples.errors), (30, 0));
        let waited = samples.micros.iter().filter(|&&m| m >= 100_000).count();
        assert!(waited >= 10, "{:?}", samples.micros);
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

//! The log's text format: the bytes `tracing-subscriber`'s default format writes without
//! colours, written with less machinery (every request writes a line, so this is on the hot
//! path), and a timestamp that formats the date once a second.

use std::cell::RefCell;
use std::fmt::{self, Write as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::FormatTime;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

use crate::observe::{self, RequestContext};

/// The time of a line, as `tracing-subscriber`'s default timer writes it:
/// `2026-12-03T16:47:13.058023Z` (UTC, microseconds).
#[derive(Debug, Clone, Copy, Default)]
pub struct Timestamp;

impl FormatTime for Timestamp {
    fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
        write_timestamp(w, since_epoch())
    }
}

/// Writes the time `since_epoch` after the Unix epoch, the date and the second formatted once
/// per second on each thread.
fn write_timestamp(w: &mut impl fmt::Write, since_epoch: Duration) -> fmt::Result {
    thread_local! {
        /// The second last formatted, and `YYYY-MM-DDTHH:MM:SS.` for it.
        static SECOND: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
    }
    let secs = since_epoch.as_secs();
    SECOND.with_borrow_mut(|(second, prefix)| {
        if *second != secs {
            let at = i64::try_from(secs)
                .ok()
                .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            prefix.clear();
            write!(
                prefix,
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.",
                at.year(),
                u8::from(at.month()),
                at.day(),
                at.hour(),
                at.minute(),
                at.second()
            )?;
            *second = secs;
        }
        w.write_str(prefix)?;
        let micros = since_epoch.subsec_micros();
        let mut digits = [b'0'; 6];
        let mut rest = micros;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + u8::try_from(rest % 10).unwrap_or(0);
            rest /= 10;
        }
        w.write_str(std::str::from_utf8(&digits).map_err(|_| fmt::Error)?)?;
        w.write_char('Z')
    })
}

/// The default text format without colours: `<time>  INFO span{fields}:inner{fields}: target:
/// fields`.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlainText<T = Timestamp> {
    timer: T,
}

impl<T> PlainText<T> {
    /// The format with the time written by `timer`.
    #[cfg(test)]
    pub const fn with_timer(timer: T) -> Self {
        Self { timer }
    }
}

impl<S, N, T> FormatEvent<S, N> for PlainText<T>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    T: FormatTime,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        if self.timer.format_time(&mut writer).is_err() {
            writer.write_str("<unknown time>")?;
        }
        writer.write_str(match *meta.level() {
            Level::TRACE => " TRACE ",
            Level::DEBUG => " DEBUG ",
            Level::INFO => "  INFO ",
            Level::WARN => "  WARN ",
            Level::ERROR => " ERROR ",
        })?;
        // The request's fields, where the bundled binary keeps them instead of a span (see
        // `observe::write_access_log_with`): the outermost "span".
        let in_request =
            observe::with_request_context(|context| write_request(&mut writer, context))
                .transpose()?
                .is_some();
        if let Some(scope) = ctx.event_scope() {
            let mut seen = in_request;
            for span in scope.from_root() {
                writer.write_str(span.metadata().name())?;
                seen = true;
                let extensions = span.extensions();
                if let Some(fields) = extensions.get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    writer.write_char('{')?;
                    writer.write_str(fields)?;
                    writer.write_char('}')?;
                }
                writer.write_char(':')?;
            }
            if seen {
                writer.write_char(' ')?;
            }
        } else if in_request {
            writer.write_char(' ')?;
        }
        writer.write_str(meta.target())?;
        writer.write_str(": ")?;
        ctx.format_fields(writer.by_ref(), event)?;
        writer.write_char('\n')
    }
}

/// `request{<fields>}:`, as the text format writes the `request` span.
fn write_request(w: &mut impl fmt::Write, context: &RequestContext) -> fmt::Result {
    w.write_str("request{")?;
    context.write_fields(w)?;
    w.write_str("}:")
}

/// The access line of a request, as `PlainText` writes the event
/// `info!(status, micros, "request")` of `observe` inside the request's span: the line the
/// bundled binary writes straight to its log (`observe::write_access_log_with`).
///
/// # Errors
/// When `out` fails.
pub fn access_line(
    out: &mut impl fmt::Write,
    since_epoch: Duration,
    context: &RequestContext,
    status: u16,
    micros: u64,
) -> fmt::Result {
    write_timestamp(out, since_epoch)?;
    out.write_str("  INFO ")?;
    write_request(out, context)?;
    writeln!(
        out,
        " {}: request status={status} micros={micros}",
        observe::ACCESS_TARGET
    )
}

/// The time since the Unix epoch, for a line's timestamp.
#[must_use]
pub fn since_epoch() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use std::rc::Rc;

    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    /// A fixed time, so that two formats can be compared byte for byte.
    struct Fixed;
    impl FormatTime for Fixed {
        fn format_time(&self, w: &mut Writer<'_>) -> fmt::Result {
            write_timestamp(w, FIXED)
        }
    }

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);
    impl<'a> MakeWriter<'a> for Captured {
        type Writer = Self;
        fn make_writer(&'a self) -> Self {
            self.clone()
        }
    }
    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().write(bytes)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    /// What the server logs, in every shape it has: lines in and out of spans, nested spans, a
    /// field recorded later, an empty span, every level, a message with special characters.
    fn log_some_lines() {
        tracing::info!(address = "127.0.0.1:8080", port = 8080, "listening");
        let span = tracing::info_span!(
            "request",
            id = "4f2a",
            method = "POST",
            path = "/check-prime",
            key = tracing::field::Empty
        );
        span.in_scope(|| {
            tracing::warn!(reason = "bad checksum", "refused key");
            tracing::Span::current().record("key", "sapi_...0123456789ab");
            tracing::info_span!("inner")
                .in_scope(|| tracing::error!(error = %"disk full", "failed"));
            tracing::info_span!("upstream", key = 3).in_scope(|| tracing::debug!("no fields"));
            tracing::trace!(text = "quoted \"x\"\nnext", "request");
            tracing::info!(status = 200_u64, micros = 345_u64, "request");
        });
    }

    fn format_with<F>(format: F, log: impl FnOnce()) -> String
    where
        F: FormatEvent<
                tracing_subscriber::Registry,
                tracing_subscriber::fmt::format::DefaultFields,
            > + Send
            + Sync
            + 'static,
    {
        let captured = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(Level::TRACE)
            .with_ansi(false)
            .with_writer(captured.clone())
            .event_format(format)
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        String::from_utf8(captured.0.lock().unwrap().clone()).unwrap()
    }

    #[test]
    fn lines_are_the_bytes_of_the_default_format_without_colours() {
        let ours = format_with(PlainText::with_timer(Fixed), log_some_lines);
        let default = format_with(
            tracing_subscriber::fmt::format()
                .with_ansi(false)
                .with_timer(Fixed),
            log_some_lines,
        );
        assert_eq!(ours, default);
        assert_eq!(ours.lines().count(), 6, "{ours}");
        assert!(
            ours.contains(
                "2025-11-24T16:00:00.123456Z  INFO request{id=\"4f2a\" method=\"POST\" \
                 path=\"/check-prime\" key=\"sapi_...0123456789ab\"}: "
            ),
            "{ours}"
        );
    }

    const FIXED: Duration = Duration::new(1_764_000_000, 123_456_789);

    /// What is logged while a request is served: a line, the key found, a nested span.
    fn log_in_a_request() {
        tracing::warn!(reason = "bad checksum", "refused key");
        observe::record_key(&"sapi_...0123456789ab".into());
        tracing::info_span!("upstream", key = 3).in_scope(|| tracing::info!("no fields"));
        tracing::debug!(status = 200_u64, "authenticated");
    }

    #[test]
    fn a_request_context_writes_the_bytes_of_the_request_span() {
        // The span and the access event as `observe_request` makes them without a direct log.
        let in_span = format_with(PlainText::with_timer(Fixed), || {
            let span = tracing::info_span!(
                target: observe::ACCESS_TARGET,
                "request",
                id = %"4f2a",
                method = %actix_web::http::Method::POST,
                path = %"/check-prime",
                key = tracing::field::Empty,
            );
            span.in_scope(log_in_a_request);
            span.in_scope(|| {
                tracing::info!(
                    target: observe::ACCESS_TARGET,
                    status = 429_u16,
                    micros = 345_u64,
                    "request"
                );
            });
        });
        let context = Rc::new(RequestContext::new(
            observe::RequestId::parse("4f2a").unwrap(),
            actix_web::http::Method::POST,
            "/check-prime".to_owned(),
        ));
        let mut direct = format_with(PlainText::with_timer(Fixed), || {
            RequestContext::scope(Rc::clone(&context), log_in_a_request);
        });
        access_line(&mut direct, FIXED, &context, 429, 345).unwrap();
        assert_eq!(direct, in_span);
        assert_eq!(direct.lines().count(), 4, "{direct}");
        assert!(
            direct.ends_with(
                "2025-11-24T16:00:00.123456Z  INFO request{id=4f2a method=POST path=/check-prime \
                 key=sapi_...0123456789ab}: secure_api::observe: request status=429 micros=345\n"
            ),
            "{direct}"
        );
    }

    #[test]
    fn the_timestamp_is_the_default_timers() {
        let cases = [
            (Duration::ZERO, "1970-01-01T00:00:00.000000Z"),
            (
                Duration::new(1_764_000_000, 123_456_789),
                "2025-11-24T16:00:00.123456Z",
            ),
            (
                Duration::new(1_764_000_000, 999_999_999),
                "2025-11-24T16:00:00.999999Z",
            ),
            (
                Duration::new(1_764_000_001, 7_000),
                "2025-11-24T16:00:01.000007Z",
            ),
            (Duration::new(951_782_400, 0), "2000-02-29T00:00:00.000000Z"),
            (
                Duration::new(4_102_444_799, 500_000),
                "2099-12-31T23:59:59.000500Z",
            ),
        ];
        for (since_epoch, expected) in cases {
            let mut line = String::new();
            write_timestamp(&mut line, since_epoch).unwrap();
            assert_eq!(line, expected);
        }
        // And tracing's own timer, now, agrees on the shape (to the second).
        let mut ours = String::new();
        Timestamp.format_time(&mut Writer::new(&mut ours)).unwrap();
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        assert_eq!(ours.len(), theirs.len(), "{ours} {theirs}");
        assert_eq!(ours[..17], theirs[..17], "{ours} {theirs}");
    }
}

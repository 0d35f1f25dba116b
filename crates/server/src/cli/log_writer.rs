//! The log's writer: lines are appended to a buffer in memory by the thread that logs, and a
//! thread of their own writes the buffer out every [`FLUSH_INTERVAL`], in one `write`.
//!
//! A request thus never waits on the disk or a pipe, and under load never wakes another thread
//! (only the first line after an idle spell wakes the writer): thousands of lines leave in one
//! system call. (A channel to a writer thread, as `tracing-appender` has, wakes that thread and
//! writes once per line: the two system calls cost more than the rest of a cheap request.) When
//! the buffer holds [`CAPACITY`] bytes, a line waits until the writer has taken them:
//! back-pressure, never a dropped line. A line reaches the output within about
//! [`FLUSH_INTERVAL`]; the guard writes what is left when it is dropped, waiting at most
//! [`STOP_WAIT`] for a blocked output.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in the buffer.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(10);

/// The most the buffer holds before a line waits for the writer.
pub const CAPACITY: usize = 4 << 20;

/// How long dropping the guard waits for the last lines to be written: an output that blocks
/// (a stalled log collector on the other end of a pipe) must not keep the process from ending.
pub const STOP_WAIT: Duration = Duration::from_secs(2);

/// The `MakeWriter` of the log subscriber: a cheap handle on the shared buffer.
#[derive(Debug, Clone)]
pub struct LogWriter {
    shared: Arc<Shared>,
}

/// Stops the writer thread once the last line is written; keep it alive until the process ends.
#[derive(Debug)]
pub struct Guard {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    /// The writer thread waits here while the buffer is empty.
    more: Condvar,
    /// Lines wait here while the buffer is full.
    room: Condvar,
}

#[derive(Debug, Default)]
struct State {
    buffer: Vec<u8>,
    /// The writer thread is waiting on `more`: the next line wakes it.
    idle: bool,
    closed: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A writer of lines to `output`, with the thread that writes them.
///
/// # Errors
/// When the thread cannot be started.
pub fn spawn(output: impl Write + Send + 'static) -> std::io::Result<(LogWriter, Guard)> {
    let shared = Arc::new(Shared::default());
    let thread = std::thread::Builder::new()
        .name("log-writer".to_owned())
        .spawn({
            let shared = Arc::clone(&shared);
            move || write_out(&shared, output)
        })?;
    Ok((
        LogWriter {
            shared: Arc::clone(&shared),
        },
        Guard {
            shared,
            thread: Some(thread),
        },
    ))
}

/// The writer thread: takes the whole buffer, writes it, sleeps an interval; waits while there
/// is nothing to write; after `closed`, writes what is left and stops.
fn write_out(shared: &Shared, mut output: impl Write) {
    let mut batch = Vec::new();
    loop {
        let closed = {
            let mut state = shared.state();
            while state.buffer.is_empty() && !state.closed {
                state.idle = true;
                state = shared
                    .more
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            state.idle = false;
            std::mem::swap(&mut state.buffer, &mut batch);
            state.closed
        };
        shared.room.notify_all();
        // A failing output (a closed pipe) loses its lines; there is nowhere to report it.
        let _ = output.write_all(&batch).and_then(|()| output.flush());
        batch.clear();
        if closed && shared.state().buffer.is_empty() {
            return;
        }
        std::thread::sleep(FLUSH_INTERVAL);
    }
}

impl Write for &LogWriter {
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut state = self.shared.state();
        while state.buffer.len() >= CAPACITY && !state.closed {
            self.shared.more.notify_one();
            state = self
                .shared
                .room
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.buffer.extend_from_slice(line);
        if std::mem::take(&mut state.idle) {
            self.shared.more.notify_one();
        }
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = &'a LogWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.shared.state().closed = true;
        self.shared.more.notify_one();
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + STOP_WAIT;
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output that keeps what it is given, and counts the writes.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<(Vec<u8>, usize)>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let mut sink = self.0.lock().unwrap();
            sink.0.extend_from_slice(bytes);
            sink.1 += 1;
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_of_every_thread_comes_out_whole_and_in_order() {
        let sink = Sink::default();
        let (writer, guard) = spawn(sink.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000 {
                        let line = format!("thread {t} line {i} {}\n", "x".repeat(i % 300));
                        (&writer).write_all(line.as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);
        let (bytes, writes) = std::mem::take(&mut *sink.0.lock().unwrap());
        let text = String::from_utf8(bytes).unwrap();
        let mut next = [0usize; 4];
        for line in text.lines() {
            let mut words = line.split(' ');
            assert_eq!(words.next(), Some("thread"));
            let t: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(words.next(), Some("line"));
            let i: usize = words.next().unwrap().parse().unwrap();
            assert_eq!(i, next[t], "thread {t}'s lines out of order");
            assert_eq!(words.next().unwrap().len(), i % 300);
            next[t] += 1;
        }
        assert_eq!(next, [20_000; 4]);
        // Batched: far fewer writes than lines.
        assert!(writes < 8_000, "{writes} writes for 80,000 lines");
    }

    #[test]
    fn a_line_is_written_out_without_the_guard_being_dropped() {
        let sink = Sink::default();
        let (writer, _guard) = spawn(sink.clone()).unwrap();
        (&writer).write_all(b"started\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while sink.0.lock().unwrap().0.is_empty() {
            assert!(
                std::time::Instant::now() < deadline,
                "the line never came out"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.0.lock().unwrap().0, b"started\n");
    }

    #[test]
    fn dropping_the_guard_gives_up_on_an_output_that_blocks() {
        /// An output that never returns from a write.
        struct Stuck;
        impl Write for Stuck {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                loop {
                    std::thread::park();
                }
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let (writer, guard) = spawn(Stuck).unwrap();
        (&writer).write_all(b"a line that never leaves\n").unwrap();
        let started = std::time::Instant::now();
        drop(guard);
        assert!(started.elapsed() >= STOP_WAIT);
    }

    #[test]
    fn a_full_buffer_makes_lines_wait_and_loses_none() {
        /// An output slower than the lines: each write takes a while.
        struct Slow(Sink);
        impl Write for Slow {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                std::thread::sleep(Duration::from_millis(20));
                self.0.write(bytes)
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let (writer, guard) = spawn(Slow(sink.clone())).unwrap();
        let line = vec![b'y'; 64 << 10];
        // Three buffers' worth.
        let lines = 3 * CAPACITY / line.len();
        for _ in 0..lines {
            (&writer).write_all(&line).unwrap();
            assert!(writer.shared.state().buffer.len() <= CAPACITY + line.len());
        }
        drop(guard);
        assert_eq!(sink.0.lock().unwrap().0.len(), lines * line.len());
    }
}

//! The `secure-api` command: serve, or manage keys and admin tokens in the database.

use std::process::ExitCode;

use clap::{Parser, ValueEnum as _};

pub mod args;
mod log_format;
mod log_writer;

pub use args::{
    AdminTokenCommand, AuditArgs, Cli, Command, KeysCommand, SecretsCommand, SettingsArgs,
};

use args::{Clearable, LimitArgs};

use crate::audit::Actor;
use crate::auth::admin::NewAdminToken;
use crate::auth::scope::Scopes;
use crate::clock::Clock;
use crate::config::{LogFormat, Settings};
use crate::key_limits::{
    CreditsInfo, CreditsSpec, KeyLimits, LimitError, RateLimitSpec, parse_count, parse_rate,
    parse_refill,
};
use crate::keys::{CreatedKey, KeyUpdate, NewKey};
use crate::routes::admin::usage_report;
use crate::startup::{Application, Purpose, StartupError, build_services, process_env};
use crate::state::Services;
use crate::usage::DayRange;

/// Runs the command line; the process exit code.
#[must_use]
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match cli.settings.resolve() {
        Ok(settings) => settings,
        Err(e) => {
            eprintln!("secure-api: {e}");
            return ExitCode::from(2);
        }
    };
    let _log_writer = match init_logging(settings.log_format) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("secure-api: the log writer could not be started: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = actix_web::rt::System::new();
    let outcome = match cli.command {
        None | Some(Command::Serve) => runtime.block_on(serve(settings)),
        Some(Command::Keys(command)) => runtime
            .block_on(admin_command(settings, async |services| {
                keys_command(services, command).await
            })),
        Some(Command::AdminToken(command)) => runtime
            .block_on(admin_command(settings, async |services| {
                admin_token_command(services, command).await
            })),
        Some(Command::Secrets(SecretsCommand::Rotate)) => runtime
            .block_on(admin_command(settings, async |services| {
                rotate_secrets(services).await
            })),
        Some(Command::Audit(args)) => runtime.block_on(admin_command(settings, async |services| {
            audit_command(services, args).await
        })),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("secure-api: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The log filter when `RUST_LOG` is unset or empty. `actix_http::h1::dispatcher` is off: it
/// logs every malformed request a client sends (a bad method, a control character in a header)
/// as an ERROR line of its own, without a request id, which would let anyone fill the error log;
/// actix-web answers those requests 400 before any of the server's code runs.
pub const DEFAULT_LOG_FILTER: &str =
    "info,sqlx=warn,actix_server=warn,actix_http::h1::dispatcher=off";

/// Installs the log subscriber. Lines are formatted on the thread that logs and written to
/// stderr in batches by a thread of their own ([`log_writer`]), so a request never waits on the
/// write; a full buffer applies back-pressure rather than dropping lines. The guard writes what
/// is left when the process ends: keep it alive until then.
///
/// `RUST_LOG` made of targets and levels only (the default, [`DEFAULT_LOG_FILTER`], is) is read
/// as `tracing-subscriber`'s `Targets`, which decides once per call site. Span and field
/// directives (`[request{key=...}]=debug`) need an `EnvFilter`, which also looks at each span as
/// it is entered. With `Targets` and the plain text format, requests carry their fields
/// without a span and write their access lines directly
/// ([`observe::write_access_log_with`](crate::observe::write_access_log_with)): the same bytes,
/// at a fraction of the cost.
fn init_logging(format: LogFormat) -> std::io::Result<log_writer::Guard> {
    use tracing_subscriber::filter::EnvFilter;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    use tracing_subscriber::{Layer as _, Registry};

    // An empty `RUST_LOG` means the default, as it did before `Targets`; `EnvFilter` would read
    // it as ERROR only.
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|d| !d.trim().is_empty());
    let targets = plain_targets(directives.as_deref().unwrap_or(DEFAULT_LOG_FILTER));
    let filter: Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync> = match &targets {
        Some(targets) => targets.clone().boxed(),
        None => directives
            .as_deref()
            .and_then(|d| EnvFilter::try_new(d).ok())
            .unwrap_or_else(|| EnvFilter::new(DEFAULT_LOG_FILTER))
            .boxed(),
    };
    let (writer, guard) = log_writer::spawn(std::io::stderr())?;
    // Colours only for a terminal: a log file or a collector gets plain text.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let layer = tracing_subscriber::fmt::layer()
        .with_ansi(terminal)
        .with_timer(log_format::Timestamp)
        .with_writer(writer.clone());
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text if terminal => registry.with(layer).init(),
        LogFormat::Text => {
            registry
                .with(layer.event_format(log_format::PlainText::<log_format::Timestamp>::default()))
                .init();
            if targets.is_some() {
                crate::observe::write_access_log_with(Box::new(move |context, status, micros| {
                    access_line(&writer, context, status, micros);
                }));
            }
        }
        LogFormat::Json => registry.with(layer.json()).init(),
    }
    Ok(guard)
}

/// `directives` as `Targets` when they are targets and levels only, each item `level` or
/// `target=level` with nothing else in it. Anything else is left to `EnvFilter`, which reads
/// some strings differently: `Targets` would take `[request]=debug` for a target named
/// `[request]`, an empty item (`info,`) for the level ERROR, and ` sqlx` (after `, `) for a
/// target with a space, where `EnvFilter` skips the empty item and refuses the space.
fn plain_targets(directives: &str) -> Option<tracing_subscriber::filter::Targets> {
    use tracing_subscriber::filter::LevelFilter;
    let plain = directives.split(',').all(|item| {
        let (target, level) = item
            .split_once('=')
            .map_or((None, item), |(target, level)| (Some(target), level));
        let target_ok = target.is_none_or(|target| {
            !target.is_empty()
                && target
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b':' | b'-'))
        });
        target_ok && !level.is_empty() && level.parse::<LevelFilter>().is_ok()
    });
    plain.then(|| directives.parse().ok()).flatten()
}

/// Formats an access line on this thread and hands it to the log's writer.
fn access_line(
    writer: &log_writer::LogWriter,
    context: &crate::observe::RequestContext,
    status: u16,
    micros: u64,
) {
    thread_local! {
        static LINE: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
    }
    LINE.with_borrow_mut(|line| {
        line.clear();
        let since_epoch = log_format::since_epoch();
        if log_format::access_line(line, since_epoch, context, status, micros).is_ok() {
            // As the `tracing` layer does: a line that cannot be written is lost.
            let _ = std::io::Write::write_all(&mut &*writer, line.as_bytes());
        }
    });
}

async fn serve(settings: Settings) -> Result<(), String> {
    let bind = settings.bind;
    let mut app = Application::build(settings)
        .await
        .map_err(|e: StartupError| e.to_string())?;
    if let Some(first) = app.take_first_start() {
        // The one place a key is shown: stdout, apart from the logs on stderr.
        let addr = std::net::SocketAddr::new(bind.ip(), app.port());
        println!("{}", first.banner(addr));
    }
    tracing::info!(address = %bind, port = app.port(), "listening");
    app.run_until_stopped().await.map_err(|e| e.to_string())
}

fn print_created(created: &CreatedKey, json: bool) -> Result<(), String> {
    if json {
        println!(
            "{}",
            serde_json::to_string(created).map_err(|e| e.to_string())?
        );
    } else {
        println!("id:           {}", created.id);
        println!("key:          {}", created.key);
        println!("service:      {}", created.service);
        println!("daily quota:  {}", created.daily_quota);
        println!("scopes:       {}", created.scopes);
        if let Some(secret) = &created.signing_secret {
            println!("signing secret: {secret}");
        }
        if let Some(at) = created.expires_at {
            println!("expires at:   {at}");
        }
        let metadata = &created.metadata;
        if let Some(name) = &metadata.name {
            println!("name:         {name}");
        }
        if let Some(owner) = &metadata.owner {
            println!("owner:        {owner}");
        }
        if let Some(meta) = &metadata.meta {
            println!("meta:         {}", serde_json::Value::Object(meta.clone()));
        }
        for line in limit_lines(&created.limits) {
            println!("{line}");
        }
        println!("Save the key now: it is shown once and stored only as a hash.");
    }
    Ok(())
}

/// A setting of `keys update`: `Some(Some(value))` when `flag` gives one, `Some(None)` when
/// `--clear` names it, `None` when neither does; both is refused.
fn set_or_clear<T>(
    flag: &str,
    value: Option<T>,
    clear: &[Clearable],
    field: Clearable,
) -> Result<Option<Option<T>>, String> {
    match (value, clear.contains(&field)) {
        (Some(_), true) => {
            let cleared = field
                .to_possible_value()
                .map(|value| value.get_name().to_owned())
                .unwrap_or_default();
            Err(format!(
                "{flag} and --clear {cleared} contradict each other"
            ))
        }
        (Some(value), false) => Ok(Some(Some(value))),
        (None, true) => Ok(Some(None)),
        (None, false) => Ok(None),
    }
}

/// A key's limits as `keys create` and `keys list` print them, one line each that is set.
fn limit_lines(limits: &KeyLimits) -> Vec<String> {
    let mut lines = Vec::new();
    if let Some(rate) = &limits.rate_limit {
        lines.push(format!("rate limit:   {}", rate_text(rate)));
    }
    if let Some(quota) = limits.monthly_quota {
        lines.push(format!("monthly quota: {quota}"));
    }
    if let Some(credits) = &limits.credits {
        lines.push(format!("credits:      {}", credits_text(credits)));
    }
    lines
}

/// `10/second burst 20`.
fn rate_text(rate: &RateLimitSpec) -> String {
    format!(
        "{}/{} burst {}",
        rate.limit,
        rate.per,
        rate.burst_or_limit()
    )
}

/// `1000 granted at 1767225600, refill 100/day`.
fn credits_text(credits: &CreditsInfo) -> String {
    let refill = credits.refill.map_or_else(String::new, |refill| {
        format!(", refill {}/{}", refill.amount, refill.interval)
    });
    format!(
        "{} granted at {}{refill}",
        credits.granted, credits.granted_at
    )
}

/// `1000 refill 100/day`: the balance granted and its refill, for the `keys list` table.
fn credits_table_text(credits: &CreditsInfo) -> String {
    let refill = credits.refill.map_or_else(String::new, |refill| {
        format!(" refill {}/{}", refill.amount, refill.interval)
    });
    format!("{}{refill}", credits.granted)
}

/// The limits of `keys create` and `keys update`, each `None` when its flags are absent.
struct Limits {
    rate_limit: Option<RateLimitSpec>,
    monthly_quota: Option<u64>,
    credits: Option<CreditsSpec>,
}

/// The limits `--rate-limit`, `--burst`, `--monthly-quota`, `--credits` and `--refill` give; a
/// bad value is refused in the admin API's words.
fn parse_limits(args: &LimitArgs) -> Result<Limits, String> {
    let refused = |e: LimitError| e.to_string();
    let rate_limit = args
        .rate_limit
        .as_deref()
        .map(|text| {
            let (limit, per) = parse_rate(text)?;
            let burst = args
                .burst
                .as_deref()
                .map(|n| parse_count("rate_limit.burst", n, 1))
                .transpose()?;
            Ok(RateLimitSpec { limit, per, burst })
        })
        .transpose()
        .map_err(refused)?;
    let monthly_quota = args
        .monthly_quota
        .as_deref()
        .map(|n| parse_count("monthly_quota", n, 1))
        .transpose()
        .map_err(refused)?;
    let credits = args
        .credits
        .as_deref()
        .map(|n| {
            Ok(CreditsSpec {
                remaining: parse_count("credits.remaining", n, 0)?,
                refill: args.refill.as_deref().map(parse_refill).transpose()?,
            })
        })
        .transpose()
        .map_err(refused)?;
    Ok(Limits {
        rate_limit,
        monthly_quota,
        credits,
    })
}

/// The scopes given with `--scope`, if any, refused as the admin API refuses them.
fn parse_scopes(names: &[String]) -> Result<Option<Scopes>, String> {
    if names.is_empty() {
        return Ok(None);
    }
    Scopes::parse(names)
        .map(Some)
        .map_err(|e| format!("--scope: {e}"))
}

/// Builds the services (the database, the secret) for an admin command, runs it, and closes
/// the database.
async fn admin_command(
    settings: Settings,
    run: impl AsyncFnOnce(&Services) -> Result<(), String>,
) -> Result<(), String> {
    let services: Services =
        build_services(&settings, &process_env(), Clock::system(), Purpose::Manage)
            .await
            .map_err(|e| e.to_string())?;
    let outcome = run(&services).await;
    services.db.close().await;
    outcome
}

/// `secure-api secrets rotate`: signing secrets sealed again under the current server secret.
async fn rotate_secrets(services: &Services) -> Result<(), String> {
    let (resealed, unopenable) = services
        .keys
        .reseal_all()
        .await
        .map_err(|e| e.to_string())?;
    println!("{resealed} signing secrets sealed again under the current server secret");
    if unopenable > 0 {
        println!(
            "{unopenable} signing secrets open with no configured secret: \
             put the secret they were sealed under in SECRET_KEY_FALLBACKS"
        );
    }
    println!(
        "API keys and admin tokens are re-hashed when next used; keep SECRET_KEY_FALLBACKS \
         until every key in use has been used once (docs/operations.md)"
    );
    Ok(())
}

fn to_json(value: &impl serde::Serialize) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| e.to_string())
}

/// Runs an `admin-token` subcommand; domain errors are printed as they are.
async fn admin_token_command(
    services: &Services,
    command: AdminTokenCommand,
) -> Result<(), String> {
    let tokens = &services.admin_tokens;
    match command {
        AdminTokenCommand::Create {
            label,
            expires_in,
            json: as_json,
        } => {
            let new = NewAdminToken {
                label,
                expires_in_days: expires_in,
            };
            let created = tokens
                .create(&new, &Actor::cli())
                .await
                .map_err(|e| e.to_string())?;
            if as_json {
                println!("{}", to_json(&created)?);
            } else {
                println!("id:          {}", created.id);
                println!("token:       {}", created.token);
                if let Some(label) = &created.label {
                    println!("label:       {label}");
                }
                if let Some(at) = created.expires_at {
                    println!("expires at:  {at}");
                }
                println!("Save the token now: it is shown once and stored only as a hash.");
            }
            Ok(())
        }
        AdminTokenCommand::List { json: as_json } => {
            let list = tokens.list().await.map_err(|e| e.to_string())?;
            if as_json {
                println!("{}", to_json(&list)?);
            } else {
                println!("{:<26} {:<24} {:>12} STATUS", "ID", "LABEL", "EXPIRES AT");
                for t in list {
                    println!(
                        "{:<26} {:<24} {:>12} {}",
                        t.id,
                        t.label.as_deref().unwrap_or("-"),
                        t.expires_at
                            .map_or_else(|| "never".to_owned(), |t| t.to_string()),
                        t.status
                    );
                }
            }
            Ok(())
        }
        AdminTokenCommand::Revoke { id } => {
            tokens
                .revoke(&id, &Actor::cli())
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked {id}; running servers refuse it from their next request");
            Ok(())
        }
    }
}

/// `secure-api audit`: a page of the audit log, newest first, as a table or JSON.
async fn audit_command(services: &Services, args: AuditArgs) -> Result<(), String> {
    let page = services
        .audit
        .page(args.before.as_deref(), args.limit)
        .await
        .map_err(|e| e.to_string())?;
    if args.json {
        println!("{}", to_json(&page)?);
        return Ok(());
    }
    println!(
        "{:<28} {:>10} {:<26} {:<18} {:<26} {:<8} REASON",
        "ID", "AT", "ACTOR", "ACTION", "TARGET", "OUTCOME"
    );
    for entry in &page.entries {
        println!(
            "{:<28} {:>10} {:<26} {:<18} {:<26} {:<8} {}",
            entry.id,
            entry.at,
            entry.actor,
            entry.action,
            // Free text (an entry written before ids were checked may hold any bytes): no
            // control character reaches the terminal.
            entry
                .target
                .as_deref()
                .unwrap_or("-")
                .escape_debug()
                .to_string(),
            entry.outcome,
            entry.reason.as_deref().unwrap_or("-").escape_debug(),
        );
    }
    if let Some(next) = &page.next {
        println!("older entries: secure-api audit --before {next}");
    }
    Ok(())
}

/// Runs a `keys` subcommand; domain errors are printed as they are.
async fn keys_command(services: &Services, command: KeysCommand) -> Result<(), String> {
    let keys = &services.keys;
    match command {
        KeysCommand::Create {
            service,
            daily_quota,
            scopes,
            signing,
            expires_in,
            metadata,
            limits,
            json,
        } => {
            let scopes = parse_scopes(&scopes)?;
            let limits = parse_limits(&limits)?;
            let new = NewKey {
                service,
                daily_quota,
                scopes,
                signing,
                expires_in_days: expires_in,
                name: metadata.name,
                owner: metadata.owner,
                meta: metadata.meta,
                rate_limit: limits.rate_limit,
                monthly_quota: limits.monthly_quota,
                credits: limits.credits,
            };
            let created = keys
                .create(&new, &Actor::cli())
                .await
                .map_err(|e| e.to_string())?;
            print_created(&created, json)
        }
        KeysCommand::List { json } => {
            let keys = keys.list().await.map_err(|e| e.to_string())?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string(&keys).map_err(|e| e.to_string())?
                );
            } else {
                println!(
                    "{:<26} {:<20} {:<20} {:>12} {:<8} {:<8} {:<24} {:>14} {:<28} SCOPES",
                    "ID",
                    "SERVICE",
                    "NAME",
                    "DAILY QUOTA",
                    "SIGNING",
                    "STATUS",
                    "RATE LIMIT",
                    "MONTHLY QUOTA",
                    "CREDITS"
                );
                for k in keys {
                    println!(
                        "{:<26} {:<20} {:<20} {:>12} {:<8} {:<8} {:<24} {:>14} {:<28} {}",
                        k.id,
                        k.service,
                        k.metadata.name.as_deref().unwrap_or("-"),
                        k.daily_quota,
                        if k.signing { "yes" } else { "no" },
                        k.status,
                        k.limits.rate_limit.as_ref().map_or("-".into(), rate_text),
                        k.limits
                            .monthly_quota
                            .map_or("-".into(), |quota| quota.to_string()),
                        k.limits
                            .credits
                            .as_ref()
                            .map_or("-".into(), credits_table_text),
                        k.scopes,
                    );
                }
            }
            Ok(())
        }
        KeysCommand::Update {
            id,
            scopes,
            daily_quota,
            expires_in,
            metadata,
            limits,
            clear,
            json,
        } => {
            let scopes = parse_scopes(&scopes)?;
            let limits = parse_limits(&limits)?;
            let update = KeyUpdate {
                scopes,
                daily_quota: set_or_clear(
                    "--daily-quota",
                    daily_quota,
                    &clear,
                    Clearable::DailyQuota,
                )?,
                expires_in_days: set_or_clear(
                    "--expires-in",
                    expires_in,
                    &clear,
                    Clearable::Expiry,
                )?,
                name: set_or_clear("--name", metadata.name, &clear, Clearable::Name)?,
                owner: set_or_clear("--owner", metadata.owner, &clear, Clearable::Owner)?,
                meta: set_or_clear("--meta", metadata.meta, &clear, Clearable::Meta)?,
                rate_limit: set_or_clear(
                    "--rate-limit",
                    limits.rate_limit,
                    &clear,
                    Clearable::RateLimit,
                )?,
                monthly_quota: set_or_clear(
                    "--monthly-quota",
                    limits.monthly_quota,
                    &clear,
                    Clearable::MonthlyQuota,
                )?,
                credits: set_or_clear("--credits", limits.credits, &clear, Clearable::Credits)?,
            };
            if update == KeyUpdate::default() {
                return Err(
                    "keys update: nothing to change; give --scope, --daily-quota, \
                     --expires-in, --name, --owner, --meta, --rate-limit, --monthly-quota, \
                     --credits or --clear"
                        .to_owned(),
                );
            }
            let info = keys
                .update(&id, &update, &Actor::cli())
                .await
                .map_err(|e| e.to_string())?;
            if json {
                println!("{}", to_json(&info)?);
            } else {
                println!(
                    "{id} changed ({}); running servers apply it within their key cache TTL",
                    update.fields().join(", ")
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            keys.revoke(&id, &Actor::cli())
                .await
                .map_err(|e| e.to_string())?;
            println!("revoked {id}; running servers refuse it within their key cache TTL");
            Ok(())
        }
        KeysCommand::Rotate {
            id,
            grace_hours,
            json,
        } => {
            let created = keys
                .rotate(&id, grace_hours, &Actor::cli())
                .await
                .map_err(|e| e.to_string())?;
            if !json {
                println!("{id} keeps working for {grace_hours} h; its replacement:");
            }
            print_created(&created, json)
        }
        KeysCommand::Usage {
            id,
            days,
            from,
            to,
            json,
        } => {
            let today = crate::journal::today(&services.clock);
            let range = DayRange::parse(days, from.as_deref(), to.as_deref(), today)
                .map_err(|e| format!("--{e}"))?;
            // Building the services counted today's stored usage in.
            let report = usage_report(keys, &services.quota, &services.usage, &id, range)
                .await
                .map_err(|e| e.to_string())?;
            if json {
                println!("{}", to_json(&report)?);
                return Ok(());
            }
            let source = if services.quota.is_shared() {
                "live, from Redis"
            } else {
                "as the server last folded it into the database, at most about 1 s ago"
            };
            println!(
                "{}: {} of {} used today, {} left, resets in {} s ({source})",
                report.id, report.used, report.limit, report.remaining, report.reset_secs,
            );
            let limits = &report.limits;
            for (name, usage) in [
                ("rate limit", limits.rate_limit),
                ("monthly quota", limits.monthly_quota),
                ("credits", limits.credits),
            ] {
                if let Some(usage) = usage {
                    let reset = usage.reset_secs.map_or_else(
                        || ", never refilled".to_owned(),
                        |s| format!(", whole again in {s} s"),
                    );
                    println!(
                        "{name}: {} of {} used, {} left{reset}",
                        usage.used, usage.limit, usage.remaining
                    );
                }
            }
            println!(
                "{:<10} {:>10} {:>14} {:>14} {:>13} {:>16}   (calls of this key; up to 5 s behind the servers)",
                "DATE",
                "ACCEPTED",
                "REFUSED QUOTA",
                "REFUSED SCOPE",
                "REFUSED RATE",
                "REFUSED CREDITS"
            );
            for day in &report.history {
                let refused = &day.refused;
                println!(
                    "{:<10} {:>10} {:>14} {:>14} {:>13} {:>16}",
                    day.date,
                    day.accepted,
                    refused.quota,
                    refused.scope,
                    refused.rate,
                    refused.credits
                );
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_targets_and_levels_are_read_as_targets() {
        for plain in [
            "info,sqlx=warn,actix_server=warn",
            "warn",
            "secure_api::observe=debug,off",
            "info,secure-api=TRACE",
        ] {
            assert!(plain_targets(plain).is_some(), "{plain}");
        }
        for other in [
            "",
            "info,",
            "info,,sqlx=warn",
            "info, sqlx=warn",
            "=debug",
            "info,secure_api=",
            "info,[request]=debug",
            "info,secure_api[request{key=x}]=debug",
            "info,secure_api=loud",
        ] {
            assert!(plain_targets(other).is_none(), "{other:?}");
        }
    }
}

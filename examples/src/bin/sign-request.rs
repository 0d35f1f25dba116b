//! Signs an HTTP request with `request-signing` (scheme v1) and sends it with awc, printing the
//! response status and body; or, with `--print-headers`, only prints the signature headers
//! (e.g. for curl).
//!
//! ```text
//! API_KEY_ID=svc-orders API_SECRET=... \
//!   cargo run -p secure-api-examples --bin sign-request -- [-X METHOD] [-d BODY] [--print-headers] URL
//! ```
//!
//! The key id and secret come from `API_KEY_ID` / `API_SECRET` (or `--key-id` / `--secret`;
//! a secret on the command line is visible to other users of the machine). awc is built
//! without TLS here, so send to `http://` URLs. With curl:
//!
//! ```text
//! curl -X POST -d '{"qty":1}' $(cargo run -q -p secure-api-examples --bin sign-request -- \
//!   --print-headers -X POST -d '{"qty":1}' http://127.0.0.1:8080/v1/orders | sed 's/^/-H /') \
//!   http://127.0.0.1:8080/v1/orders
//! ```

use std::env;
use std::process::ExitCode;

use request_signing::{Secret, Signer, sign_awc_request};

struct Args {
    method: String,
    body: Vec<u8>,
    url: String,
    key_id: String,
    secret: Secret,
    print_headers: bool,
}

const USAGE: &str = "usage: sign-request [-X METHOD] [-d BODY] [--key-id ID] [--secret SECRET] [--print-headers] URL\n\
                     (key id and secret default to $API_KEY_ID and $API_SECRET)";

fn parse_args() -> Result<Args, String> {
    let mut method = None;
    let mut body = None;
    let mut url = None;
    let mut key_id = env::var("API_KEY_ID").ok();
    let mut secret = env::var("API_SECRET").ok().map(Secret::from);
    let mut print_headers = false;
    let mut args = env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-X" | "--method" => method = Some(value()?),
            "-d" | "--data" => body = Some(value()?.into_bytes()),
            "--key-id" => key_id = Some(value()?),
            "--secret" => secret = Some(Secret::from(value()?)),
            "--print-headers" => print_headers = true,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            _ if arg.starts_with('-') => return Err(format!("unknown option {arg}\n{USAGE}")),
            _ => url = Some(arg),
        }
    }
    let body = body.unwrap_or_default();
    Ok(Args {
        method: method.unwrap_or_else(|| if body.is_empty() { "GET" } else { "POST" }.to_owned()),
        body,
        url: url.ok_or(USAGE)?,
        key_id: key_id.ok_or("set API_KEY_ID or pass --key-id")?,
        secret: secret.ok_or("set API_SECRET or pass --secret")?,
        print_headers,
    })
}

#[actix_rt::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(code) => code,
        Err(message) => {
            eprintln!("{message}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<ExitCode, String> {
    let args = parse_args()?;
    let signer = Signer::new(args.key_id, args.secret).map_err(|e| e.to_string())?;

    if args.print_headers {
        let headers = signer
            .sign(&args.method, &args.url, &args.body)
            .map_err(|e| e.to_string())?;
        for (name, value) in headers.iter() {
            println!("{name}: {value}");
        }
        return Ok(ExitCode::SUCCESS);
    }

    let method = awc::http::Method::from_bytes(args.method.to_ascii_uppercase().as_bytes())
        .map_err(|e| format!("bad method: {e}"))?;
    let client = awc::Client::default();
    let request = sign_awc_request(&signer, client.request(method, &args.url), &args.body)
        .map_err(|e| e.to_string())?;
    let mut response = request
        .send_body(args.body)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let body = response
        .body()
        .await
        .map_err(|e| format!("reading the body failed: {e}"))?;
    println!("{}", response.status());
    println!("{}", String::from_utf8_lossy(&body));
    Ok(if response.status().is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
